"""`mp3pipe --azure doctor` through the real azure-mgmt SDKs against the loopback ARM stand-in: a deployment as the
template and the hooks make it passes every check; each way a first deployment breaks is reported with its fix."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.azurite import DEV_ACCOUNT, DEV_KEY
from infra.hooks import postdeploy, postprovision
from infra.hooks.common import HookError
from mp3pipe import doctor
from mp3pipe.doctor import OK, PROBLEM, UNREAD, Finding
from shared.adapters.storage import BlobStorage, connection_client
from shared.domain.monitor_state import MONITOR_STATE_BLOB
from shared.usecases.monitor.tick import monitor_tick
from tests.support.batch_standin import FAKE_TOKEN, FakeCredential
from tests.support.bicep_reader import INFRA, REPO, parse
from tests.support.mgmt_standin import MgmtStandin
from tests.test_cli_azure import azurite_oauth, entra_token, tls  # noqa: F401 - fixtures
from tests.test_infra_hooks import ENV as HOOK_ENV
from tests.test_infra_hooks import POOL_IDENTITY, SUB

pytest_plugins = ["tests.support.batch_fixtures"]

RG = f"/subscriptions/{SUB}/resourceGroups/rg-t"
STORAGE = f"{RG}/providers/Microsoft.Storage/storageAccounts/stt"
BATCH = f"{RG}/providers/Microsoft.Batch/batchAccounts/bat"
APP_IDENTITY = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app-t"
HOST = "func-t" + MgmtStandin.host_suffix  # Azure's unique default host name; the postdeploy hook reads it
PLAIN_HOST = "func-t.azurewebsites.net"  # what a URL built from the app's name says
PRINCIPALS = {"appPrincipalId": "app-principal", "poolPrincipalId": "pool-principal",
              "topicPrincipalId": "topic-principal", "userPrincipalId": "user-principal"}
BATCH_APP_ROLE_ID = "5e1f2a3b-7c4d-5e6f-8a9b-0c1d2e3f4a5b"  # main.bicep's output: the custom role's GUID
ENV = {**HOOK_ENV, "AZURE_PRINCIPAL_ID": "user-principal", "MP3PIPE_NOTIFY_QUEUE": "mp3pipe-done",
       "BATCH_APP_ROLE_ID": BATCH_APP_ROLE_ID}
# roles.bicep's scope symbols -> the resources they name in this deployment
SCOPES = {"account": STORAGE, "batchAccount": BATCH,
          "appInsights": f"{RG}/providers/Microsoft.Insights/components/appi-t",
          "inputContainer": f"{STORAGE}/blobServices/default/containers/mp4-in",
          "outputContainer": f"{STORAGE}/blobServices/default/containers/mp3-out",
          "deadLetterContainer": f"{STORAGE}/blobServices/default/containers/eventgrid-deadletter",
          "notifyQueue": f"{STORAGE}/queueServices/default/queues/mp3pipe-done"}
ROLE_VAR = re.compile(r"^var (\w+) = '([0-9a-f-]{36})' // (.+)$", re.M)


def template_grants() -> list[tuple[str, str, str]]:
    """(principal parameter, role GUID, scope symbol) of every role assignment infra/modules/roles.bicep makes."""
    path = INFRA / "modules" / "roles.bicep"
    guids = {var: guid for var, guid, _ in ROLE_VAR.findall(path.read_text())}
    out = []
    for res in parse(path)["resources"].values():
        if res["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        body = res["config"].get("config", res["config"])  # inside `if (...)`
        props = body["properties"]
        definition = props["roleDefinitionId"]
        if "function" in definition:  # subscriptionResourceId('...roleDefinitions', builtInGuidVar)
            guid = guids[definition["function"]["parameters"]["resource_name_1"]]
        else:  # batchAppRole.id: the custom role the template defines
            assert definition["operator"]["operands"] == {"operand_1": "batchAppRole", "operand_2": "id"}
            guid = BATCH_APP_ROLE_ID
        out.append((props["principalId"], guid, body["scope"]))
    return out


def healthy(arm: MgmtStandin) -> None:
    """What `azd up` leaves: the hooks' pool and subscription, the template's site identity, topic and roles."""
    arm.site_identity = {"type": "UserAssigned", "userAssignedIdentities": {
        APP_IDENTITY: {"principalId": PRINCIPALS["appPrincipalId"], "clientId": "c"}}}
    arm.batch_quotas.update(dedicatedCoreQuota=20, lowPriorityCoreQuota=20, poolQuota=20,
                            dedicatedCoreQuotaPerVMFamily=[{"name": "standardDSv3Family", "coreQuota": 20},
                                                           {"name": "standardFSv2Family", "coreQuota": 0}])
    arm.system_topic = {
        "id": f"{RG}/providers/Microsoft.EventGrid/systemTopics/evgt-t", "name": "evgt-t",
        "type": "Microsoft.EventGrid/systemTopics", "location": "westeurope",
        "identity": {"type": "SystemAssigned", "principalId": PRINCIPALS["topicPrincipalId"], "tenantId": "t"},
        "properties": {"source": STORAGE, "topicType": "Microsoft.Storage.StorageAccounts",
                       "provisioningState": "Succeeded"}}
    arm.identities["id-pool-t"] = {
        "id": POOL_IDENTITY, "name": "id-pool-t", "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": "westeurope", "properties": {"principalId": PRINCIPALS["poolPrincipalId"], "clientId": "c",
                                                 "tenantId": "t"}}
    arm.role_assignments = [
        {"principalId": PRINCIPALS[who], "scope": SCOPES[scope],
         "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"}
        for who, guid, scope in template_grants()]
    postprovision.ensure_pool(ENV, FakeCredential(), **arm.transport())
    postdeploy.ensure_subscription(ENV, FakeCredential(), **arm.transport())


@pytest.fixture
def arm(state: BlobStorage) -> Iterator[MgmtStandin]:
    with MgmtStandin() as standin:
        healthy(standin)
        standin.state = state  # type: ignore[attr-defined] - the account's blobs, read by the monitor check
        yield standin
    assert standin.validation_errors == [], "ARM stand-in saw requests or answers outside the REST models"


@pytest.fixture
def state(azurite) -> BlobStorage:
    """The deployment's state container in Azurite, holding the state of a monitor that ran just now."""
    storage = BlobStorage(connection_client(azurite.connection_string))
    storage.ensure_containers("mp3pipe-state")
    storage.put_json("mp3pipe-state", MONITOR_STATE_BLOB, {"ran_at": time.time() - 30})
    return storage


