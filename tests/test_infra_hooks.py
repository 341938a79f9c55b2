"""The azd hooks through the real azure-mgmt SDKs against the loopback ARM stand-in: first run creates the pool and
the Event Grid subscription, a second run sends no create, and a wrong function name or a missing key stops them."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.hooks import postdeploy, postprovision
from infra.hooks.common import HookError
from infra.hooks.pool import app_pool, arm_pool
from shared.adapters.batch.azure import IMAGE, NODE_AGENT_SKU, START_TASK_COMMAND
from shared.settings import Settings
from tests.support.batch_standin import FakeCredential
from tests.support.bicep_reader import INFRA, REPO, all_resources, parse
from tests.support.mgmt_standin import MgmtStandin

SUB = "00000000-0000-0000-0000-00000000c0de"
POOL_IDENTITY = (f"/subscriptions/{SUB}/resourceGroups/rg-t/providers/Microsoft.ManagedIdentity/"
                 "userAssignedIdentities/id-pool-t")
# What azd hands the hooks: its own variables and the outputs of infra/main.bicep.
ENV = {
    "AZURE_ENV_NAME": "t", "AZURE_SUBSCRIPTION_ID": SUB, "AZURE_LOCATION": "westeurope",
    "AZURE_RESOURCE_GROUP": "rg-t", "AZURE_FUNCTION_APP_NAME": "func-t", "AZURE_STORAGE_ACCOUNT_NAME": "stt",
    "AZURE_BATCH_ACCOUNT_NAME": "bat", "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-t",
    "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter", "SUBMIT_FUNCTION_NAME": "submit",
    "AzureWebJobsStorage__blobServiceUri": "https://stt.blob.core.windows.net/", "BATCH_GATEWAY": "azure",
    "BATCH_ACCOUNT_URL": "https://bat.westeurope.batch.azure.com", "BATCH_POOL_ID": "mp3pipe-pool",
    "BATCH_JOB_ID": "mp3pipe-job", "BATCH_VM_SIZE": "standard_d2s_v3", "BATCH_SLOTS_PER_NODE": "1",
    "BATCH_MAX_NODES": "10", "BATCH_POOL_IDENTITY_ID": POOL_IDENTITY, "INPUT_CONTAINER": "mp4-in",
    "OUTPUT_CONTAINER": "mp3-out", "STATE_CONTAINER": "mp3pipe-state",
}
AZD_OWN = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"}


@pytest.fixture
def arm() -> Iterator[MgmtStandin]:
    with MgmtStandin() as standin:
        yield standin
    assert standin.validation_errors == [], "ARM stand-in saw requests outside the REST models"


def provision(arm: MgmtStandin, env: dict[str, str] = ENV) -> str:
    return postprovision.ensure_pool(env, FakeCredential(), **arm.transport())


def deploy(arm: MgmtStandin, env: dict[str, str] = ENV, wait: float = 0.0) -> str:
    return postdeploy.ensure_subscription(env, FakeCredential(), wait_seconds=wait, delay=0.01, **arm.transport())


def test_first_run_creates_the_pool_and_the_subscription_second_run_creates_nothing(arm):
    assert "created Batch pool mp3pipe-pool" in provision(arm)
    assert "created Event Grid subscription" in deploy(arm)
    (pool_put,) = arm.sent("PUT", "/pools/")
    (sub_put,) = arm.sent("PUT", "/eventSubscriptions/")
    assert pool_put.api_version == "2025-06-01" and sub_put.api_version == "2025-02-15"

    arm.calls.clear()
    assert "left as it is" in provision(arm)
    assert "up to date" in deploy(arm)
    assert arm.sent("PUT") == [] and [c.status for c in arm.calls] == [200] * len(arm.calls)


def test_the_pool_is_the_apps_own_definition_with_the_pool_identity(arm):
    provision(arm)
    pool = arm.pools["mp3pipe-pool"]
    assert pool["identity"]["type"] == "UserAssigned"
    assert list(pool["identity"]["userAssignedIdentities"]) == [POOL_IDENTITY]
    p = pool["properties"]
    assert p["vmSize"] == "standard_d2s_v3" and p["taskSlotsPerNode"] == 1
    vm = p["deploymentConfiguration"]["virtualMachineConfiguration"]
    assert vm == {"imageReference": IMAGE, "nodeAgentSkuId": NODE_AGENT_SKU}
    assert p["startTask"]["commandLine"] == START_TASK_COMMAND and p["startTask"]["waitForSuccess"] is True
    assert p["startTask"]["userIdentity"] == {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}}
    assert p["scaleSettings"] == {"fixedScale": {"targetDedicatedNodes": 0, "targetLowPriorityNodes": 0}}
    assert p["taskSchedulingPolicy"] == {"nodeFillType": "Pack"}
    assert {m["name"]: m["value"] for m in p["metadata"]} == {"app": "mp3pipe", "job": "mp3pipe-job"}


def test_a_left_over_ffmpeg_package_setting_never_makes_a_pool_that_cannot_start(arm):
    # The template has no auto-storage account, so no application package can exist in its Batch account: a pool
    # referencing one would fail every node. BATCH_FFMPEG_PACKAGE is gone; a value left in an azd env is ignored.
    provision(arm, {**ENV, "BATCH_FFMPEG_PACKAGE": "ffmpeg@7.1"})
    p = arm.pools["mp3pipe-pool"]["properties"]
    assert "applicationPackages" not in p and p["startTask"]["commandLine"] == START_TASK_COMMAND
    batch = next(r for r in all_resources() if r.type == "Microsoft.Batch/batchAccounts")
    assert "autoStorage" not in batch.body["properties"]


def test_a_pool_field_the_hook_cannot_map_stops_it():
    pool = app_pool(Settings.from_env(ENV))
    with pytest.raises(HookError, match="'mountConfiguration'"):
        arm_pool({**pool, "mountConfiguration": []}, POOL_IDENTITY)


def test_an_existing_pool_without_the_identity_is_reported(arm):
    arm.pools["mp3pipe-pool"] = {"id": "x", "name": "mp3pipe-pool", "properties": {"vmSize": "standard_d2s_v3"}}
    with pytest.raises(HookError, match="exists without the identity .*Delete the pool"):
        provision(arm)
    assert arm.sent("PUT") == []


def test_the_subscription_feeds_the_registered_blob_trigger_with_its_key(arm):
    deploy(arm)
    (put,) = arm.sent("PUT", "/eventSubscriptions/mp3pipe-submit")
    assert put.path == (f"/subscriptions/{SUB}/resourceGroups/rg-t/providers/Microsoft.EventGrid/systemTopics/evgt-t"
                        "/eventSubscriptions/mp3pipe-submit")
    p = put.body["properties"]
    assert p["destination"] == {"endpointType": "WebHook", "properties": {
        "endpointUrl": "https://func-t-b4c7dxfkg2hsa3e6.westeurope-01.azurewebsites.net/runtime/webhooks/blobs"
                       "?functionName=Host.Functions.submit&code=Bx_ky%2F%2B%3D%3D", "maxEventsPerBatch": 1}}
    assert p["filter"] == {"includedEventTypes": ["Microsoft.Storage.BlobCreated"],
                           "subjectBeginsWith": "/blobServices/default/containers/mp4-in/",
                           "subjectEndsWith": "", "isSubjectCaseSensitive": False, "advancedFilters": [
                               {"operatorType": "StringIn", "key": "data.api", "values": [
                                   "PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit"]},
                               {"operatorType": "StringEndsWith", "key": "subject",
                                "values": [".mp4", ".m4v", ".mov", ".m4a", ".3gp"]}]}
    assert p["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    dead = p["deadLetterWithResourceIdentity"]
    assert dead["identity"] == {"type": "SystemAssigned"}
    assert dead["deadLetterDestination"]["properties"] == {
        "resourceId": f"/subscriptions/{SUB}/resourceGroups/rg-t/providers/Microsoft.Storage/storageAccounts/stt",
        "blobContainerName": "eventgrid-deadletter"}


# BlobCreated's `data.api` values in Microsoft's Blob Storage event schema: those that begin a file and those that
# finish one (Data Lake: CreateFile opens an empty file, FlushWithClose closes it; SFTP: SftpCreate, SftpCommit).
BEGINS = ("CreateFile", "SftpCreate")
FINISHES = ("PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit")


def test_a_half_written_data_lake_or_sftp_upload_never_triggers_a_conversion(arm):
    deploy(arm)
    (put,) = arm.sent("PUT", "/eventSubscriptions/mp3pipe-submit")
    (api,) = [f for f in put.body["properties"]["filter"]["advancedFilters"] if f["key"] == "data.api"]
    assert api["operatorType"] == "StringIn"  # an event passes only when its data.api is one of these
    allowed = {v.casefold() for v in api["values"]}  # Event Grid compares strings ignoring case
    assert [a for a in BEGINS if a.casefold() in allowed] == []
    assert [a for a in FINISHES if a.casefold() not in allowed] == []


def test_a_subscription_made_without_the_upload_filter_gets_it(arm):
    deploy(arm)
    arm.subscriptions["mp3pipe-submit"]["properties"]["filter"]["advancedFilters"] = []  # as an older hook made it
    arm.calls.clear()
    assert deploy(arm) == ("updated (properties.filter.advancedFilters differed) Event Grid subscription "
                           f"mp3pipe-submit -> func-t{MgmtStandin.host_suffix} function submit")
    (put,) = arm.sent("PUT", "/eventSubscriptions/mp3pipe-submit")
    assert put.body["properties"]["filter"]["advancedFilters"][0]["key"] == "data.api"


def test_a_subscription_an_older_hook_made_for_mp4_only_takes_every_input_suffix(arm):
    deploy(arm)
    old = arm.subscriptions["mp3pipe-submit"]["properties"]["filter"]
    old["subjectEndsWith"] = ".mp4"
    old["advancedFilters"] = old["advancedFilters"][:1]
    arm.calls.clear()
    assert deploy(arm).startswith(
        "updated (properties.filter.subjectEndsWith, properties.filter.advancedFilters differed)")
    (put,) = arm.sent("PUT", "/eventSubscriptions/mp3pipe-submit")
    assert put.body["properties"]["filter"]["subjectEndsWith"] == ""
    arm.calls.clear()
    assert "up to date" in deploy(arm) and arm.sent("PUT") == []


def test_a_rotated_key_updates_the_subscription(arm):
    deploy(arm)
    arm.system_keys["blobs_extension"] = "rotated"
    assert "updated (properties.destination.properties.endpointUrl differed)" in deploy(arm)
    assert arm.full_urls["mp3pipe-submit"].endswith("&code=rotated")


def test_a_function_name_that_is_not_registered_fails_clearly(arm):
    with pytest.raises(HookError, match=r"function 'process_blob' is not registered in Function App func-t "
                                        r"\(registered: monitor, reconcile, submit\)"):
        deploy(arm, {**ENV, "SUBMIT_FUNCTION_NAME": "process_blob"}, wait=30)
    assert arm.sent("PUT") == [] and len(arm.sent("GET", "/functions")) == 1  # no wait: the host has indexed others


def test_functions_not_indexed_yet_are_waited_for(arm, capsys):
    registered, arm.functions = arm.functions, []
    threading.Timer(0.3, lambda: setattr(arm, "functions", registered)).start()
    assert "created Event Grid subscription" in deploy(arm, wait=30)
    assert "registered: none" in capsys.readouterr().out


def test_a_missing_blobs_extension_key_fails_clearly(arm):
    arm.system_keys.clear()
    with pytest.raises(HookError, match="still failing after 0 s; last answer: .*no 'blobs_extension' system key"):
        deploy(arm, wait=0.2)
    assert len(arm.sent("POST", "/host/default/listkeys")) >= 2 and arm.sent("PUT") == []


def test_the_webhook_uses_the_sites_default_host_name(arm):
    arm.host_suffix = "-h4shh4shh4shh4sh.swedencentral-01.azurewebsites.net"
    assert "-> func-t-h4shh4shh4shh4sh.swedencentral-01.azurewebsites.net function submit" in deploy(arm)
    assert arm.full_urls["mp3pipe-submit"].startswith(
        "https://func-t-h4shh4shh4shh4sh.swedencentral-01.azurewebsites.net/runtime/webhooks/blobs?")


@pytest.mark.parametrize("call", ["listkeys", "functions"])
@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_host_not_ready_yet_is_waited_for(arm, capsys, call, status):
    arm.not_ready[call] = [status, status, status]
    arm.keyless_answers = 2  # and the blobs_extension key appears only once the host has started
    assert "created Event Grid subscription" in deploy(arm, wait=30)
    printed = capsys.readouterr().out
    assert printed.count(f"waiting for the {'host keys' if call == 'listkeys' else 'functions'} of Function App "
                         f"func-t") >= 3 and f": {status} " in printed
    assert printed.count("no 'blobs_extension' system key") == 2
    assert arm.not_ready[call] == [] and len(arm.sent("PUT", "/eventSubscriptions/")) == 1


def test_a_host_that_never_gets_ready_ends_with_the_last_answer_and_what_to_do(arm):
    arm.never_ready["listkeys"] = 403
    with pytest.raises(HookError) as failed:
        deploy(arm, wait=0.3)
    message = str(failed.value)
    assert message.startswith("the host keys of Function App func-t (listKeys): still failing after 0 s; last "
                              "answer: 403 Forbidden: Encountered an error (Forbidden) from host runtime."), message
    assert "role assignments propagate" in message and "azd hooks run postdeploy" in message
    assert len(arm.sent("POST", "/listkeys")) >= 3 and arm.sent("PUT") == []


DRIFT = {
    "maxEventsPerBatch": (("destination", "properties", "maxEventsPerBatch"), 10),
    "endpointKey": (("destination", "properties", "endpointUrl"), None),
    "schema": (("eventDeliverySchema",), "CloudEventSchemaV1_0"),
    "eventTypes": (("filter", "includedEventTypes"),
                   ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]),
    "subjectBegins": (("filter", "subjectBeginsWith"), "/blobServices/default/containers/other/"),
    "subjectEnds": (("filter", "subjectEndsWith"), ".mp3"),
    "caseSensitive": (("filter", "isSubjectCaseSensitive"), True),
    "advancedFilters": (("filter", "advancedFilters"), [{"operatorType": "StringContains", "key": "subject",
                                                         "values": ["x"]}]),
    "attempts": (("retryPolicy", "maxDeliveryAttempts"), 3),
    "ttl": (("retryPolicy", "eventTimeToLiveInMinutes"), 60),
    "deadLetterContainer": (("deadLetterWithResourceIdentity", "deadLetterDestination", "properties",
                             "blobContainerName"), "elsewhere"),
    "deadLetterAccount": (("deadLetterWithResourceIdentity", "deadLetterDestination", "properties", "resourceId"),
                          f"/subscriptions/{SUB}/resourceGroups/rg-t/providers/Microsoft.Storage/storageAccounts/o"),
    "deadLetterIdentity": (("deadLetterWithResourceIdentity", "identity"),
                           {"type": "UserAssigned", "userAssignedIdentity": POOL_IDENTITY}),
}


@pytest.mark.parametrize("field", list(DRIFT))
def test_a_subscription_drifted_in_any_field_is_written_again(arm, field):
    deploy(arm)
    path, value = DRIFT[field]
    target = arm.subscriptions["mp3pipe-submit"]["properties"]
    for key in path[:-1]:
        target = target[key]
    if path[-1] == "endpointUrl":  # Azure keeps the URL (with its key) apart; getFullUrl reads it
        arm.full_urls["mp3pipe-submit"] = arm.full_urls["mp3pipe-submit"].replace("code=", "code=old")
    else:
        target[path[-1]] = value
    arm.calls.clear()
    result = deploy(arm)
    assert result.startswith("updated (") and "differed" in result, result
    (put,) = arm.sent("PUT", "/eventSubscriptions/")
    arm.calls.clear()
    assert "up to date" in deploy(arm) and arm.sent("PUT") == []


def test_what_arm_adds_or_spells_its_own_way_is_not_drift(arm):
    deploy(arm)
    p = arm.subscriptions["mp3pipe-submit"]["properties"]
    p["destination"]["properties"]["preferredBatchSizeInKilobytes"] = 64  # defaults ARM fills in
    p["labels"] = []
    p["eventDeliverySchema"] = "eventgridschema"
    dead = p["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"]
    dead["resourceId"] = dead["resourceId"].replace("resourceGroups", "resourcegroups")
    api = p["filter"]["advancedFilters"][0]
    api["values"] = [v.lower() for v in reversed(api["values"])]  # a set of strings, in ARM's own case
    assert "up to date" in deploy(arm)


def test_a_body_key_the_event_grid_model_does_not_know_stops_the_hook(monkeypatch):
    real = postdeploy.desired

    def misspelt(*args):
        body = real(*args)
        body["properties"]["retryPolicy"]["maxDeliveryAtempts"] = 3
        return body

    monkeypatch.setattr(postdeploy, "desired", misspelt)
    with pytest.raises(HookError, match=r"does not know: properties\.retryPolicy\.maxDeliveryAtempts"):
        postdeploy.checked_body(postdeploy.desired(ENV, "/s", "https://h/x"))


def test_main_prints_the_error_and_exits_1(arm, capsys):
    env = {k: v for k, v in ENV.items() if k != "AZURE_BATCH_ACCOUNT_NAME"}
    assert postprovision.main(FakeCredential(), env) == 1
    assert "missing from the azd environment: AZURE_BATCH_ACCOUNT_NAME" in capsys.readouterr().err


def test_provisioning_without_an_alert_email_says_alerts_reach_nobody_and_how_to_set_one(arm, capsys):
    assert postprovision.main(FakeCredential(), ENV, **arm.transport()) == 0
    out = capsys.readouterr().out
    assert "created Batch pool mp3pipe-pool" in out
    assert "MP3PIPE_ALERT_EMAIL is not set" in out and "reach nobody" in out and "monitor silent" in out
    assert "`azd env set MP3PIPE_ALERT_EMAIL you@example.com`, then `azd provision`" in out
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["alertEmail"]["value"] == "${MP3PIPE_ALERT_EMAIL=}"  # the variable the advice names

    assert postprovision.main(FakeCredential(), {**ENV, "MP3PIPE_ALERT_EMAIL": "ops@example.com"},
                              **arm.transport()) == 0
    out = capsys.readouterr().out
    assert "left as it is" in out and "MP3PIPE_ALERT_EMAIL" not in out


def test_the_hooks_function_name_is_the_registered_event_grid_blob_trigger():
    import json
    import subprocess
    import sys

    # A fresh interpreter: the app's functions can be indexed once per process (other tests index them too).
    code = ("import json, function_app\n"
            "print(json.dumps({f.get_function_name(): [b.get_dict_repr() for b in f.get_bindings()]\n"
            "                  for f in function_app.app.get_functions()}, default=str))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    triggers = {name: b.get("source") for name, bindings in json.loads(out).items()
                for b in bindings if b["type"] == "blobTrigger"}
    assert triggers == {postdeploy.SUBMIT_FUNCTION: "EventGrid"}
    outputs = parse(INFRA / "main.bicep")["outputs"]
    assert outputs["SUBMIT_FUNCTION_NAME"]["value"] == postdeploy.SUBMIT_FUNCTION


def test_every_variable_the_hooks_read_is_an_output_of_main_bicep():
    read = set()
    for path in (Path(postdeploy.__file__).parent).glob("*.py"):
        for args in re.findall(r"need\(\s*env,([^)]*)\)", path.read_text(), re.S):
            read |= set(re.findall(r'"([A-Za-z_]+)"', args))
    outputs = set(parse(INFRA / "main.bicep")["outputs"])
    assert read and read - AZD_OWN <= outputs, read - AZD_OWN - outputs
    assert set(ENV) - AZD_OWN <= outputs  # the test's environment is one azd could give


def test_the_stand_in_rejects_a_body_outside_the_model_and_an_unknown_api_version(arm):
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.batch import BatchManagementClient

    client = BatchManagementClient(FakeCredential(), SUB, **arm.transport())
    with pytest.raises(HttpResponseError) as bad_body:
        client.pool.create("rg-t", "bat", "p", {"properties": {"vmSzie": "standard_d2s_v3"}})
    assert "properties.vmSzie: not a property of PoolProperties" in str(bad_body.value)
    client.close()
    old = BatchManagementClient(FakeCredential(), SUB, api_version="2023-05-01", **arm.transport())
    with pytest.raises(HttpResponseError) as bad_version:
        old.pool.get("rg-t", "bat", "p")
    assert "API version unknown to azure-mgmt-batch" in str(bad_version.value)
    old.close()
    # Event Grid's SDK drops an unknown key from a dict or model: the raw JSON the hook sends reaches the stand-in.
    import io
    import json

    from azure.mgmt.eventgrid import EventGridManagementClient

    grid = EventGridManagementClient(FakeCredential(), SUB, **arm.transport())
    body = {"properties": {"retryPolicy": {"maxDeliveryAtempts": 3}}}
    with pytest.raises(HttpResponseError) as bad_grid:
        grid.system_topic_event_subscriptions.begin_create_or_update(
            "rg-t", "evgt-t", "s", io.BytesIO(json.dumps(body).encode()), content_type="application/json").result()
    assert "properties.retryPolicy.maxDeliveryAtempts: not a property of RetryPolicy" in str(bad_grid.value)
    grid.close()
    assert len(arm.validation_errors) == 3
    arm.validation_errors.clear()


QUOTA_ERROR = (
    "Batch account bat has 0 dedicated cores for standardDSv3Family (the family of BATCH_VM_SIZE standard_d2s_v3: "
    "2 vCPUs per node; BATCH_MAX_NODES=10 needs 20) and Spot is off (BATCH_SPOT_SHARE=0): no node can start and "
    "every file would wait in the queue. Raise it in the Azure portal: Batch account bat > Quotas > Request quota "
    "increase (or Help + support > Create a support request > Service and subscription limits (quotas) > Batch), "
    "then run `azd provision` again.")


def family_quota(arm: MgmtStandin, family: str, cores: int) -> None:
    for quota in arm.batch_quotas["dedicatedCoreQuotaPerVMFamily"]:
        if quota["name"] == family:
            quota["coreQuota"] = cores


def test_no_cores_for_the_vm_family_stops_provision_with_the_numbers_and_where_to_raise_them(arm, capsys):
    family_quota(arm, "standardDSv3Family", 0)  # the Dv3 family (Standard_D2_v3) still has 20: not ours
    with pytest.raises(HookError) as failed:
        provision(arm)
    assert str(failed.value) == QUOTA_ERROR
    assert arm.sent("PUT") == [] and arm.pools == {}


def test_spot_cores_let_a_node_start_when_dedicated_cores_are_zero(arm, capsys):
    family_quota(arm, "standardDSv3Family", 0)
    arm.batch_quotas["lowPriorityCoreQuota"] = 6
    assert "created Batch pool" in provision(arm, {**ENV, "BATCH_SPOT_SHARE": "1"})
    out = capsys.readouterr().out
    assert ("warning: Batch account bat has 0 dedicated cores for standardDSv3Family and 6 Spot (low-priority) "
            "cores: at most 3 of BATCH_MAX_NODES=10 nodes") in out


def test_zero_spot_cores_with_spot_allowed_and_no_dedicated_cores_stops_provision(arm):
    family_quota(arm, "standardDSv3Family", 0)
    arm.batch_quotas["lowPriorityCoreQuota"] = 0
    with pytest.raises(HookError, match=r"has 0 dedicated cores for standardDSv3Family .* and 0 Spot \(low-priority\) "
                                        r"cores: no node can start"):
        provision(arm, {**ENV, "BATCH_SPOT_SHARE": "0.5"})


def test_spot_cores_alone_start_no_node_while_the_share_makes_the_first_node_dedicated(arm):
    family_quota(arm, "standardDSv3Family", 0)
    arm.batch_quotas["lowPriorityCoreQuota"] = 20  # plenty of Spot, but a share below 1 asks for a dedicated node first
    with pytest.raises(HookError, match=r"no node can start \(with BATCH_SPOT_SHARE=0.5 the first node is dedicated"):
        provision(arm, {**ENV, "BATCH_SPOT_SHARE": "0.5"})
    assert arm.pools == {}


def test_the_accounts_total_dedicated_quota_counts_when_family_quotas_are_not_enforced(arm, capsys):
    family_quota(arm, "standardDSv3Family", 0)
    arm.batch_quotas.update(dedicatedCoreQuotaPerVMFamilyEnforced=False, dedicatedCoreQuota=8)
    assert "created Batch pool" in provision(arm)
    assert "has 8 dedicated cores and Spot is off (BATCH_SPOT_SHARE=0): at most 4 of BATCH_MAX_NODES=10" in (
        capsys.readouterr().out)


def test_a_pool_quota_of_zero_stops_provision(arm):
    arm.batch_quotas["poolQuota"] = 0
    with pytest.raises(HookError, match="has a pool quota of 0: the pool cannot be created. Raise it in the Azure "
                                        "portal: Batch account bat > Quotas"):
        provision(arm)


def test_a_vm_size_batch_does_not_offer_stops_provision(arm):
    with pytest.raises(HookError, match="BATCH_VM_SIZE standard_d2s_v9 is not a VM size Azure Batch offers in "
                                        "westeurope"):
        provision(arm, {**ENV, "BATCH_VM_SIZE": "standard_d2s_v9"})


def test_each_vm_size_counts_against_its_own_family(arm):
    family_quota(arm, "standardDSv3Family", 0)
    assert "created Batch pool" in provision(arm, {**ENV, "BATCH_VM_SIZE": "standard_d2_v3"})  # standardDv3Family
