"""Settings valid alone but not together stop the app at start-up: one message per problem, naming both settings."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError

IDENTITY = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pool"

# (the pair, settings that break it, settings beside them that are fine, the names the message must hold)
PAIRS = [
    ("min above max", {"BATCH_MIN_NODES": "4", "BATCH_MAX_NODES": "3"},
     {"BATCH_MIN_NODES": "3", "BATCH_MAX_NODES": "3"},
     ("BATCH_MIN_NODES=4", "BATCH_MAX_NODES=3")),
    ("floor above max", {"BATCH_DEDICATED_FLOOR": "4", "BATCH_MAX_NODES": "3"},
     {"BATCH_DEDICATED_FLOOR": "3", "BATCH_MAX_NODES": "3"}, ("BATCH_DEDICATED_FLOOR=4", "BATCH_MAX_NODES=3")),
    ("spot share below one node of the max", {"BATCH_SPOT_SHARE": "0.05", "BATCH_MAX_NODES": "10"},
     {"BATCH_SPOT_SHARE": "0.1", "BATCH_MAX_NODES": "10"}, ("BATCH_SPOT_SHARE=0.05", "BATCH_MAX_NODES=10")),
    ("spot share with a floor of every node",
     {"BATCH_SPOT_SHARE": "0.5", "BATCH_DEDICATED_FLOOR": "4", "BATCH_MAX_NODES": "4"},
     {"BATCH_SPOT_SHARE": "0.5", "BATCH_DEDICATED_FLOOR": "3", "BATCH_MAX_NODES": "4"},
     ("BATCH_SPOT_SHARE=0.5", "BATCH_DEDICATED_FLOOR=4", "BATCH_MAX_NODES=4")),
    ("slots above 4 x the VM size's vCPUs", {"BATCH_SLOTS_PER_NODE": "9", "BATCH_VM_SIZE": "standard_d2s_v3"},
     {"BATCH_SLOTS_PER_NODE": "16", "BATCH_VM_SIZE": "standard_d4s_v3"},
     ("BATCH_SLOTS_PER_NODE=9", "BATCH_VM_SIZE=standard_d2s_v3")),
    ("wall clock past the SAS limit without a pool identity", {"TASK_MAX_WALL_CLOCK_SECONDS": "600000"},
     {"TASK_MAX_WALL_CLOCK_SECONDS": "600000", "BATCH_POOL_IDENTITY_ID": IDENTITY},
     ("TASK_MAX_WALL_CLOCK_SECONDS=600000", "BATCH_POOL_IDENTITY_ID")),
    ("azure gateway without an account URL", {"BATCH_GATEWAY": "azure"},
     {"BATCH_GATEWAY": "azure", "BATCH_ACCOUNT_URL": "https://acct.westeurope.batch.azure.com"},
     ("BATCH_ACCOUNT_URL", "BATCH_GATEWAY=azure")),
    ("two containers the same", {"OUTPUT_CONTAINER": "mp4-in"}, {"OUTPUT_CONTAINER": "mp3-elsewhere"},
     ("INPUT_CONTAINER", "OUTPUT_CONTAINER")),
    ("a storage identity's client id without the identity's account",
     {"AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001"},
     {"AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
      "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net"},
     ("AzureWebJobsStorage__clientId", "AzureWebJobsStorage__blobServiceUri")),
]


def _messages(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    return str(err.value).splitlines()[1:]


@pytest.mark.parametrize(("bad", "fine", "names"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_a_bad_pair_is_one_message_naming_both(bad, fine, names):
    messages = _messages(bad)
    assert len(messages) == 1, messages
    assert all(name in messages[0] for name in names), messages[0]
    Settings.from_env(fine)  # the same settings one step inside the rule start


def test_a_pair_with_a_malformed_member_gets_only_that_members_message():
    assert _messages({"BATCH_MAX_NODES": "ten", "BATCH_DEDICATED_FLOOR": "3", "BATCH_MIN_NODES": "2"}) == [
        "  - BATCH_MAX_NODES='ten' is not a whole number"]
    assert _messages({"BATCH_SLOTS_PER_NODE": "300"}) == ["  - BATCH_SLOTS_PER_NODE=300 must be between 1 and 256"]


def test_every_bad_pair_at_once_is_one_message_each():
    together = {k: v for _, bad, _, _ in PAIRS[:1] + PAIRS[4:9] for k, v in bad.items()}
    assert len(_messages(together)) == 6


def test_the_local_minimum_follows_a_small_maximum():
    """BATCH_MIN_NODES' default (the cores locally) is never above BATCH_MAX_NODES: no error for a max of 1."""
    assert Settings.from_env({"BATCH_MAX_NODES": "1"}).min_nodes == 1
    assert Settings.from_env({"BATCH_GATEWAY": "azure", "BATCH_ACCOUNT_URL": "https://a.b"}).min_nodes == 0


def test_a_connection_string_beside_identity_settings_is_used_so_it_is_checked():
    """AzureWebJobsStorage wins over AzureWebJobsStorage__accountName (as in the Functions host), so a malformed one
    is an error even with the identity settings; an empty one leaves storage to the identity."""
    identity = {"AzureWebJobsStorage__accountName": "acct"}
    assert _messages({**identity, "AzureWebJobsStorage": "AccountName=x"}) == [
        "  - AzureWebJobsStorage is not a storage connection string "
        "(expected UseDevelopmentStorage=true or DefaultEndpointsProtocol=...;AccountName=...)"]
    assert Settings.from_env({**identity, "AzureWebJobsStorage": " "}).storage_connection == ""
    assert Settings.from_env(identity).storage_connection == ""