def check(arm: MgmtStandin, env: dict[str, str] = ENV, now: float | None = None) -> list[Finding]:
    return doctor.run(env, FakeCredential(), storage=arm.state, now=now, **arm.transport())


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status != OK]


def only_problem(findings: list[Finding], check_name: str) -> Finding:
    (found,) = problems(findings)
    assert (found.check, found.status) == (check_name, PROBLEM), found
    return found


def test_a_healthy_deployment_passes_every_check(arm):
    findings = check(arm)
    assert problems(findings) == []
    assert [f.check for f in findings] == ["Function App", "functions indexed", "monitor heartbeat",
                                           "Event Grid subscription",
                                           "webhook host", "webhook function", "webhook key", "Batch pool",
                                           "Batch quotas", "roles"]
    assert doctor.exit_code(findings) == 0
    assert "11 role assignment(s) in place" in findings[-1].detail
    assert arm.sent("PUT") == [arm.sent("PUT", "/pools/")[0], arm.sent("PUT", "/eventSubscriptions/")[0]]  # hooks'


def test_a_function_that_is_not_indexed_is_reported(arm):
    arm.functions = ["monitor", "submit"]
    found = only_problem(check(arm), "functions indexed")
    assert "func-t has not indexed reconcile (indexed: monitor, submit)" in found.detail
    assert "`azd deploy`" in found.fix and "Log stream" in found.fix


