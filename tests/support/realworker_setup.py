"""`make setup` step: a runnable copy of ../shared/realworker/worker434 in .venv-worker, with its gRPC stubs.

../shared/realworker holds the worker's source without its generated stubs (`*_pb2*.py` are git-ignored there, so
they never reached the shared copy) and is read-only. Microsoft's `azure-functions-runtime-v1` wheel on PyPI ships
the same FunctionRpc stubs, generated for protobuf 4.x with package-relative imports, under `tests/protos/`: they
drop into `azure_functions_worker/protos/` as they are. Run with the worker venv's python:
`python tests/support/realworker_setup.py SHARED_WORKER_DIR DEST_DIR`.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

STUBS_WHEEL = "azure-functions-runtime-v1==1.2.0"  # Requires-Python >=3.13; only its protos are taken
STUBS_IN_WHEEL = "tests/protos/"


def copy_worker(source: Path, dest: Path) -> Path:
    """A writable copy of the worker source (the shared folder is read-only in CI)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dest


def add_stubs(worker: Path) -> list[str]:
    """Download the stubs wheel (no dependencies) and unpack its generated modules into the worker's protos."""
    protos = worker / "azure_functions_worker" / "protos"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.13", "--dest", tmp, STUBS_WHEEL], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        added = []
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(STUBS_IN_WHEEL) and name.endswith(("_pb2.py", "_pb2_grpc.py")):
                    target = protos / name[len(STUBS_IN_WHEEL):]
                    target.write_bytes(zf.read(name))
                    added.append(str(target.relative_to(protos)))
    if "FunctionRpc_pb2.py" not in added:
        raise SystemExit(f"{STUBS_WHEEL} has no {STUBS_IN_WHEEL}FunctionRpc_pb2.py: the stubs moved")
    return sorted(added)


def main() -> None:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2])
    if not (source / "azure_functions_worker").is_dir():
        raise SystemExit(f"no worker source at {source} (../shared/realworker/worker434)")
    print("worker stubs:", ", ".join(add_stubs(copy_worker(source, dest))))


if __name__ == "__main__":
    main()
