"""The template and the code agree: app settings set vs read, role GUIDs vs role names, identity instead of keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import DEFAULTS, check
from shared.settings_spec import BY_NAME
from tests.support.bicep_reader import INFRA, REPO, all_resources, files, literal

ROLES = json.loads((Path(__file__).parent / "data" / "builtin_roles.json").read_text())["roles"]

# Settings the code can read that the template leaves unset on purpose.
OPTIONAL = {
    "AzureWebJobsStorage": "a connection string holds a key: storage is reached by identity (__blobServiceUri)",
    "AzureWebJobsStorage__accountName": "the template sets AzureWebJobsStorage__blobServiceUri instead",
    "BATCH_ACCOUNT_KEY": "no keys: the app signs in to Batch with its identity",
    "LOCAL_STATE_DIR": "local gateway only",
    "FFMPEG_PATH": "local gateway only",
    "LOCAL_TASK_SLOTS": "local gateway only",
}
# Settings the template sets for the platform rather than for our code.
PLATFORM = {
    "AzureWebJobsStorage__tableServiceUri": "Functions host: its diagnostic events (Flex Consumption), by identity",
    "AzureWebJobsStorage__credential": "Functions host: identity-based AzureWebJobsStorage",
    "AZURE_CLIENT_ID": "azure-identity: DefaultAzureCredential picks the app's user-assigned identity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host: telemetry destination",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host: Entra ID auth to Application Insights",
}
# Number-valued settings the template gives a value other than the app's default (shared/settings.py DEFAULTS),
# each with its reason. Anything else the template sets to a number must be the app's default: a number changed
# only in the template (TASK_RETENTION_SECONDS was 604800 here, 7 days of task folders on a node's disk while the
# app's default is 900 s) is a deployment that behaves unlike every test.
DIFFERS_FROM_DEFAULT = {
    "BATCH_MIN_NODES": "the app's default '' means 0 on Azure (the local gateway's cores locally): the template "
                       "says 0 outright",
}


def app_settings() -> dict[str, object]:
    sites = [r for r in all_resources() if r.type == "Microsoft.Web/sites" and not r.existing]
    assert len(sites) == 1
    return {s["name"]: s["value"] for s in sites[0].body["properties"]["siteConfig"]["appSettings"]}


def settings_the_code_reads() -> set[str]:
    names = set(BY_NAME)
    for path in (REPO / "shared").rglob("*.py"):
        if "node" in path.relative_to(REPO / "shared").parts:
            continue  # the task runner on the Batch node: its environment is the task's, not app settings
        names |= set(re.findall(r"environ\.get\(\s*\"([A-Za-z_][A-Za-z0-9_]*)\"", path.read_text()))
        names |= set(re.findall(r"\benv\.get\(\s*\"([A-Za-z_][A-Za-z0-9_]*)\"", path.read_text()))
    return names


def test_every_setting_the_code_reads_is_set_or_deliberately_optional():
    missing = settings_the_code_reads() - set(app_settings()) - set(OPTIONAL)
    assert missing == set(), f"read by shared/ but not set by infra/modules/functionapp.bicep: {sorted(missing)}"
    assert set(OPTIONAL) <= settings_the_code_reads(), "an OPTIONAL entry is no longer read by the code"
    assert set(OPTIONAL).isdisjoint(app_settings())


def test_every_setting_the_template_sets_is_declared_or_the_platforms():
    undeclared = set(app_settings()) - set(BY_NAME) - set(PLATFORM)
    assert undeclared == set(), f"set by the template but not declared in shared/settings_spec.py: {sorted(undeclared)}"
    assert set(PLATFORM).isdisjoint(BY_NAME)


def test_every_setting_the_code_reads_is_declared():
    undeclared = settings_the_code_reads() - set(BY_NAME)
    assert undeclared == set(), f"read by shared/ but not declared in shared/settings_spec.py: {sorted(undeclared)}"


def test_every_literal_value_the_template_sets_is_valid_for_its_declaration():
    from tests.support.bicep_reader import parse

    params = set(parse(INFRA / "modules" / "functionapp.bicep")["parameters"])
    literals = {name: value for name, value in app_settings().items()
                if name in BY_NAME and isinstance(value, str) and value not in params and "${" not in value}
    assert {"FFMPEG_PRESET", "BATCH_GATEWAY", "RECONCILE_BATCH", "TASK_RETENTION_SECONDS"} <= set(literals)
    wrong = {name: check(name, value) for name, value in literals.items() if check(name, value)}
    assert wrong == {}, f"infra/modules/functionapp.bicep sets values its declarations refuse: {wrong}"


def test_the_templates_numbers_are_the_apps_defaults_unless_a_reason_is_given():
    numbers = {k: v for k, v in app_settings().items() if isinstance(v, str) and v.isdigit() and k in DEFAULTS}
    assert "TASK_RETENTION_SECONDS" in numbers and len(numbers) >= 5
    differs = {k: (v, DEFAULTS[k]) for k, v in numbers.items() if v != DEFAULTS[k] and k not in DIFFERS_FROM_DEFAULT}
    assert differs == {}, f"infra/modules/functionapp.bicep (template, app default) with no reason: {differs}"
    assert set(DIFFERS_FROM_DEFAULT) <= set(numbers), "a DIFFERS_FROM_DEFAULT entry the template no longer sets"


def test_binding_expressions_of_the_triggers_are_app_settings():
    used = set()
    for path in [REPO / "function_app.py", *(REPO / "functions").glob("*.py")]:
        used |= set(re.findall(r"%([A-Za-z_][A-Za-z0-9_]*)%", path.read_text()))
    assert used >= {"INPUT_CONTAINER", "MONITOR_SCHEDULE", "RECONCILE_SCHEDULE"}
    assert used <= set(app_settings())


def test_azure_runs_on_identity_only():
    settings = app_settings()
    assert literal(settings["BATCH_GATEWAY"]) == "azure"
    assert settings["BATCH_POOL_IDENTITY_ID"] == "poolIdentityId"  # the pool's identity: no SAS URLs in Azure
    text = "\n".join(p.read_text() for p in files())
    for secret in ("listKeys", "AccountKey", "primaryKey", "connectionString:"):
        assert secret not in text
    storage = next(r for r in all_resources() if r.type == "Microsoft.Storage/storageAccounts" and not r.existing)
    assert storage.body["properties"]["allowSharedKeyAccess"] is False
    assert storage.body["properties"]["allowBlobPublicAccess"] is False
    batch = next(r for r in all_resources() if r.type == "Microsoft.Batch/batchAccounts" and not r.existing)
    assert batch.body["properties"]["allowedAuthenticationModes"] == ["AAD"]
    insights = next(r for r in all_resources() if r.type == "Microsoft.Insights/components")
    assert insights.body["properties"]["DisableLocalAuth"] is True


ROLE_VAR = re.compile(r"^var (\w+) = '([0-9a-f-]{36})' // (.+)$", re.M)


def role_vars() -> dict[str, tuple[str, str]]:
    return {m[0]: (m[1], m[2].strip()) for m in ROLE_VAR.findall((INFRA / "modules" / "roles.bicep").read_text())}


def test_every_role_guid_matches_the_role_named_beside_it():
    found = role_vars()
    assert len(found) >= 5
    wrong = {var: (guid, name) for var, (guid, name) in found.items() if ROLES.get(name) != guid}
    assert wrong == {}, f"GUID does not match the built-in role named beside it: {wrong}"


def test_every_role_assignment_uses_a_named_built_in_role_or_the_templates_own():
    found = role_vars()
    own = {r.symbol for r in all_resources() if r.type == "Microsoft.Authorization/roleDefinitions"}
    assignments = [r for r in all_resources() if r.type == "Microsoft.Authorization/roleAssignments"]
    assert len(assignments) >= 9
    for a in assignments:
        definition = a.body["properties"]["roleDefinitionId"]
        if "operator" in definition:  # <roleDefinition symbol>.id
            assert definition["operator"]["operands"]["operand_1"] in own and \
                definition["operator"]["operands"]["operand_2"] == "id", a.symbol
            continue
        ref = definition["function"]
        assert ref["type"] == "subscription_resource_id"
        assert ref["parameters"]["resource_name_1"] in found, a.symbol


def test_the_role_table_catches_a_wrong_guid():
    text = "var storageBlobDataReader = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Reader\n"
    (var, guid, name), = ROLE_VAR.findall(text)
    assert ROLES[name] != guid


def _substitute(value: object, params: dict[str, object]) -> object:
    if isinstance(value, str):
        return params.get(value, value)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def test_outputs_the_hooks_and_cli_read_equal_the_apps_settings():
    from tests.support.bicep_reader import parse

    main = parse(INFRA / "main.bicep")
    app_params = main["modules"]["app"]["config"]["params"]
    declared = parse(INFRA / "modules" / "functionapp.bicep")["parameters"]
    settings = app_settings()
    shared = [name for name in main["outputs"] if name in settings]
    assert len(shared) >= 10
    for name in shared:
        in_app = _substitute(settings[name], {p: app_params[p] for p in declared if p in app_params})
        assert in_app == main["outputs"][name]["value"], name


def test_the_deployed_package_holds_every_module_the_app_imports():
    import subprocess
    import sys

    code = ("import sys, function_app; print('\\n'.join(m.__file__ for m in list(sys.modules.values()) "
            "if getattr(m, '__file__', None)))")
    files_loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                                  check=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
    ours = {Path(f).resolve().relative_to(REPO).parts[0] for f in files_loaded
            if Path(f).resolve().is_relative_to(REPO) and ".venv" not in Path(f).parts}
    ignored = {line.strip().rstrip("/") for line in (REPO / ".funcignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert ours >= {"function_app.py", "functions", "shared"}
    assert ours.isdisjoint(ignored), ours & ignored
    for needed in ("host.json", "requirements.txt"):
        assert needed not in ignored


def test_the_docs_role_table_lists_every_role_the_template_assigns():
    table = (REPO / "docs" / "deploy-azure.md").read_text()
    for guid, name in role_vars().values():
        assert re.search(rf"^\| {re.escape(name)} \| `{guid}` \|", table, re.M), name