def test_a_host_that_does_not_answer_is_reported_not_a_traceback(arm):
    arm.refused["/functions"] = (400, "BadRequest", "Encountered an error (ServiceUnavailable) from host runtime.")
    found = only_problem(check(arm), "functions indexed")
    assert ("did not answer (400 BadRequest: Encountered an error (ServiceUnavailable) from host runtime.)"
            in found.detail)
    assert "wait a minute" in found.fix


def test_a_wrong_function_name_in_the_subscription_is_reported(arm):
    arm.full_urls["mp3pipe-submit"] = arm.full_urls["mp3pipe-submit"].replace("Host.Functions.submit",
                                                                              "Host.Functions.process_blob")
    found = only_problem(check(arm), "webhook function")
    assert "functionName=Host.Functions.process_blob, not Host.Functions.submit" in found.detail
    assert "answers 202" in found.detail and found.fix.startswith("`azd hooks run postdeploy`")


def plain_host_webhook(arm: MgmtStandin) -> None:
    """The subscription as a hook that built the URL from the app's name left it."""
    arm.full_urls["mp3pipe-submit"] = arm.full_urls["mp3pipe-submit"].replace(HOST, PLAIN_HOST)
    dest = arm.subscriptions["mp3pipe-submit"]["properties"]["destination"]["properties"]
    dest["endpointBaseUrl"] = dest["endpointBaseUrl"].replace(HOST, PLAIN_HOST)


def test_a_webhook_on_the_app_name_while_azure_gave_a_hashed_host_is_reported(arm):
    plain_host_webhook(arm)
    found = only_problem(check(arm), "webhook host")
    assert (f"events go to https://{PLAIN_HOST}/runtime/webhooks/blobs, but the app answers at "
            f"https://{HOST}/runtime/webhooks/blobs") in found.detail
    assert found.fix.startswith("`azd hooks run postdeploy`")


def test_a_rotated_key_and_a_missing_subscription_are_reported(arm):
    arm.system_keys["blobs_extension"] = "rotated"
    found = only_problem(check(arm), "webhook key")
    assert "not the app's blobs_extension key" in found.detail
    del arm.subscriptions["mp3pipe-submit"]
    found = only_problem(check(arm), "Event Grid subscription")
    assert "no subscription mp3pipe-submit on topic evgt-t" in found.detail


def test_a_pool_without_its_identity_is_reported(arm):
    del arm.pools["mp3pipe-pool"]["identity"]
    findings = check(arm)
    found = only_problem(findings, "Batch pool")
    assert "exists without the identity id-pool-t" in found.detail
    assert found.fix.startswith(f"`az resource delete --ids {BATCH}/pools/mp3pipe-pool`")
    assert "`azd hooks run postprovision`" in found.fix


def test_a_pool_of_another_size_and_its_resize_errors_are_reported(arm):
    props = arm.pools["mp3pipe-pool"]["properties"]
    props.update(vmSize="standard_f2s_v2", resizeOperationStatus={"errors": [
        {"code": "AccountVMSeriesCoreQuotaReached", "message": "The specified account has reached VM series core "
                                                               "quota for standardFSv2Family"}]})
    findings = problems(check(arm))
    assert [(f.check, f.detail) for f in findings] == [
        ("Batch pool", "pool mp3pipe-pool is standard_f2s_v2 but BATCH_VM_SIZE is standard_d2s_v3: the app plans "
                       "slots for the wrong size"),
        ("pool resize", "the last resize failed: AccountVMSeriesCoreQuotaReached: The specified account has reached "
                        "VM series core quota for standardFSv2Family")]
    assert "`azd env set BATCH_VM_SIZE standard_f2s_v2`" in findings[0].fix


