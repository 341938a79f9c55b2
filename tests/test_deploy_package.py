"""What `azd deploy` ships: the repo's files minus `.funcignore` hold the app alone, and the app imports from them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path, PurePosixPath

import pathspec
import pytest

from devhost.azurite import REPO

pytestmark = pytest.mark.fast  # no Azurite, stand-in or ffmpeg: a file walk and one bare interpreter (~2 s)
LOCAL_ONLY = ("localbatch", "devhost", "mp3pipe", "bench", "tests", "infra")
TEST_FILES = pathspec.GitIgnoreSpec.from_lines(["test_*.py", "*_test.py", "conftest.py", "tests/", "fakes/"])
# Settings of a deployed app (BATCH_GATEWAY=azure, identity-based storage), enough for function_app's start-up check.
AZURE_SETTINGS = {"AzureWebJobsStorage__accountName": "mp3pipestore", "BATCH_GATEWAY": "azure",
                  "BATCH_ACCOUNT_URL": "https://mp3pipebatch.westeurope.batch.azure.com"}
# Run in a bare interpreter (-I -S: no PYTHONPATH, no .pth files, so not the editable install that maps our packages
# to the repo): the package copy and the installed libraries are all it can import from.
INDEX = """
import json, sys
sys.path[:0] = [sys.argv[1]]
sys.path += sys.argv[2:]
import function_app
files = {m: getattr(mod, "__file__", None) or "" for m, mod in sys.modules.items()}
print(json.dumps({"functions": sorted(f.get_function_name() for f in function_app.app.get_functions()),
                  "loaded": sorted({m.split(".")[0] for m in files}),
                  "from_package": sorted({m.split(".")[0] for m, f in files.items() if f.startswith(sys.argv[1])})}))
"""


def deploy_files(root: Path) -> list[str]:
    """The files azd packages for the Function App: every file under the project folder but what `.funcignore`
    names (gitignore rules), as '/'-separated paths; an ignored folder is not entered."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{rel / d}/"))
        found += [str(rel / f) for f in sorted(files) if not spec.match_file(str(rel / f))]
    return found


@pytest.fixture(scope="module")
def shipped() -> list[str]:
    return deploy_files(REPO)


def test_the_package_holds_the_app_and_nothing_local_only(shipped):
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(shipped)
    assert any(p.startswith("shared/") for p in shipped) and any(p.startswith("functions/") for p in shipped)
    assert [p for p in shipped if p.split("/")[0] in LOCAL_ONLY] == []
    assert [p for p in shipped if TEST_FILES.match_file(p)] == []


def test_the_app_indexes_from_the_package_alone(shipped, tmp_path):
    package = tmp_path / "package"
    for path in shipped:
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, package / path)
    libraries = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {"PATH": os.environ.get("PATH", ""), **AZURE_SETTINGS}
    done = subprocess.run([sys.executable, "-I", "-S", "-c", INDEX, str(package), *libraries], cwd=package, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    indexed = json.loads(done.stdout.splitlines()[-1])
    assert indexed["functions"] == ["monitor", "reconcile", "submit"]
    assert indexed["from_package"] == ["function_app", "functions", "shared"]
    assert set(LOCAL_ONLY) & set(indexed["loaded"]) == set()
