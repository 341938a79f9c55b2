"""The task's command line: the node-side runner (shared/node), carried compressed in the command line itself (pure).

Every task runs the runner of the app version that submitted it, with nothing to install or download on the node
but python3 and ffmpeg. The command line holds no blob name: the runner reads and writes fixed file names.
"""

from __future__ import annotations

import ast
import base64
import functools
import zlib
from pathlib import Path

from shared.node.convert import INPUT_FILE, OUTPUT_FILE, ffmpeg_args
from shared.node.presets import PRESETS

__all__ = ["INPUT_FILE", "OUTPUT_FILE", "PRESETS", "argv", "command_line", "runner_source"]

# Dependency order: each module imports only those before it.
_NODE_MODULES = ("presets", "mp4", "mp3", "convert")
_NODE_DIR = Path(__file__).resolve().parents[1] / "node"
# -I: no PYTHON* variables, user site or script folder can change what runs; -S: no site module (the runner needs
# only the standard library, and site costs every task milliseconds of start-up).
PYTHON_FLAGS = ("-I", "-S")
# No spaces or quotes inside: any command-line splitter (Batch's node agent, shlex) keeps it one argument.
BOOTSTRAP = "import sys,zlib,binascii;exec(zlib.decompress(binascii.a2b_base64(sys.argv[1])))"

_LOADER = '''
import sys, types
for _package in ("shared", "shared.node"):
    sys.modules.setdefault(_package, types.ModuleType(_package)).__path__ = []
for _name, _source in _SOURCES:
    _module = types.ModuleType(_name)
    _module.__file__ = "<mp3pipe " + _name + ">"
    sys.modules[_name] = _module
    exec(compile(_source, _module.__file__, "exec"), _module.__dict__)
sys.exit(sys.modules["shared.node.convert"].main(sys.argv[2:]))
'''


def _compact(source: str) -> str:
    """The same code without comments and docstrings: a shorter command line."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            body[:] = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


@functools.cache
def runner_source() -> str:
    """One self-contained Python program: the node modules, loaded under their own names, then the runner's main."""
    sources = tuple((f"shared.node.{name}", _compact((_NODE_DIR / f"{name}.py").read_text()))
                    for name in _NODE_MODULES)
    return f"_SOURCES = {sources!r}\n{_LOADER}"


@functools.cache
def _payload() -> str:
    return base64.b64encode(zlib.compress(runner_source().encode(), 9)).decode()


def command_line(preset: str = "standard") -> str:
    """`python3 -I -S -c "<bootstrap>" <runner> <preset>`: no shell, no blob name, one fixed string per preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}")
    return f'python3 {" ".join(PYTHON_FLAGS)} -c "{BOOTSTRAP}" {_payload()} {preset}'


def argv(preset: str = "standard", program: str = "ffmpeg") -> list[str]:
    """The ffmpeg command the runner uses for an input whose tracks it could not read (the first audio stream)."""
    return ffmpeg_args(program, PRESETS[preset], None)