def test_a_missing_pool_is_reported_with_the_hook_that_makes_it(arm):
    arm.pools.clear()
    found = next(f for f in check(arm) if f.check == "Batch pool")
    assert found.status == PROBLEM and "pool mp3pipe-pool does not exist" in found.detail
    assert found.fix.startswith("`azd hooks run postprovision`")


def test_zero_cores_for_the_vm_family_is_reported_with_the_portal_path(arm):
    arm.batch_quotas["dedicatedCoreQuotaPerVMFamily"][0]["coreQuota"] = 0
    found = only_problem(check(arm), "Batch quotas")
    assert found.detail.startswith("0 dedicated core(s) for standardDSv3Family (20 in the account): a "
                                   "standard_d2s_v3 node needs 2")
    assert ("the portal: Batch accounts > bat > Quotas > Request quota increase (Dedicated vCPUs, "
            "standardDSv3Family, at least 2)") in found.fix
    assert "azd env set BATCH_VM_SIZE" in found.fix


def test_a_vm_family_the_account_does_not_list_is_reported(arm):
    found = [f for f in check(arm, {**ENV, "BATCH_VM_SIZE": "standard_nc6s_v3"}) if f.check == "Batch quotas"]
    assert [(f.status, f.detail) for f in found] == [
        (PROBLEM, "the account lists no dedicated quota for standardNCSv3Family (the family of standard_nc6s_v3); "
                  "families with cores: standardDSv3Family=20")]


def test_the_hook_and_the_doctor_both_hold_the_family_to_the_accounts_total(arm, capsys):
    # Per-family quotas enforced, 20 cores for the family but fewer in the account: Batch applies both limits.
    arm.batch_quotas["dedicatedCoreQuota"] = 1
    found = only_problem(check(arm), "Batch quotas")
    assert found.detail.startswith("20 dedicated core(s) for standardDSv3Family (1 in the account): a "
                                   "standard_d2s_v3 node needs 2, so the pool can never start a node")
    with pytest.raises(HookError, match=r"^Batch account bat has 1 dedicated cores for standardDSv3Family \(the "
                                        r"account's total, below the family's own 20\) .*: no node can start"):
        postprovision.ensure_pool(ENV, FakeCredential(), **arm.transport())

    arm.batch_quotas["dedicatedCoreQuota"] = 4  # room for 2 of BATCH_MAX_NODES=10 nodes, for both
    assert problems(check(arm)) == []
    quota = next(f for f in check(arm) if f.check == "Batch quotas")
    assert quota.detail.endswith("room for 2 standard_d2s_v3 node(s); the pool can grow to 2 of BATCH_MAX_NODES=10")
    postprovision.ensure_pool(ENV, FakeCredential(), **arm.transport())
    assert "warning: Batch account bat has 4 dedicated cores for standardDSv3Family (the account's total, below the " \
           "family's own 20) and Spot is off (BATCH_SPOT_SHARE=0): at most 2 of BATCH_MAX_NODES=10 nodes" in (
               capsys.readouterr().out)


def test_a_vm_size_batch_does_not_offer_is_reported_as_the_hook_reports_it(arm):
    env = {**ENV, "BATCH_VM_SIZE": "standard_d2s_v9"}
    (found,) = [f for f in check(arm, env) if f.check == "Batch quotas"]  # (and the pool is another size)
    assert found.status == PROBLEM
    assert found.detail == ("BATCH_VM_SIZE standard_d2s_v9 is not a VM size Azure Batch offers in westeurope: the "
                            "pool cannot be made")
    assert found.fix.startswith("choose one from `az batch location list-skus --location westeurope`")
    with pytest.raises(HookError, match="BATCH_VM_SIZE standard_d2s_v9 is not a VM size Azure Batch offers in "
                                        "westeurope"):
        postprovision.ensure_pool(env, FakeCredential(), **arm.transport())


