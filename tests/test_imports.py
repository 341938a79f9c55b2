"""Who may import whom: the app never imports its tests or benchmarks, benchmarks use public names, no path hacks."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from devhost.azurite import REPO

RUNTIME = ("shared", "functions", "localbatch", "mp3pipe", "devhost", "infra", "function_app.py")  # `make run`, Azure
APP = ("shared", "functions", "function_app.py")  # what deploys to Azure
OURS = {"shared", "functions", "localbatch", "mp3pipe", "devhost", "infra", "function_app", "tests", "bench"}


def sources(*tops: str) -> list[Path]:
    found: list[Path] = []
    for top in tops:
        path = REPO / top
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for each name a file imports from a module of ours; name is "" for `import module`."""
    return imports_in(ast.parse(path.read_text(), str(path)))


def lazy_imports(path: Path) -> list[tuple[str, str]]:
    """The (module, name) pairs of `imports` made inside a function body: run only when the function is called."""
    functions = [n for n in ast.walk(ast.parse(path.read_text(), str(path)))
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [pair for f in functions for statement in f.body for pair in imports_in(statement)]


def imports_in(tree: ast.AST) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.split(".")[0] in OURS]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in OURS:
            out += [(str(node.module), a.name) for a in node.names]
    return out


def module_attributes(path: Path) -> list[tuple[str, str]]:
    """(module, name) for each `alias.name` where the alias is bound to a module of ours (`from tests import x`)."""
    tree = ast.parse(path.read_text(), str(path))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in OURS:
            for a in node.names:
                full = REPO.joinpath(*str(node.module).split("."), a.name)
                if full.with_suffix(".py").is_file() or full.is_dir():
                    bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return [(bound[n.value.id], n.attr) for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in bound]


def where(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize(("importers", "forbidden"), [
    (RUNTIME, ("tests", "bench")),
    (APP, ("devhost", "mp3pipe")),  # and localbatch only as below
    (("mp3pipe",), ("devhost",)),  # devhost serves the webhook the CLI posts to: it imports mp3pipe, not the reverse
    (("localbatch",), ("devhost", "mp3pipe")),
    (("tests",), ("bench",)),  # tests and benchmarks share tests/support/, not each other
], ids=["runtime-never-imports-tests-or-bench", "app-never-imports-devhost-or-cli", "cli-never-imports-devhost",
        "localbatch-never-imports-devhost-or-cli", "tests-never-import-bench"])
def test_no_package_imports_the_ones_above_it(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    wrong = [f"{where(p)}: {module}" for p in sources(*importers) for module, _ in imports(p)
             if module.split(".")[0] in forbidden]
    assert wrong == []


def test_the_app_reaches_the_local_gateway_only_through_bootstraps_lazy_import() -> None:
    """localbatch/ is not deployed: the app imports it in one place, only when BATCH_GATEWAY=local asks for it."""
    found = []
    for path in sources(*APP):
        lazy = Counter(lazy_imports(path))
        eager = Counter(imports(path)) - lazy
        found += [(where(path), module, when) for when, pairs in (("lazy", lazy), ("at import", eager))
                  for module, _ in pairs.elements() if module.split(".")[0] == "localbatch"]
    assert found == [("shared/bootstrap.py", "localbatch.gateway", "lazy")]


def test_no_private_name_is_imported_or_reached_from_another_package() -> None:
    wrong = []
    for path in sources(*RUNTIME, "tests", "bench"):
        package = ".".join(path.relative_to(REPO).parent.parts)
        for module, name in imports(path) + module_attributes(path):
            private = any(p.startswith("_") and not p.endswith("__") for p in [*module.split("."), name])
            if private and package not in (module, module.rpartition(".")[0]):  # its own package may share them
                wrong.append(f"{where(path)}: {module} {name}".strip())
    assert wrong == []


def test_benchmarks_run_as_a_package_without_touching_sys_path() -> None:
    def touches_sys_path(path: Path) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr == "path" and isinstance(n.value, ast.Name)
                   and n.value.id == "sys" for n in ast.walk(ast.parse(path.read_text())))

    wrong = [where(p) for p in sources("bench") if touches_sys_path(p)]
    assert (REPO / "bench" / "__init__.py").is_file() and wrong == []
