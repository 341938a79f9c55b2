"""Unit tests: settings validation names every missing or malformed app setting."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import settings_doc
from shared.settings import Settings, SettingsError, check
from shared.settings_spec import PRESET_NAMES, SETTINGS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "local.settings.sample.json"


def test_defaults_are_valid_and_local():
    s = Settings.from_env({})
    assert s.batch_gateway == "local"
    assert s.storage_connection == "UseDevelopmentStorage=true"
    assert s.min_nodes >= 1  # local: idle slots are free, so files start at once


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("INPUT_CONTAINER", "Bad_Name"),
        ("FFMPEG_PRESET", "ultra"),
        ("BATCH_MAX_NODES", "ten"),
        ("MONITOR_SCHEDULE", "* * * * *"),
        ("BATCH_GATEWAY", "cloud"),
        ("AzureWebJobsStorage", "not a connection string"),
        ("BATCH_JOB_ID", "has spaces"),
    ],
)
def test_a_bad_setting_is_named(key, value):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({key: value})
    assert key in str(err.value)


def test_azure_gateway_needs_an_account_url():
    with pytest.raises(SettingsError, match="BATCH_ACCOUNT_URL"):
        Settings.from_env({"BATCH_GATEWAY": "azure"})


def test_the_sample_file_is_written_from_the_declaration():
    sample = SAMPLE.read_text()
    assert sample == settings_doc.sample(), "local.settings.sample.json is stale: run python -m shared.settings_doc"
    values = json.loads(sample)["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert {s.name for s in SETTINGS if s.local} <= set(values)
    assert not any(name.startswith("AzureWebJobsStorage__") for name in values)  # they would switch to identity


def test_the_readme_table_is_written_from_the_declaration():
    text = (REPO / "README.md").read_text()
    assert text == settings_doc.readme(text), "README's settings table is stale: run python -m shared.settings_doc"
    for s in SETTINGS:
        assert f"| `{s.name}` |" in text


def test_the_doc_command_finds_a_stale_table(tmp_path):
    stale = settings_doc.readme("# x\n" + settings_doc.BEGIN + "\n| old |\n" + settings_doc.END + "\nafter\n")
    assert "| old |" not in stale and "| `TASK_MAX_RETRIES` | `1` | whole number, 0 to 100 |" in stale
    assert stale.endswith(settings_doc.END + "\nafter\n")
    check = subprocess.run([sys.executable, "-m", "shared.settings_doc", "--check"], cwd=REPO, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout


def test_the_preset_names_are_the_node_presets():
    from shared.node.presets import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)


def test_importing_settings_does_not_load_the_node_runner():
    code = "import sys, shared.settings; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    assert "shared.settings_spec" in loaded
    unwanted = [m for m in loaded if m.startswith(("shared.node", "shared.settings_doc", "azure"))]
    assert unwanted == []


BOUNDED = [s for s in SETTINGS if s.kind in ("whole", "number")]


@pytest.mark.parametrize("setting", BOUNDED, ids=[s.name for s in BOUNDED])
def test_every_declared_bound_is_enforced(setting):
    env = {"BATCH_POOL_IDENTITY_ID": "/subscriptions/x/id"}  # no SAS cap on the wall clock
    outside = [f"{setting.low - 1:g}"] + ([f"{setting.high + 1:g}"] if setting.high is not None else [])
    for text in outside:
        with pytest.raises(SettingsError, match=rf"{setting.name}=\S+ must be (between|>=)"):
            Settings.from_env({**env, setting.name: text})
    with pytest.raises(SettingsError, match=f"{setting.name}='many' is not a"):
        Settings.from_env({**env, setting.name: "many"})
    Settings.from_env({**env, setting.name: f"{setting.low:g}", "BATCH_MIN_NODES": "0"})


SHAPED = [s for s in SETTINGS if s.kind in ("container", "batch_id", "ncrontab", "choice")]


@pytest.mark.parametrize("setting", SHAPED, ids=[s.name for s in SHAPED])
def test_every_declared_shape_is_enforced(setting):
    with pytest.raises(SettingsError, match=f"{setting.name}='no such value!'"):
        Settings.from_env({setting.name: "no such value!"})
    assert check(setting.name, "no such value!") != []
    assert check(setting.name, setting.default) == []