def test_an_unreadable_vm_size_listing_is_not_checked_and_says_which_role_reads_it(arm):
    arm.refused["/virtualMachineSkus"] = (403, "AuthorizationFailed", "no read on '{path}'")
    findings = check(arm)
    (found,) = problems(findings)
    assert (found.check, found.status) == ("Batch quotas", UNREAD)
    assert found.detail.startswith("cannot read the VM sizes Azure Batch offers in westeurope: your sign-in may "
                                   "not read it (403 AuthorizationFailed")
    assert f"--role Reader --scope /subscriptions/{SUB}`" in found.fix
    assert doctor.exit_code(findings) == 2


def test_an_account_in_user_subscription_mode_stops_neither_the_hook_nor_the_doctor(arm, capsys):
    # Such an account reports no core or pool quotas (the subscription's apply): nothing to hold the pool to.
    arm.batch_quotas = {"poolAllocationMode": "UserSubscription", "activeJobAndJobScheduleQuota": 100}
    arm.pools.clear()
    assert "created Batch pool" in postprovision.ensure_pool(ENV, FakeCredential(), **arm.transport())
    assert "warning" not in capsys.readouterr().out
    (found,) = problems(check(arm))
    assert (found.check, found.status) == ("Batch quotas", UNREAD)
    assert found.detail == ("Batch account bat reports no dedicated core quota (user subscription mode: the "
                            "subscription's quotas apply)")


def test_zero_spot_cores_matter_only_when_spot_is_allowed(arm):
    arm.batch_quotas["lowPriorityCoreQuota"] = 0
    assert problems(check(arm)) == []  # BATCH_SPOT_SHARE=0: no Spot node is ever asked for
    found = only_problem(check(arm, {**ENV, "BATCH_SPOT_SHARE": "0.5"}), "Batch quotas")
    assert found.detail == "Spot: 0 core(s) (BATCH_SPOT_SHARE=0.5); a standard_d2s_v3 node needs 2"


def test_the_hook_warns_of_the_spot_nodes_the_doctor_finds_no_cores_for(arm, capsys):
    arm.batch_quotas["lowPriorityCoreQuota"] = 0
    env = {**ENV, "BATCH_SPOT_SHARE": "0.5"}
    assert only_problem(check(arm, env), "Batch quotas").detail.startswith("Spot: 0 core(s)")
    postprovision.ensure_pool(env, FakeCredential(), **arm.transport())  # the first node is dedicated: it goes on
    # half of every pool is Spot (the scaling policy's split): with no Spot cores it stays at its one dedicated node
    assert ("warning: Batch account bat has 20 dedicated cores for standardDSv3Family and 0 Spot (low-priority) "
            "cores: at most 1 of BATCH_MAX_NODES=10 nodes") in capsys.readouterr().out


def test_a_full_pool_quota_is_reported_when_the_pool_is_missing(arm):
    arm.pools = {"other": {**arm.pools.pop("mp3pipe-pool"), "name": "other"}}
    arm.batch_quotas["poolQuota"] = 1
    found = [f for f in check(arm) if f.check == "Batch quotas" and f.status == PROBLEM]
    assert [f.detail for f in found] == ["pool quota 1, 1 pool(s) in use: the pool cannot be created"]


@pytest.mark.parametrize("missing", range(len(template_grants())))
def test_each_missing_role_assignment_is_reported_with_the_command_that_makes_it(arm, missing):
    who, guid, scope = template_grants()[missing]
    del arm.role_assignments[missing]
    found = only_problem(check(arm), "roles")
    role = next((name for name, g in doctor.ROLES.items() if g == guid), doctor.BATCH_APP_ROLE)
    assert f"lacks {role} on " in found.detail
    assert found.fix.startswith("`azd provision`")
    by = f'--role "{role}"' if role in doctor.ROLES else f"--role {BATCH_APP_ROLE_ID}"
    assert f"--assignee-object-id {PRINCIPALS[who]} " in found.fix and by in found.fix
    if scope != "appInsights":
        assert found.detail.endswith(SCOPES[scope]) and f"--scope {SCOPES[scope]}`" in found.fix


