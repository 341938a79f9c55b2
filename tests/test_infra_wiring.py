"""Values passed between Bicep modules, followed from the module that makes them through main.bicep to their use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.bicep_trace import MAIN, Joined, Made, body, follow, real

APP = MAIN.module("app")
ROLES = MAIN.module("roles")
STORAGE = MAIN.module("storage")
EVENTS = MAIN.module("events")
IDENTITIES = "modules/identities.bicep"


def setting(name: str) -> Any:
    """Where the value of the app setting `name` (infra/modules/functionapp.bicep) is made."""
    (value,) = [s["value"] for s in body(APP, "site")["properties"]["siteConfig"]["appSettings"] if s["name"] == name]
    return follow(APP, value)


def principal(symbol: str) -> Any:
    """Where the principal a role assignment in roles.bicep is given to is made."""
    return follow(ROLES, body(ROLES, symbol)["properties"]["principalId"])


def container(symbol: str) -> tuple[str, Made]:
    """An `existing` container in roles.bicep: (its name, the storage account it sits in)."""
    service = body(ROLES, symbol)["parent"]
    return follow(ROLES, body(ROLES, symbol)["name"]), real(ROLES, body(ROLES, service)["parent"])


def test_every_module_gets_the_params_it_declares_and_every_output_it_is_given_exists():
    for name, module in MAIN.tree["modules"].items():
        scope = MAIN.module(name)
        declared = scope.tree["parameters"]
        required = {p for p, d in declared.items() if d.get("default") is None}  # pycep: None when there is none
        given = set(module["config"]["params"])
        assert given <= set(declared), (name, given - set(declared))
        assert required <= given, (name, required - given)
        for param in given:
            follow(scope, param)  # KeyError / AssertionError when a module output or a name does not exist
    for output in MAIN.tree["outputs"].values():
        follow(MAIN, output["value"])


def test_the_app_runs_as_one_identity_everywhere_it_is_named():
    site = body(APP, "site")
    (key,) = site["identity"]["userAssignedIdentities"]
    app = Made(IDENTITIES, "appIdentity")
    ids = [follow(APP, key), follow(APP, site["properties"]["functionAppConfig"]["deployment"]["storage"]
                                   ["authentication"]["userAssignedIdentityResourceId"])]
    client_ids = [setting("AzureWebJobsStorage__clientId"), setting("AZURE_CLIENT_ID"),
                  *setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING").parts]
    principals = [principal(symbol) for symbol in ("appBlob", "appQueue", "appBatch", "appTelemetry")]
    assert ids == [Joined((Made(app.file, app.symbol, ("id",)),)), Made(app.file, app.symbol, ("id",))]
    assert client_ids == [Made(app.file, app.symbol, ("properties", "clientId"))] * 3
    assert principals == [Made(app.file, app.symbol, ("properties", "principalId"))] * 4


def test_the_pool_identity_the_app_names_is_the_one_given_the_nodes_storage_roles():
    pool = Made(IDENTITIES, "poolIdentity", ("id",))
    assert setting("BATCH_POOL_IDENTITY_ID") == pool
    assert follow(MAIN, MAIN.tree["outputs"]["BATCH_POOL_IDENTITY_ID"]["value"]) == pool  # the pool hook's
    for symbol in ("poolRead", "poolWrite"):
        assert principal(symbol) == Made(IDENTITIES, "poolIdentity", ("properties", "principalId")), symbol


def test_the_containers_the_app_reads_are_made_and_are_the_ones_the_roles_and_events_name():
    made = set(follow(STORAGE, "containers").values())  # pipelineContainers: one per value of `containers`
    assert body(STORAGE, "pipelineContainers")["name"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "name", "operand_2": "value"}}}
    app = {name: setting(name) for name in ("INPUT_CONTAINER", "OUTPUT_CONTAINER", "STATE_CONTAINER")}
    endpoint, deployment = follow(APP, body(APP, "site")["properties"]["functionAppConfig"]["deployment"]["storage"]
                                  ["value"]).parts
    dead_letter = follow(EVENTS, "deadLetterContainer")
    assert len(set(app.values())) == 3 and set(app.values()) | {deployment, dead_letter} <= made
    account = Made("modules/storage.bicep", "account")
    assert endpoint == Made(account.file, account.symbol, ("properties", "primaryEndpoints", "blob"))
    # Nodes read the input container and write the output one; Event Grid dead-letters into its own.
    for assignment, name in (("poolRead", app["INPUT_CONTAINER"]), ("poolWrite", app["OUTPUT_CONTAINER"]),
                             ("topicDeadLetter", dead_letter)):
        assert container(body(ROLES, assignment)["scope"]) == (name, account), assignment
    # Notifications are about the container the MP3s land in.
    assert follow(EVENTS, follow(EVENTS, "notifyFilter")["subjectBeginsWith"]).parts == (app["OUTPUT_CONTAINER"],)


@pytest.mark.parametrize(("assignment", "used_by_the_app", "property_used"), [
    ("appBlob", "AzureWebJobsStorage__blobServiceUri", ("properties", "primaryEndpoints", "blob")),
    ("appQueue", "AzureWebJobsStorage__queueServiceUri", ("properties", "primaryEndpoints", "queue")),
    ("appBatch", "BATCH_ACCOUNT_URL", ("properties", "accountEndpoint")),
    ("appTelemetry", "APPLICATIONINSIGHTS_CONNECTION_STRING", ("properties", "ConnectionString")),
])
def test_each_app_role_is_scoped_to_the_resource_the_app_is_pointed_at(assignment, used_by_the_app, property_used):
    used = setting(used_by_the_app)
    (used,) = used.parts if isinstance(used, Joined) else (used,)  # batch.bicep: 'https://${account...}'
    assert isinstance(used, Made) and used.path == property_used, used
    assert real(ROLES, body(ROLES, assignment)["scope"]) == Made(used.file, used.symbol)


def test_event_grid_watches_the_pipelines_account_and_its_identity_gets_the_dead_letter_role():
    topic = body(EVENTS, "topic")
    assert follow(EVENTS, topic["properties"]["source"]) == Made("modules/events.bicep", "account", ("id",))
    assert real(EVENTS, "account") == Made("modules/storage.bicep", "account")
    assert principal("topicDeadLetter") == Made("modules/events.bicep", "topic", ("identity", "principalId"))
    where = follow(EVENTS, "notifyDeadLetter")["deadLetterDestination"]["properties"]
    assert follow(EVENTS, where["resourceId"]) == Made("modules/events.bicep", "account", ("id",))
    assert container(body(ROLES, "topicDeadLetter")["scope"])[0] == follow(EVENTS, where["blobContainerName"])
