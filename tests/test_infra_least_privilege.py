"""No secret in deployment history, no basic-auth way into the app, the host's storage by identity only."""

from __future__ import annotations

import re

from tests.support.bicep_reader import INFRA, all_resources, files, parse

# A parameter whose value can carry a secret: a webhook URL often holds the receiver's key in its query string.
SECRET_NAME = re.compile(r"webhook|secret|password|(?<!resource)token|sas|(^|[a-z])Key$", re.I)  # resourceToken: a hash


def secure(param: dict) -> bool:
    return any(d.get("type") == "secure" for d in param.get("decorators") or [])


def test_secret_bearing_parameters_are_secure_and_never_output():
    checked = 0
    for path in files():
        tree = parse(path)
        params = tree.get("parameters") or {}
        for name, param in params.items():
            if SECRET_NAME.search(name):
                checked += 1
                assert secure(param), f"{path.name}: param {name} can hold a secret but is not @secure()"
        hidden = {name for name, param in params.items() if secure(param)}
        for out, output in (tree.get("outputs") or {}).items():
            used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(output.get("value"))))
            assert not used & hidden, f"{path.name}: output {out} shows the secure param(s) {used & hidden}"
        for symbol, module in (tree.get("modules") or {}).items():  # a secure value stays secure in the module
            target = parse((path.parent / module["detail"]["path"]).resolve()).get("parameters") or {}
            for given, value in (module["config"].get("params") or {}).items():
                if isinstance(value, str) and value in hidden:
                    assert secure(target[given]), f"{path.name} module {symbol}: {value} -> non-secure {given}"
    assert checked >= 2  # main.bicep's and events.bicep's notificationWebhookUrl


def test_ftp_and_scm_basic_publishing_credentials_are_off():
    policies = {r.body["name"]: r.body for r in all_resources()
                if r.type == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"}
    assert set(policies) == {"ftp", "scm"}
    for body in policies.values():
        assert body["parent"] == "site" and body["properties"] == {"allow": False}


def test_the_hosts_diagnostic_events_use_table_storage_by_identity():
    (site,) = [r for r in all_resources() if r.type == "Microsoft.Web/sites"]
    settings = {s["name"]: s["value"] for s in site.body["properties"]["siteConfig"]["appSettings"]}
    assert settings["AzureWebJobsStorage__tableServiceUri"] == "tableEndpoint"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    main = parse(INFRA / "main.bicep")
    passed = main["modules"]["app"]["config"]["params"]["tableEndpoint"]
    assert passed["operator"]["operands"]["operand_1"] == "storage"  # storage.outputs.tableEndpoint
    storage = parse(INFRA / "modules" / "storage.bicep")["outputs"]["tableEndpoint"]["value"]
    assert "table" in str(storage)
    (grant,) = [r for r in all_resources() if r.type == "Microsoft.Authorization/roleAssignments"
                and "storageTableDataContributor" in str(r.body["properties"]["roleDefinitionId"])]
    assert grant.body["scope"] == "account" and grant.body["properties"]["principalId"] == "appPrincipalId"