def test_a_role_held_above_the_scope_or_a_stronger_role_counts(arm):
    user = [a for a in arm.role_assignments if a["principalId"] == "user-principal"]
    for a in user:
        arm.role_assignments.remove(a)
    owner = doctor.ROLES["Storage Blob Data Owner"]
    arm.role_assignments += [
        {"principalId": "user-principal", "scope": RG, "roleDefinitionId": f"/x/roleDefinitions/{owner}"},
        {**next(a for a in user if a["scope"] == BATCH), "scope": f"/subscriptions/{SUB}"}]
    assert problems(check(arm)) == []


def test_a_role_on_another_container_does_not_count(arm):
    reader = next(a for a in arm.role_assignments if a["scope"] == SCOPES["inputContainer"])
    reader["scope"] = SCOPES["deadLetterContainer"]  # right role, right identity, wrong container
    found = only_problem(check(arm), "roles")
    assert found.detail == f"the pool's identity lacks Storage Blob Data Reader on {SCOPES['inputContainer']}"


def test_without_azure_principal_id_your_own_roles_are_said_to_be_unchecked(arm):
    findings = check(arm, {k: v for k, v in ENV.items() if k != "AZURE_PRINCIPAL_ID"})
    assert problems(findings) == []
    assert findings[-1].detail == ("9 role assignment(s) in place (yours not checked: no AZURE_PRINCIPAL_ID in the "
                                   "azd environment)")


def test_without_reader_the_checks_say_so_and_nothing_crashes(arm):
    arm.refused["/providers/Microsoft.Authorization/"] = (
        403, "AuthorizationFailed", "The client does not have authorization to perform action "
        "'Microsoft.Authorization/roleAssignments/read' over scope '{path}'")
    findings = check(arm)
    (roles,) = problems(findings)
    assert (roles.check, roles.status) == ("roles", UNREAD)
    assert "cannot read role assignments: your sign-in may not read it (403 AuthorizationFailed" in roles.detail
    assert f"--role Reader --scope {RG}" in roles.fix
    assert doctor.exit_code(findings) == 2

    arm.refused = {"/subscriptions/": (403, "AuthorizationFailed", "no access to '{path}'")}
    findings = check(arm)
    arm_read = [f for f in findings if f.check != "monitor heartbeat"]  # read from storage, not through ARM
    assert {f.status for f in arm_read} == {UNREAD} and doctor.exit_code(findings) == 2


def test_without_getfullurl_the_host_is_still_checked(arm):
    arm.refused["/getFullUrl"] = (403, "AuthorizationFailed", "no getFullUrl/action on '{path}'")
    plain_host_webhook(arm)
    findings = check(arm)
    assert {(f.check, f.status) for f in problems(findings)} == {("webhook host", PROBLEM),
                                                                 ("webhook function", UNREAD)}


def test_an_unreachable_resource_manager_is_one_clear_error(arm):
    options = {**arm.transport(), "base_url": "https://127.0.0.1:9", "retry_total": 0}
    with pytest.raises(doctor.DoctorError, match=r"^cannot reach Azure Resource Manager \("):
        doctor.run(ENV, FakeCredential(), **options)


