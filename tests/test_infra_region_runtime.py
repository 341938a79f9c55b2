"""The template deploys only where Flex Consumption runs, on a Python it supports (tests/data/flex_consumption.json)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from tests.support.bicep_reader import INFRA, REPO, all_resources, parse

FLEX = json.loads((Path(__file__).parent / "data" / "flex_consumption.json").read_text())


def decorators(param: dict) -> dict[str, object]:
    return {d["type"]: d["argument"] for d in param.get("decorators", [])}


def runtime_version() -> str:
    site = next(r for r in all_resources() if r.type == "Microsoft.Web/sites" and not r.existing)
    runtime = site.body["properties"]["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    return runtime["version"]


def test_location_is_azds_location_prompt_limited_to_flex_regions():
    location = decorators(parse(INFRA / "main.bicep")["parameters"]["location"])
    assert location["metadata"] == {"azd": {"type": "location"}}  # azd asks with its region picker
    allowed = location["allowed"]
    assert sorted(allowed) == sorted(FLEX["regions"]["names"]), set(allowed) ^ set(FLEX["regions"]["names"])
    assert len(allowed) >= 20 and "eastus2euap" not in allowed
    assert "${AZURE_LOCATION}" in (INFRA / "main.parameters.json").read_text()  # azd fills it, no default


def test_the_runtime_is_a_supported_python_past_today_and_the_code_targets_no_newer():
    version = runtime_version()
    ends = FLEX["python"]["end_of_support"]
    assert version in ends, f"Python {version} is not a GA Functions runtime ({sorted(ends)})"
    assert dt.date.fromisoformat(ends[version]) > dt.date.today(), f"Python {version} support ended {ends[version]}"
    assert version >= FLEX["python"]["quickstart"]["version"]  # not older than Microsoft's own Flex quickstart
    requires = re.search(r'requires-python = ">=(\d+\.\d+)"', (REPO / "pyproject.toml").read_text())[1]
    ruff = re.search(r'target-version = "py3(\d+)"', (REPO / "pyproject.toml").read_text())[1]
    assert tuple(map(int, requires.split("."))) <= tuple(map(int, version.split("."))), requires
    assert int(ruff) <= int(version.split(".")[1])  # the code uses nothing newer than the runtime has


def test_readme_and_docs_name_the_runtime_the_template_deploys():
    version = runtime_version()
    assert f"Python **{version}**" in (REPO / "docs" / "deploy-azure.md").read_text()
    assert f"runtime Python {version}" in (REPO / "README.md").read_text()
    assert f"(Python {version})" in (INFRA / "modules" / "functionapp.bicep").read_text().splitlines()[0]
