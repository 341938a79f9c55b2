"""The azd environment of a deployment (.azure/<env>/.env, written by `azd up`): the settings `--azure` applies."""

from __future__ import annotations

import json
import os
from pathlib import Path


class AzdEnvError(RuntimeError):
    """No azd environment to read; the message says where it looked and what to run."""


def project_root(start: Path | None = None) -> Path:
    """The nearest folder holding azure.yaml, as azd finds it (the current folder first)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "azure.yaml").is_file():
            return folder
    raise AzdEnvError(f"no azure.yaml in {here} or above: run mp3pipe --azure inside the project")


def read(name: str = "", start: Path | None = None) -> dict[str, str]:
    """KEY=value pairs of the named (else azd's default) environment."""
    root = project_root(start) / ".azure"
    if not name:
        config = root / "config.json"
        try:
            name = json.loads(config.read_text()).get("defaultEnvironment", "")
        except (OSError, ValueError):
            name = ""
        if not name:
            raise AzdEnvError(f"no default azd environment in {config}: run `azd up` (or pass --azure-env NAME)")
    path = root / name / ".env"
    if not path.is_file():
        raise AzdEnvError(f"{path} does not exist: run `azd up` for environment {name!r} first")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            try:
                raw = json.loads(raw)  # azd writes "..." with backslash escapes
            except ValueError:
                raw = raw[1:-1]
        elif len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
        values[key.strip()] = raw
    return values


IDENTITY_SETTINGS = ("AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri")


def apply(name: str = "", start: Path | None = None) -> dict[str, str]:
    """Put the environment's values into os.environ: asking for Azure, the deployment's values win over the shell's
    (a local connection string left in the shell must not send files to Azurite)."""
    values = read(name, start)
    os.environ.update(values)
    if any(values.get(k) for k in IDENTITY_SETTINGS):
        os.environ.pop("AzureWebJobsStorage", None)
    return values
