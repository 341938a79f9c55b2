"""One slot setting: the pool the hook makes and the app's scaling plan take the same conversions per node, decided
in one place (shared/settings.py: four per vCPU of the VM size unless BATCH_SLOTS_PER_NODE says otherwise)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.hooks.pool import app_pool
from shared.settings import DEFAULTS, Settings, vcpus_of
from tests.support.bicep_reader import INFRA, parse
from tests.test_infra_settings import app_settings

MAIN = parse(INFRA / "main.bicep")


def evaluate(expr: Any, params: dict[str, Any]) -> Any:
    """The few Bicep expressions the slot setting uses, as pycep renders them: names, `a > b`, `c ? x : y`,
    string(x)."""
    if isinstance(expr, str):
        return params.get(expr, expr)
    if not isinstance(expr, dict):
        return expr
    if "operator" in expr:
        op, args = expr["operator"]["type"], expr["operator"]["operands"]
        if op == "greater_than":
            return evaluate(args["operand_1"], params) > evaluate(args["operand_2"], params)
        if op == "conditional":
            chosen = "true_value" if evaluate(args["condition"], params) else "false_value"
            return evaluate(args[chosen], params)
    if expr.get("function", {}).get("type") == "string":
        return str(evaluate(expr["function"]["parameters"]["value_to_convert"], params))
    raise AssertionError(f"expression not understood: {expr}")


def deployed(slots_param: int, vm_size: str) -> tuple[Settings, Settings]:
    """(the app's settings, the postprovision hook's settings) for one choice of the template's parameters."""
    app_value = evaluate(app_settings()["BATCH_SLOTS_PER_NODE"], {"slotsPerNode": slots_param})
    output = evaluate(MAIN["outputs"]["BATCH_SLOTS_PER_NODE"]["value"], {"batchSlotsPerNode": slots_param})
    base = {"BATCH_GATEWAY": "azure", "BATCH_ACCOUNT_URL": "https://ba.eastus.batch.azure.com",
            "AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.windows.net/", "BATCH_VM_SIZE": vm_size}
    return (Settings.from_env({**base, "BATCH_SLOTS_PER_NODE": app_value}),
            Settings.from_env({**base, "BATCH_SLOTS_PER_NODE": output}))  # the hook reads azd's outputs


def test_by_default_template_app_and_pool_take_four_slots_per_vcpu():
    params = MAIN["parameters"]
    vm_size = params["batchVmSize"]["default"]
    assert vm_size == DEFAULTS["BATCH_VM_SIZE"]  # the app's default VM size is the template's
    app, hook = deployed(params["batchSlotsPerNode"]["default"], vm_size)
    assert app.slots_per_node == hook.slots_per_node == 4 * vcpus_of(vm_size) == 8
    assert app_pool(hook)["taskSlotsPerNode"] == app.slots_per_node  # what the pool is created with


@pytest.mark.parametrize(("slots", "vm_size", "expected"), [(3, "standard_d2s_v3", 3), (0, "standard_f8s_v2", 32)])
def test_a_chosen_slot_count_or_vm_size_reaches_both_alike(slots, vm_size, expected):
    app, hook = deployed(slots, vm_size)
    assert app.slots_per_node == hook.slots_per_node == expected
    assert app_pool(hook)["taskSlotsPerNode"] == expected
