"""Pytest fixtures for the Batch REST stand-in (use them with `pytest_plugins = ["tests.support.batch_fixtures"]`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.batch_standin import BatchStandin, FakeCredential


@pytest.fixture
def batch_standin() -> Iterator[BatchStandin]:
    """A running stand-in; the test fails if any request or response broke the Batch REST spec."""
    standin = BatchStandin().start()
    try:
        yield standin
    finally:
        standin.stop()
    assert standin.validation_errors == [], "Batch stand-in saw requests/responses outside the spec"


@pytest.fixture
def fake_credential() -> FakeCredential:
    return FakeCredential()
