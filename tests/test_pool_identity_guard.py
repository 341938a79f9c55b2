"""With a pool identity configured, the Azure adapter never creates an identity-less pool: it logs which setting."""

from __future__ import annotations

import logging

from shared.ports.batch import PoolSpec
from tests.support.batch_standin import BatchStandin

pytest_plugins = ["tests.support.batch_fixtures"]

IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-pool"


def test_missing_pool_is_not_created_without_its_identity(batch_standin: BatchStandin, caplog):
    gw = batch_standin.gateway(pool_id="p", job_id="j", slots_per_node=1, pool_identity_id=IDENTITY)
    with caplog.at_level(logging.ERROR, logger="shared.adapters.batch.azure"):
        assert gw.ensure_pool(PoolSpec(id="p", slots_per_node=1)) is False
    assert batch_standin.pools == {} and batch_standin.sent("POST", "/pools") == []
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "BATCH_POOL_IDENTITY_ID" in record.getMessage() and "postprovision" in record.getMessage()
    gw.close()


def test_the_deployed_pool_is_used_and_nothing_is_logged(batch_standin: BatchStandin, caplog):
    batch_standin.add_pool("p")
    gw = batch_standin.gateway(pool_id="p", job_id="j", slots_per_node=1, pool_identity_id=IDENTITY)
    with caplog.at_level(logging.ERROR, logger="shared.adapters.batch.azure"):
        assert gw.ensure_pool(PoolSpec(id="p", slots_per_node=1)) is False
    assert caplog.records == [] and batch_standin.sent("POST", "/pools") == []
    gw.close()


def test_without_an_identity_the_adapter_still_creates_the_pool(batch_standin: BatchStandin):
    gw = batch_standin.gateway(pool_id="p", job_id="j", slots_per_node=1)
    assert gw.ensure_pool(PoolSpec(id="p", slots_per_node=1)) is True
    assert list(batch_standin.pools) == ["p"]
    gw.close()
