"""Storage does not grow without bound: dead letters and failed tasks' logs expire, inputs when asked (default kept)."""

from __future__ import annotations

from shared.domain import naming
from tests.support.bicep_reader import INFRA, all_resources, parse


def main_params() -> dict:
    return parse(INFRA / "main.bicep")["parameters"]


def containers() -> dict[str, str]:
    return parse(INFRA / "main.bicep")["variables"]["containers"]["value"]


def rules() -> dict[str, dict]:
    (policy,) = [r for r in all_resources() if r.type == "Microsoft.Storage/storageAccounts/managementPolicies"]
    assert policy.body["name"] == "default"  # the only name Azure accepts for an account's policy
    return {rule["name"]: rule for rule in policy.body["properties"]["policy"]["rules"]}


def deletes(rule: dict) -> tuple[list[str], object]:
    definition = rule["definition"]
    assert rule["type"] == "Lifecycle" and definition["filters"]["blobTypes"] == ["blockBlob"]
    return definition["filters"]["prefixMatch"], definition["actions"]["baseBlob"]["delete"][
        "daysAfterModificationGreaterThan"]


def test_dead_letters_and_task_logs_expire_after_their_parameters():
    found = rules()
    assert deletes(found["dead-letters"]) == (["${containers.deadLetter}/"], "deadLetterRetentionDays")
    # The folder Batch uploads failed tasks' logs to (naming.logs_folder), in the output container only.
    assert deletes(found["task-logs"]) == ([f"${{containers.output}}/{naming.LOGS_FOLDER}/"], "taskLogRetentionDays")
    assert found["dead-letters"]["enabled"] is True and found["task-logs"]["enabled"] is True
    params = main_params()
    assert params["deadLetterRetentionDays"]["default"] == 30 and params["taskLogRetentionDays"]["default"] == 30
    assert {"deadLetter", "output", "input"} <= set(containers())


def test_inputs_are_kept_unless_an_age_is_set():
    rule = rules()["inputs"]
    prefix, days = deletes(rule)
    assert prefix == ["${containers.input}/"]
    enabled = {"operator": {"type": "greater_than", "operands": {"operand_1": "inputRetentionDays", "operand_2": 0}}}
    assert rule["enabled"] == enabled
    assert days["operator"]["operands"]["condition"] == enabled  # disabled: a far date, never 0 days
    assert days["operator"]["operands"]["true_value"] == "inputRetentionDays"
    assert days["operator"]["operands"]["false_value"] >= 3650
    assert main_params()["inputRetentionDays"]["default"] == 0
    assert "${MP3PIPE_INPUT_RETENTION_DAYS=0}" in (INFRA / "main.parameters.json").read_text()


def test_no_rule_touches_the_mp3s_the_state_or_the_app_package():
    c = containers()
    prefixes = [p for rule in rules().values() for p in deletes(rule)[0]]
    assert all(p.count("/") >= 1 for p in prefixes)
    for kept in ("state", "deployment"):
        assert not any(p.startswith(f"${{containers.{kept}}}") for p in prefixes), kept
    output_rules = [p for p in prefixes if p.startswith("${containers.output}")]
    assert output_rules == [f"${{containers.output}}/{naming.LOGS_FOLDER}/"]  # never the MP3s or the reports
    assert c["state"] != c["output"]
