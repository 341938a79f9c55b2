"""Every Bicep resource's type, API version and property paths, checked against the azure-mgmt REST models."""

from __future__ import annotations

import pytest

from tests.support import arm_schema
from tests.support.bicep_reader import Resource, all_resources, parse, resources


def check(resource: Resource) -> arm_schema.Report:
    cls, why = arm_schema.model_for(resource.type, resource.api_version)
    if cls is None:
        return arm_schema.Report(errors=[f"{resource.file} {resource.symbol}: {why}"])
    report = arm_schema.validate(resource.body, arm_schema.model_tree(cls), skip=arm_schema.BICEP_KEYS)
    report.errors = [f"{resource.file} {resource.symbol} ({resource.type}@{resource.api_version}): {e}"
                     for e in report.errors]
    return report


def test_every_resource_matches_its_rest_model():
    declared = [r for r in all_resources() if not r.existing]
    existing = [r for r in all_resources() if r.existing]
    errors, checked = [], 0
    for resource in declared:
        report = check(resource)
        errors += report.errors
        checked += report.checked
    for resource in existing:  # only type and API version matter for `existing`
        _, why = arm_schema.model_for(resource.type, resource.api_version)
        if why:
            errors.append(f"{resource.file} {resource.symbol}: {why}")
    assert errors == [], "\n".join(errors)
    types = {r.type for r in declared}
    assert len(declared) >= 25 and len(types) >= 15 and checked >= 150
    print(f"schema: {len(declared)} resources ({len(types)} types, {len(existing)} existing) "
          f"{checked} property paths checked")


def one(snippet: str) -> Resource:
    return resources(parse(text=snippet))[0]


GOOD = """
resource st 'Microsoft.Storage/storageAccounts@2026-09-01' = {
  name: 'stx'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}
"""


def test_a_correct_snippet_passes():
    report = check(one(GOOD))
    assert report.errors == [] and report.checked == 8


def test_references_and_interpolations_are_not_taken_for_literals():
    snippet = (GOOD.replace("'StorageV2'", "storageKind").replace("'Standard_LRS'", "'Standard_${redundancy}'")
               .replace("allowSharedKeyAccess: false", "allowSharedKeyAccess: p ? false : null"))
    assert check(one(snippet)).errors == []


@pytest.mark.parametrize(("broken", "expected"), [
    (GOOD.replace("allowSharedKeyAccess", "allowSharedKeyAcess"), "properties.allowSharedKeyAcess: not a property"),
    (GOOD.replace("  properties: {\n    allowSharedKeyAccess: false\n",
                  "  allowSharedKeyAccess: false\n  properties: {\n"),
     "allowSharedKeyAccess: not a property of StorageAccountCreateParameters"),
    (GOOD.replace("      defaultAction", "      bypass: {\n        x: 1\n      }\n      defaultAction"),
     "properties.networkAcls.bypass: expected a str"),
    (GOOD.replace("'StorageV2'", "'StorageV3'"), "kind: 'StorageV3' is not a known Kind"),
    (GOOD.replace("'Standard_LRS'", "'Standard_LRX'"), "sku.name: 'Standard_LRX' is not a known SkuName"),
    (GOOD.replace("allowSharedKeyAccess: false", "allowSharedKeyAccess: 'no'"),
     "properties.allowSharedKeyAccess: expected a bool, got 'no'"),
    (GOOD.replace("defaultAction: 'Allow'", "defaultAction: 1"),
     "properties.networkAcls.defaultAction: expected a str"),
    (GOOD.replace("  properties: {\n    allowSharedKeyAccess: false\n",
                  "  properties: p ? {\n    allowSharedKeyAcess: false\n  } : {\n"),
     "properties.allowSharedKeyAcess: not a property"),
    (GOOD.replace("  properties: {\n    allowSharedKeyAccess: false\n",
                  "  properties: p ? {} : {\n    allowSharedKeyAccess: 'no'\n"),
     "properties.allowSharedKeyAccess: expected a bool"),
    (GOOD.replace("  properties: {\n    allowSharedKeyAccess: false\n",
                  "  properties: union({}, {\n    allowSharedKeyAcess: false\n  }, {\n")
     .replace("    }\n  }\n}", "    }\n  })\n}"),
     "properties.allowSharedKeyAcess: not a property"),
    (GOOD.replace("    name: 'Standard_LRS'", "    name: p == 1 ? 'Standard_LRS' : 'Standard_LRX'"),
     "sku.name: 'Standard_LRX' is not a known SkuName"),
    (GOOD.replace("2026-09-01", "2019-13-01"), "API version unknown to azure-mgmt-storage"),
    (GOOD.replace("Microsoft.Storage/storageAccounts@", "Microsoft.Storage/storageAcounts@"), "no azure-mgmt model"),
    ("resource s 'Microsoft.Web/sites@2025-05-01' = {\n  name: 'f'\n"
     "  properties: {\n    defaultHostName: 'f.net'\n  }\n}\n",
     "properties.defaultHostName: read-only in SiteProperties"),
])
def test_a_broken_snippet_fails(broken, expected):
    errors = check(one(broken)).errors
    assert errors and expected in errors[0], errors


def test_polymorphic_destination_is_checked_by_its_endpoint_type():
    snippet = """
resource sub 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  name: 'n'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://example.invalid/x'
        queueName: 'q'
      }
    }
  }
}
"""
    errors = check(one(snippet)).errors
    assert len(errors) == 1 and "destination.properties.queueName: not a property" in errors[0], errors


def test_module_calls_pass_the_parameters_their_modules_declare():
    from tests.support.bicep_reader import files

    errors = []
    for path in files():
        for symbol, module in (parse(path).get("modules") or {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            declared = parse(target).get("parameters") or {}
            given = set(module["config"].get("params") or {})
            required = {name for name, p in declared.items() if p.get("default") is None}
            unknown, missing = given - set(declared), required - given
            if unknown or missing:
                errors.append(f"{path.name} module {symbol}: unknown {sorted(unknown)}, missing {sorted(missing)}")
    assert errors == [], errors
