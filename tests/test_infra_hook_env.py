"""azd's hooks run from their own venv on both shells, holding only what the hooks import (the deploy file)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from tests.support.bicep_reader import REPO

HOOKS = REPO / "infra" / "hooks"
DEPLOY = HOOKS / "requirements.txt"
VENV = ".venv-hooks"
TEST_TOOLS = {"pytest", "ruff", "trustme", "jsonschema", "hypothesis", "pycep-parser", "pyyaml", "py-spy"}


def hook_commands() -> dict[tuple[str, str], str]:
    hooks = yaml.safe_load((REPO / "azure.yaml").read_text())["hooks"]
    return {(name, shell): spec["run"] for name, shells in hooks.items() for shell, spec in shells.items()}


def requirements(path: Path) -> dict[str, Requirement]:
    """Every requirement of a pip file, following `-r` (relative to the file, as pip reads it)."""
    out: dict[str, Requirement] = {}
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            out |= requirements((path.parent / line[3:].strip()).resolve())
        else:
            req = Requirement(line)
            out[metadata_name(req.name)] = req
    return out


def metadata_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_both_shells_create_the_hooks_venv_and_run_each_hook_from_it():
    commands = hook_commands()
    assert {name for name, _ in commands} == {"postprovision", "postdeploy"}
    assert {shell for _, shell in commands} == {"posix", "windows"}
    python = {"posix": f"{VENV}/bin/python", "windows": f"{VENV}/Scripts/python.exe"}
    for (name, shell), run in commands.items():
        lines = [line.strip() for line in run.strip().splitlines()]
        creates = next(i for i, line in enumerate(lines) if re.search(rf"-m venv {re.escape(VENV)}$", line))
        installs = [i for i, line in enumerate(lines) if " -m pip install " in line]
        runs = [i for i, line in enumerate(lines) if line.endswith(f" -m infra.hooks.{name}")]
        assert len(installs) == 1 and len(runs) == 1, (name, shell, run)
        assert creates < installs[0] < runs[0], (name, shell)
        for i in installs + runs:
            assert lines[i].startswith(python[shell] + " "), (name, shell, lines[i])  # the venv's own Python
        assert lines[installs[0]].endswith("-r infra/hooks/requirements.txt"), lines[installs[0]]
        assert "requirements-dev" not in run and "make " not in run, (name, shell)
        # A failing step stops the hook: sh with -e, pwsh checks every native command's exit code.
        if shell == "posix":
            assert lines[0] == "set -e"
        else:
            native = [i for i, line in enumerate(lines) if re.match(r"^(python|\.venv-hooks)", line)]
            assert all(lines[i + 1].startswith(("if ($LASTEXITCODE)", "exit $LASTEXITCODE")) for i in native)


def test_the_deploy_file_is_pinned_and_holds_no_test_tools():
    deploy = requirements(DEPLOY)
    own = [line for line in DEPLOY.read_text().splitlines() if line and not line.startswith(("#", "-r"))]
    assert own and all("==" in line for line in own), own  # pinned, as requirements-dev.txt pinned them
    assert TEST_TOOLS.isdisjoint(deploy), TEST_TOOLS & set(deploy)
    dev = requirements(REPO / "requirements-dev.txt")
    assert set(deploy) <= set(dev)  # the test venv has what the hooks have, at the same pins
    assert all(str(dev[name].specifier) == str(req.specifier) for name, req in deploy.items())


def imported_by_hooks() -> set[str]:
    """Every module named by an import anywhere in infra/hooks (inside functions too)."""
    names = set()
    for path in HOOKS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return names


def distributions_loaded(modules: set[str]) -> set[str]:
    """Import the modules (and so everything they import) in a fresh interpreter; the distributions the files it
    loaded beyond a bare interpreter's (site's .pth hooks) belong to."""
    code = ("import importlib, json, sys\n"
            "before = set(sys.modules)\n"
            f"for m in {sorted(modules)!r}: importlib.import_module(m)\n"
            "new = [m for n, m in list(sys.modules.items()) if n not in before]\n"
            "print(json.dumps([getattr(m, '__file__', None) for m in new]))")
    files = json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                                      check=True).stdout)
    owner = {}
    for dist in metadata.distributions():
        for f in dist.files or ():
            owner[str(Path(dist.locate_file(f)).resolve())] = metadata_name(dist.metadata["Name"])
    return {owner[str(Path(f).resolve())] for f in files if f and str(Path(f).resolve()) in owner}


def declared_with_dependencies(reqs: dict[str, Requirement]) -> set[str]:
    seen: set[str] = set()
    todo = list(reqs)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(metadata_name(req.name))
    return seen


def test_everything_the_hooks_import_is_in_the_deploy_file():
    modules = imported_by_hooks()
    assert {"azure.mgmt.batch", "azure.mgmt.web", "azure.mgmt.eventgrid", "azure.identity"} <= modules
    loaded = distributions_loaded(modules | {f"infra.hooks.{p.stem}" for p in HOOKS.glob("*.py")})
    deploy = requirements(DEPLOY)
    assert {"azure-mgmt-batch", "azure-batch", "azure-identity"} <= loaded
    missing = loaded - declared_with_dependencies(deploy) - {"mp3pipe"}  # mp3pipe: this repo, editable
    assert missing == set(), f"imported by infra/hooks but not installed by {DEPLOY.name}: {sorted(missing)}"
