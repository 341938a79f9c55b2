"""azd postdeploy hook: create or update the Event Grid subscription that feeds the blob trigger, idempotently.

Its webhook needs the app's `blobs_extension` system key, which exists only once the code is deployed, and the
name of the registered function: a wrong name is answered 202 and every event is silently lost
(Azure/azure-functions-host #8802), so the hook checks the name against the deployed app's functions first.
Right after a deploy the host answers 400/403/404 for a while: those answers are retried with backoff for
POSTDEPLOY_WAIT_SECONDS. The webhook's host is the site's own default host name (it may carry a unique suffix), and
an existing subscription is rewritten when any wanted field differs from what ARM returns.
"""

from __future__ import annotations

import copy
import io
import json
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from infra.hooks.common import HookError, client_options, need, run_main, until_ready
from shared.domain.naming import INPUT_SUFFIXES

SUBSCRIPTION_NAME = "mp3pipe-submit"
SUBMIT_FUNCTION = "submit"  # functions/submit.py; tests/test_infra_hooks.py checks it is registered in function_app.py
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440
# The `data.api` of a BlobCreated event that means "the blob is complete" (Microsoft's Blob Storage event schema):
# Blob REST uploads and copies, a Data Lake file closed by its last flush, an SFTP upload committed. Left out:
# CreateFile (a Data Lake file just opened, still empty) and SftpCreate (an SFTP upload begun).
COMPLETE_BLOB_APIS = ("PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit")
WAIT_SECONDS = 900.0  # how long to wait for a fresh host (POSTDEPLOY_WAIT_SECONDS): role assignments can take ~10 min
NOT_READY_ADVICE = ("The Function App's host is not ready: right after a deploy it can take minutes to start and to "
                    "reach its storage (role assignments propagate slowly). Check the app in the Azure portal "
                    "(Function App > Overview and Log stream), then run `azd hooks run postdeploy` again; set "
                    "POSTDEPLOY_WAIT_SECONDS to wait longer. A 403 that lasts can also mean your own sign-in may "
                    "not list the app's keys: it needs Contributor (or Owner) on the resource group.")


def webhook_url(host: str, function: str, key: str) -> str:
    return (f"https://{host}/runtime/webhooks/blobs?functionName=Host.Functions.{function}"
            f"&code={quote(key, safe='')}")


