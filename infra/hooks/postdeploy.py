"""azd postdeploy hook: create or update the Event Grid subscription that feeds the blob trigger, idempotently.

Its webhook needs the app's `blobs_extension` system key, which exists only once the code is deployed, and the
name of the registered function: a wrong name is answered 202 and every event is silently lost
(Azure/azure-functions-host #8802), so the hook checks the name against the deployed app's functions first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from infra.hooks.common import HookError, client_options, need, run_main

SUBSCRIPTION_NAME = "mp3pipe-submit"
SUBMIT_FUNCTION = "submit"  # functions/submit.py; tests/test_infra_hooks.py checks it is registered in function_app.py
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440


def webhook_url(app: str, function: str, key: str) -> str:
    return (f"https://{app}.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.{function}"
            f"&code={quote(key, safe='')}")


def desired(env: Mapping[str, str], storage_id: str, url: str) -> dict[str, Any]:
    """The subscription, as its REST body: BlobCreated under the input container, .mp4 (any case), dead letters."""
    input_container, dead_letter = need(env, "INPUT_CONTAINER", "EVENTGRID_DEADLETTER_CONTAINER")
    return {"properties": {
        "eventDeliverySchema": "EventGridSchema",
        "destination": {"endpointType": "WebHook", "properties": {"endpointUrl": url, "maxEventsPerBatch": 1}},
        "filter": {
            "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
            "subjectBeginsWith": f"/blobServices/default/containers/{input_container}/",
            "subjectEndsWith": ".mp4",
            "isSubjectCaseSensitive": False,  # .MP4 passes too
        },
        "retryPolicy": {"maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS, "eventTimeToLiveInMinutes": EVENT_TTL_MINUTES},
        "deadLetterWithResourceIdentity": {
            "identity": {"type": "SystemAssigned"},
            "deadLetterDestination": {"endpointType": "StorageBlob",
                                      "properties": {"resourceId": storage_id, "blobContainerName": dead_letter}},
        },
    }}


def _same(existing: Any, full_url: str, want: dict[str, Any]) -> bool:
    """Does the subscription Azure has match what we want (its URL read back through getFullUrl)?"""
    w = want["properties"]
    f, retry = existing.filter, existing.retry_policy
    dead = existing.dead_letter_with_resource_identity
    dest = dead.dead_letter_destination if dead is not None else None
    return (
        full_url == w["destination"]["properties"]["endpointUrl"]
        and f is not None
        and sorted(f.included_event_types or []) == w["filter"]["includedEventTypes"]
        and f.subject_begins_with == w["filter"]["subjectBeginsWith"]
        and f.subject_ends_with == w["filter"]["subjectEndsWith"]
        and not f.is_subject_case_sensitive
        and retry is not None
        and retry.max_delivery_attempts == MAX_DELIVERY_ATTEMPTS
        and retry.event_time_to_live_in_minutes == EVENT_TTL_MINUTES
        and getattr(dest, "blob_container_name", None)
        == w["deadLetterWithResourceIdentity"]["deadLetterDestination"]["properties"]["blobContainerName"]
    )


def _wait_for(what: str, attempts: int, delay: float, probe: Any) -> Any:
    """The deployed host registers functions and creates system keys a little after the deploy: ask a few times."""
    last = None
    for attempt in range(attempts):
        found, last = probe()
        if found is not None:
            return found
        if attempt + 1 < attempts:
            time.sleep(delay)
    raise HookError(f"{what}: {last}")


def ensure_subscription(env: Mapping[str, str], credential: Any, *, base_url: str | None = None,
                        attempts: int = 10, delay: float = 15.0, **transport: Any) -> str:
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.web import WebSiteManagementClient

    subscription, group, app, account, topic = need(
        env, "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME", "EVENTGRID_SYSTEM_TOPIC_NAME")
    function = env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION
    options = client_options(base_url, **transport)
    web = WebSiteManagementClient(credential, subscription, **options)
    grid = EventGridManagementClient(credential, subscription, **options)
    try:
        def registered() -> tuple[str | None, str]:
            names = sorted({(f.name or "").rsplit("/", 1)[-1] for f in web.web_apps.list_functions(group, app)})
            if function in names:
                return function, ""
            return None, (f"function {function!r} is not registered in Function App {app} (registered: "
                          f"{', '.join(names) or 'none'}); Event Grid would get 202 for every event and the "
                          "trigger would never run")

        def blobs_key() -> tuple[str | None, str]:
            keys = web.web_apps.list_host_keys(group, app)
            key = (keys.system_keys or {}).get("blobs_extension")
            return (key or None), (f"Function App {app} has no 'blobs_extension' system key; the host creates it "
                                   "when it starts a blob trigger with the Event Grid source: check that the "
                                   "deploy succeeded and the app started, then run `azd deploy` again")

        _wait_for("cannot subscribe the blob trigger", attempts, delay, registered)
        key = _wait_for("cannot subscribe the blob trigger", attempts, delay, blobs_key)
        storage_id = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/"
                      f"storageAccounts/{account}")
        want = desired(env, storage_id, webhook_url(app, function, key))
        subs = grid.system_topic_event_subscriptions
        try:
            existing = subs.get(group, topic, SUBSCRIPTION_NAME)
        except ResourceNotFoundError:
            existing = None
        if existing is not None:
            full = subs.get_full_url(group, topic, SUBSCRIPTION_NAME).endpoint_url
            if _same(existing, full, want):
                return f"Event Grid subscription {SUBSCRIPTION_NAME} is up to date"
        try:
            subs.begin_create_or_update(group, topic, SUBSCRIPTION_NAME, want).result()
        except HttpResponseError as exc:
            raise HookError(f"creating Event Grid subscription {SUBSCRIPTION_NAME} failed: {exc.message}") from None
        verb = "updated" if existing is not None else "created"
        return f"{verb} Event Grid subscription {SUBSCRIPTION_NAME} -> {app} function {function}"
    finally:
        web.close()
        grid.close()


def main(credential: Any = None, env: Mapping[str, str] | None = None) -> int:
    return run_main(ensure_subscription, credential, env)


if __name__ == "__main__":
    sys.exit(main())