def test_the_doctors_expectations_are_the_template_and_the_app():
    # every assignment the template makes, and nothing else, is one the doctor checks
    params = {"appPrincipalId": "app", "poolPrincipalId": "pool", "topicPrincipalId": "topic",
              "userPrincipalId": "user"}
    scopes = {"account": "storage", "batchAccount": "batch", "appInsights": "insights", "inputContainer": "input",
              "outputContainer": "output", "deadLetterContainer": "deadLetter", "notifyQueue": "notifyQueue"}
    template = sorted((params[p], guid, scopes[s]) for p, guid, s in template_grants())
    guids = {**doctor.ROLES, doctor.BATCH_APP_ROLE: BATCH_APP_ROLE_ID}
    assert sorted((g.who, guids[g.role], g.scope) for g in doctor.GRANTS) == template
    builtin = json.loads((Path(__file__).parent / "data" / "builtin_roles.json").read_text())["roles"]
    assert {name: builtin[name] for name in doctor.ROLES} == doctor.ROLES
    # the functions function_app.py registers (a fresh interpreter: indexing is once per process)
    code = "import function_app; print(sorted(f.get_function_name() for f in function_app.app.get_functions()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted(doctor.FUNCTIONS))
    assert doctor.SUBMIT_FUNCTION == postdeploy.SUBMIT_FUNCTION
    assert doctor.SUBSCRIPTION_NAME == postdeploy.SUBSCRIPTION_NAME


# -- the command itself --------------------------------------------------------------------------------------------
def _project(tmp_path: Path, arm: MgmtStandin, env: dict[str, str], blobs: str | None = None,
             blobs_ca: str | None = None) -> tuple[Path, dict[str, str]]:
    """A checkout after `azd up` and an `az` that hands out the stand-in's token (AzureCliCredential), and an
    Entra ID-shaped one for storage (`blobs`: Azurite over HTTPS with OAuth, trusted through `blobs_ca`)."""
    root = tmp_path / "checkout"
    (root / ".azure" / "dev").mkdir(parents=True)
    (root / "azure.yaml").write_text("name: mp3pipe\n")
    (root / ".azure" / "config.json").write_text(json.dumps({"version": 1, "defaultEnvironment": "dev"}))
    if blobs:
        env = {**env, "AzureWebJobsStorage__blobServiceUri": blobs}
    (root / ".azure" / "dev" / ".env").write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in env.items()))
    az = tmp_path / "bin" / "az"
    az.parent.mkdir()
    az.write_text(f"#!{sys.executable}\nimport json, sys, time\n"
                  f"token = {entra_token()!r} if 'storage.azure.com' in ' '.join(sys.argv) else {FAKE_TOKEN!r}\n"
                  "print(json.dumps({'accessToken': token, 'tokenType': 'Bearer', "
                  "'expires_on': int(time.time()) + 3600, 'expiresOn': '2099-01-01 00:00:00.000000', "
                  "'subscription': 's', 'tenant': 't'}))\n")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(Path(arm.ca_path).read_text() + (Path(blobs_ca).read_text() if blobs_ca else ""))
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCH_", "AzureWebJobs"))}
    shell.update(PATH=f"{az.parent}{os.pathsep}{shell['PATH']}", AZURE_TOKEN_CREDENTIALS="AzureCliCredential",
                 REQUESTS_CA_BUNDLE=str(bundle), MP3PIPE_ARM_ENDPOINT=arm.url, PYTHONPATH=str(REPO), COLUMNS="200")
    return root, shell


@pytest.fixture
def oauth_state(azurite_oauth, tls) -> tuple[str, str]:  # noqa: F811 - the fixtures imported above
    """Azurite over HTTPS with OAuth (a real account's sign-in path), holding a monitor state written just now."""
    ca = str(tls[1] / "ca.pem")
    account = BlobServiceClient(azurite_oauth, credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY},
                                connection_verify=ca)
    storage = BlobStorage(account)
    storage.ensure_containers("mp3pipe-state")
    storage.put_json("mp3pipe-state", MONITOR_STATE_BLOB, {"ran_at": time.time() - 30})
    return azurite_oauth, ca


