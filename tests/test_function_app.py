"""The registered functions as the Functions host sees them (indexed once: get_functions() cannot run twice)."""

import pytest

import function_app
from devhost.host import index
from shared.settings_file import load_local_settings


@pytest.fixture(scope="module")
def indexed():
    load_local_settings()  # like `func start`: app settings from local.settings(.sample).json
    return index(function_app.app)


def test_blob_trigger_on_the_input_container_setting_with_event_grid(indexed):
    blobs, _ = indexed
    (submit,) = blobs
    assert submit.name == "submit" and submit.connection == "AzureWebJobsStorage"
    assert submit.binding["path"] == "%INPUT_CONTAINER%/{name}" and submit.binding["source"] == "EventGrid"
    assert submit.container == __import__("os").environ["INPUT_CONTAINER"]


def test_timer_uses_the_schedule_setting(indexed):
    _, timers = indexed
    monitor = next(t for t in timers if t.name == "monitor")
    assert monitor.name == "monitor" and monitor.binding["schedule"] == "%MONITOR_SCHEDULE%"
