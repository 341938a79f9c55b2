"""The optional "file done / failed" notification: a webhook (validated by Event Grid's handshake) or a Storage
queue (no handshake), the same events either way; neither can be half made."""

from __future__ import annotations

import json

from tests.support import arm_schema
from tests.support.bicep_reader import INFRA, REPO, all_resources, parse

EVENTS = parse(INFRA / "modules" / "events.bicep")


def subscriptions() -> dict[str, dict]:
    return {r.body["name"]: r.body["properties"] for r in all_resources()
            if r.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions" and r.file == "modules/events.bicep"}


def conditions() -> dict[str, object]:
    return {r["config"]["config"]["name"]: r["config"]["condition"] for r in EVENTS["resources"].values()
            if "condition" in r["config"]}


def test_both_destinations_share_one_filter_and_one_dead_letter_and_each_has_its_own_switch():
    subs = subscriptions()
    assert set(subs) == {"mp3pipe-notify", "mp3pipe-notify-queue"}
    for props in subs.values():
        assert props["filter"] == "notifyFilter" and props["deadLetterWithResourceIdentity"] == "notifyDeadLetter"
        assert props["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    variables = EVENTS["variables"]
    f = variables["notifyFilter"]["value"]
    assert f["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert f["advancedFilters"] == [{"operatorType": "StringEndsWith", "key": "subject",
                                     "values": [".mp3", ".error.json"]}]
    # The shared parts against the REST model too (the schema test sees only their names in the resources).
    cls, _ = arm_schema.model_for("Microsoft.EventGrid/systemTopics/eventSubscriptions", "2025-02-15")
    props = arm_schema.model_tree(cls).fields["properties"][0]
    props = arm_schema.resolve(props)
    for key, var in (("filter", "notifyFilter"), ("deadLetterWithResourceIdentity", "notifyDeadLetter")):
        report = arm_schema.validate(variables[var]["value"], props.fields[key][0], key)
        assert report.errors == [] and report.checked >= 5, report.errors
    assert conditions() == {"mp3pipe-notify": not_empty("notificationWebhookUrl"),
                            "mp3pipe-notify-queue": not_empty("notificationQueue")}


def not_empty(param: str) -> dict:
    """`!empty(param)` as pycep renders it."""
    return {"operator": {"type": "not", "operands": {"bool_value": {"function": {
        "type": "empty", "parameters": {"item_to_test": param}}}}}}


def test_the_queue_destination_is_made_reachable_by_identity_without_a_handshake():
    queue = subscriptions()["mp3pipe-notify-queue"]
    assert "destination" not in queue  # delivered with the topic's identity: the account takes no keys
    delivery = queue["deliveryWithResourceIdentity"]
    assert delivery["identity"] == {"type": "SystemAssigned"}
    dest = delivery["destination"]
    assert dest["endpointType"] == "StorageQueue" and dest["properties"]["queueName"] == "notificationQueue"
    assert 0 < dest["properties"]["queueMessageTimeToLiveInSeconds"] <= 7 * 86400  # the queue does not grow forever
    queues = [r for r in all_resources() if r.type == "Microsoft.Storage/storageAccounts/queueServices/queues"]
    made = [q for q in queues if not q.existing]
    assert [q.file for q in made] == ["modules/storage.bicep"]
    role = next(r for r in all_resources() if r.symbol == "topicQueueSend")
    assert role.body["scope"] == "notifyQueue" and role.body["properties"]["principalId"] == "topicPrincipalId"
    ref = role.body["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    assert ref == "storageQueueDataMessageSender"
    main = parse(INFRA / "main.bicep")
    assert main["parameters"]["notificationQueue"]["default"] == ""
    from_storage = {"operator": {"type": "property_accessor", "operands": {"operand_1": "storage", "operand_2": {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "outputs",
                                                                "operand_2": "notificationQueue"}}}}}}
    for module in ("events", "roles"):  # after the storage module made the queue
        assert main["modules"][module]["config"]["params"]["notificationQueue"] == from_storage
    assert main["modules"]["storage"]["config"]["params"]["notificationQueue"] == "notificationQueue"
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["notificationQueue"]["value"] == "${MP3PIPE_NOTIFY_QUEUE=}"
    assert params["notificationWebhookUrl"]["value"] == "${MP3PIPE_NOTIFY_WEBHOOK=}"


def test_docs_say_the_webhook_must_answer_the_handshake_and_offer_the_queue():
    docs = (REPO / "docs" / "deploy-azure.md").read_text()
    section = docs[docs.index("### The notification webhook fails `azd provision`"):]
    section = section[:section.index("\n##", 4)]
    for needed in ("SubscriptionValidationEvent", "validationCode", "MP3PIPE_NOTIFY_QUEUE", "azd env set"):
        assert needed in section, needed
