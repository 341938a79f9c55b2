"""azure.yaml refuses an azd too old to honour .funcignore, so the app's package is never the whole checkout."""

from __future__ import annotations

import yaml
from packaging.specifiers import SpecifierSet

from tests.support.bicep_reader import REPO

# azd's CHANGELOG: 1.18.0 (2025-07-17) added .funcignore to zip packaging (Azure/azure-dev#5383; before it, #1039:
# the zip held every file); 1.23.13 (2026-03-26) fixed negation patterns and a UTF-8 BOM in it (#7311).
FUNCIGNORE_RELEASES = (("1.17.2", "1.18.0"), ("1.23.12", "1.23.13"))


def needed_release() -> tuple[str, str]:
    """(last azd that mishandles our .funcignore, first that packs by it), from what the file uses."""
    raw = (REPO / ".funcignore").read_bytes()
    negates = any(line.lstrip().startswith(b"!") for line in raw.splitlines())
    return FUNCIGNORE_RELEASES[1] if raw.startswith(b"\xef\xbb\xbf") or negates else FUNCIGNORE_RELEASES[0]


def test_azure_yaml_refuses_an_azd_that_would_ignore_funcignore():
    required = yaml.safe_load((REPO / "azure.yaml").read_text())["requiredVersions"]["azd"]
    allowed = SpecifierSet(required.replace(" ", ""))
    too_old, first = needed_release()
    assert too_old not in allowed and first in allowed and "1.23.13" in allowed, required