def test_mp3pipe_azure_doctor_prints_each_check_and_exits_1_on_a_problem(arm, tmp_path, oauth_state):
    root, shell = _project(tmp_path, arm, ENV, *oauth_state)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mp3pipe", "--azure", "doctor"], cwd=root, env=shell,
                              capture_output=True, text=True, timeout=120)

    ok = run()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == f"ok            Function App: func-t is running at {HOST}"
    assert lines[2].startswith("ok            monitor heartbeat: the monitor last ran 3") and " s ago (" in lines[2]
    assert lines[-1] == "10 ok, 0 problem(s), 0 not checked"

    plain_host_webhook(arm)
    broken = run()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert (f"PROBLEM       webhook host: events go to https://{PLAIN_HOST}/runtime/webhooks/blobs, but the app "
            f"answers at https://{HOST}/runtime/webhooks/blobs") in broken.stdout
    assert "              fix: `azd hooks run postdeploy`" in broken.stdout


def test_mp3pipe_azure_doctor_without_a_sign_in_says_how_to_sign_in(arm, tmp_path):
    root, shell = _project(tmp_path, arm, ENV)
    (tmp_path / "bin" / "az").write_text(f"#!{sys.executable}\nimport sys\n"
                                         "print(\"ERROR: Please run 'az login' to setup account.\", file=sys.stderr)\n"
                                         "sys.exit(1)\n")
    result = subprocess.run([sys.executable, "-m", "mp3pipe", "--azure", "doctor"], cwd=root, env=shell,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no Azure sign-in" in result.stderr and "run `az login` or `azd auth login`" in result.stderr
    assert "Traceback" not in result.stderr


# -- the monitor's heartbeat ---------------------------------------------------------------------------------------
def test_the_time_since_the_monitor_last_ran_is_reported_and_a_stopped_monitor_is_a_problem(arm, deps):
    """A real monitor run writes its state; the doctor reads it: ok just after, a PROBLEM 16 minutes on (the app
    stopped), and an idle monitor that keeps running keeps it fresh with one write every 5 minutes at most."""
    import dataclasses

    clock = [time.time()]
    deps.settings = dataclasses.replace(deps.settings, state_container="mp3pipe-state")
    deps.clock = lambda: clock[0]
    arm.state.delete_if_exists("mp3pipe-state", MONITOR_STATE_BLOB)
    assert only_problem(check(arm, now=clock[0]), "monitor heartbeat").detail.startswith(
        "the monitor has never recorded a run")

    monitor_tick(deps)
    (found,) = [f for f in check(arm, now=clock[0] + 60) if f.check == "monitor heartbeat"]
    assert found.status == OK and found.detail.startswith("the monitor last ran 60 s ago ("), found

    clock[0] += 16 * 60  # nothing ran for 16 minutes
    found = only_problem(check(arm, now=clock[0]), "monitor heartbeat")
    assert "the monitor last ran 16 min ago" in found.detail and "more than 15 min" in found.detail
    assert "the pool stays at its last size" in found.detail and "az functionapp start -g rg-t -n func-t" in found.fix

    etag = arm.state.etag_of("mp3pipe-state", MONITOR_STATE_BLOB)
    monitor_tick(deps)  # the monitor runs again: fresh
    assert problems(check(arm, now=clock[0] + 1)) == []
    clock[0] += 60
    written = arm.state.etag_of("mp3pipe-state", MONITOR_STATE_BLOB)
    monitor_tick(deps)  # an idle run a minute later writes nothing
    assert arm.state.etag_of("mp3pipe-state", MONITOR_STATE_BLOB) == written != etag
    clock[0] += 300
    monitor_tick(deps)  # ... until its heartbeat is 5 minutes old
    assert arm.state.etag_of("mp3pipe-state", MONITOR_STATE_BLOB) != written
    assert problems(check(arm, now=clock[0] + 14 * 60)) == []


def test_the_stale_limit_is_three_monitor_periods_and_at_least_15_minutes():
    from mp3pipe.doctor.monitor_checks import stale_after

    assert stale_after("0 * * * * *") == 900  # every minute: 15 minutes
    assert stale_after("0 */10 * * * *") == 1800  # every 10 minutes: 3 periods
