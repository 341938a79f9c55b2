"""Unit tests: settings validation names every missing or malformed app setting."""

import pytest

from shared.settings import DEFAULTS, Settings, SettingsError


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


def test_every_setting_is_in_the_sample_file():
    import json
    from pathlib import Path

    sample = json.loads((Path(__file__).parents[1] / "local.settings.sample.json").read_text())["Values"]
    assert set(DEFAULTS) <= set(sample)
    assert sample["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