def desired(env: Mapping[str, str], storage_id: str, url: str) -> dict[str, Any]:
    """The subscription, as its REST body: BlobCreated under the input container, names ending in one of the input
    suffixes, only from the operations that finish a blob (never a half-written Data Lake or SFTP upload), dead letters.

    subjectEndsWith takes one value, so the suffixes are an advanced StringEndsWith filter on the subject; Event Grid
    compares advanced filters' strings ignoring case (learn.microsoft.com/azure/event-grid/event-filtering), so .MOV
    passes as .mov does."""
    input_container, dead_letter = need(env, "INPUT_CONTAINER", "EVENTGRID_DEADLETTER_CONTAINER")
    return {"properties": {
        "eventDeliverySchema": "EventGridSchema",
        "destination": {"endpointType": "WebHook", "properties": {"endpointUrl": url, "maxEventsPerBatch": 1}},
        "filter": {
            "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
            "subjectBeginsWith": f"/blobServices/default/containers/{input_container}/",
            "subjectEndsWith": "",  # cleared: an older hook filtered on ".mp4" here, which would stop every .mov
            "isSubjectCaseSensitive": False,
            "advancedFilters": [{"operatorType": "StringIn", "key": "data.api", "values": list(COMPLETE_BLOB_APIS)},
                                {"operatorType": "StringEndsWith", "key": "subject", "values": list(INPUT_SUFFIXES)}],
        },
        "retryPolicy": {"maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS, "eventTimeToLiveInMinutes": EVENT_TTL_MINUTES},
        "deadLetterWithResourceIdentity": {
            "identity": {"type": "SystemAssigned"},
            "deadLetterDestination": {"endpointType": "StorageBlob",
                                      "properties": {"resourceId": storage_id, "blobContainerName": dead_letter}},
        },
    }}


def checked_body(want: dict[str, Any]) -> bytes:
    """The body as JSON bytes, sent as is: azure-mgmt-eventgrid (msrest) silently drops a key its model does not
    know from a dict or model, so a misspelling would vanish; it must round-trip through the model unchanged."""
    from azure.mgmt.eventgrid.models import EventSubscription

    lost = drift(want, EventSubscription.from_dict(want).serialize(), exact=True)
    if lost:
        raise HookError(f"the Event Grid subscription body has properties the EventSubscription model does not "
                        f"know: {', '.join(lost)} (a bug in infra/hooks/postdeploy.py)")
    return json.dumps(want).encode()


def _norm(value: Any, exact: bool) -> Any:
    if isinstance(value, str) and not exact:
        return value.casefold()  # ARM echoes enums and resource IDs in its own case
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(_norm(v, exact) for v in value)
    return value


def drift(want: Any, have: Any, path: str = "", *, exact: bool = False) -> list[str]:
    """The paths of `want` whose value `have` (what ARM returns) does not hold. ARM adds read-only and default
    fields: only wanted fields count; strings compare ignoring case, lists of strings as sets; an empty list or
    string and an absent one are the same."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "<body>"]
        return [p for k, v in want.items() for p in drift(v, have.get(k), f"{path}.{k}" if path else k, exact=exact)]
    if isinstance(want, list | str) and not want and not have:
        return []
    if isinstance(want, list) and want and isinstance(want[0], dict):
        if not isinstance(have, list) or len(have) != len(want):
            return [path]
        return [p for i, (w, h) in enumerate(zip(want, have, strict=True)) for p in drift(w, h, f"{path}[{i}]",
                                                                                           exact=exact)]
    return [] if _norm(want, exact) == _norm(have, exact) else [path]


def _raw(response: Any, _deserialized: Any, _headers: Any) -> Any:
    """`cls=` for an SDK call: the JSON ARM answered, not the SDK's model of it (which drops what it cannot map)."""
    return response.http_response.json()


def ensure_subscription(env: Mapping[str, str], credential: Any, *, base_url: str | None = None,
                        wait_seconds: float | None = None, delay: float = 5.0, **transport: Any) -> str:
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.web import WebSiteManagementClient

    subscription, group, app, account, topic = need(
        env, "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME", "EVENTGRID_SYSTEM_TOPIC_NAME")
    function = env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION
    if wait_seconds is None:
        wait_seconds = float(env.get("POSTDEPLOY_WAIT_SECONDS") or WAIT_SECONDS)
    options = client_options(base_url, **transport)
    web = WebSiteManagementClient(credential, subscription, **options)
    grid = EventGridManagementClient(credential, subscription, **options)

    def ready(what: str, probe: Any) -> Any:
        return until_ready(what, probe, wait_seconds=wait_seconds, delay=delay, advice=NOT_READY_ADVICE)

    try:
        def host_name() -> tuple[str | None, str]:
            site = web.web_apps.get(group, app)
            return site.default_host_name or None, f"Function App {app} has no default host name yet"

        def registered() -> tuple[str | None, str]:
            names = sorted({(f.name or "").rsplit("/", 1)[-1] for f in web.web_apps.list_functions(group, app)})
            if function in names:
                return function, ""
            why = (f"function {function!r} is not registered in Function App {app} (registered: "
                   f"{', '.join(names) or 'none'}); Event Grid would get 202 for every event and the trigger would "
                   "never run")
            if names:  # the host indexes all of the app's functions at once: others without ours is final
                raise HookError(f"cannot subscribe the blob trigger: {why}")
            return None, why

        def blobs_key() -> tuple[str | None, str]:
            keys = web.web_apps.list_host_keys(group, app)
            key = (keys.system_keys or {}).get("blobs_extension")
            return (key or None), (f"Function App {app} has no 'blobs_extension' system key; the host creates it "
                                   "when it starts a blob trigger with the Event Grid source: check that the "
                                   "deploy succeeded and the app started, then run `azd deploy` again")

        host = ready(f"the host name of Function App {app}", host_name)
        ready(f"the functions of Function App {app} (list_functions)", registered)
        key = ready(f"the host keys of Function App {app} (listKeys)", blobs_key)
        storage_id = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/"
                      f"storageAccounts/{account}")
        want = desired(env, storage_id, webhook_url(host, function, key))
        body = checked_body(want)
        subs = grid.system_topic_event_subscriptions
        try:
            existing = subs.get(group, topic, SUBSCRIPTION_NAME, cls=_raw)
        except ResourceNotFoundError:
            existing = None
        changed: list[str] = []
        if existing is not None:
            full = subs.get_full_url(group, topic, SUBSCRIPTION_NAME).endpoint_url
            have = copy.deepcopy(existing)
            dest = ((have.get("properties") or {}).get("destination") or {}).get("properties")
            if isinstance(dest, dict):
                dest["endpointUrl"] = full  # ARM never returns the URL with its key: read back through getFullUrl
            changed = drift(want, have)
            if not changed:
                return f"Event Grid subscription {SUBSCRIPTION_NAME} is up to date"
        try:
            subs.begin_create_or_update(group, topic, SUBSCRIPTION_NAME, io.BytesIO(body),
                                        content_type="application/json").result()
        except HttpResponseError as exc:
            raise HookError(f"creating Event Grid subscription {SUBSCRIPTION_NAME} failed: {exc.message}") from None
        verb = f"updated ({', '.join(changed)} differed)" if existing is not None else "created"
        return f"{verb} Event Grid subscription {SUBSCRIPTION_NAME} -> {host} function {function}"
    finally:
        web.close()
        grid.close()


def main(credential: Any = None, env: Mapping[str, str] | None = None) -> int:
    return run_main(ensure_subscription, credential, env)


if __name__ == "__main__":
    sys.exit(main())
