"""The doctor's checks of the Function App: running, its functions indexed, the Event Grid subscription and webhook."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mp3pipe.doctor.model import NOT_READ, OK, PROBLEM, UNREAD, Deployment, read, reason, status_of

# function_app.py's functions (tests/test_doctor.py holds the two together) and the postdeploy hook's names.
FUNCTIONS = ("monitor", "reconcile", "submit")
SUBMIT_FUNCTION = "submit"
SUBSCRIPTION_NAME = "mp3pipe-submit"
WEBHOOK_PATH = "/runtime/webhooks/blobs"


def check_app(d: Deployment, web: Any) -> None:
    def missing(exc: Any) -> bool:
        if status_of(exc) != 404:
            return False
        d.add("Function App", PROBLEM, f"Function App {d.app} is not in resource group {d.group}",
              "`azd provision` (then `azd deploy`)")
        return True

    site = read(d, "Function App", f"Function App {d.app}", lambda: web.web_apps.get(d.group, d.app), missing)
    if site is NOT_READ:
        return
    d.site = site
    if (site.state or "").lower() != "running":
        d.add("Function App", PROBLEM, f"{d.app} is {site.state}: no trigger or timer runs",
              f"`az functionapp start -g {d.group} -n {d.app}`")
    else:
        d.add("Function App", OK, f"{d.app} is running at {site.default_host_name}")


def check_functions(d: Deployment, web: Any) -> None:
    submit = d.env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION

    def host_down(exc: Any) -> bool:
        if status_of(exc) not in (400, 404, 500, 502, 503):
            return False
        d.add("functions indexed", PROBLEM,
              f"the Functions host of {d.app} did not answer ({reason(exc)}): it is starting after a deploy, or "
              "it failed to start",
              "wait a minute and run `mp3pipe --azure doctor` again; if it stays, open the portal: Function App "
              f"{d.app} > Diagnose and solve problems, and Monitoring > Log stream")
        return True

    listed = read(d, "functions indexed", f"the functions of {d.app}",
                  lambda: list(web.web_apps.list_functions(d.group, d.app)), host_down)
    if listed is NOT_READ:
        return
    names = sorted({(f.name or "").rsplit("/", 1)[-1] for f in listed})
    d.functions = names
    wanted = sorted({*FUNCTIONS, submit})
    missing = [f for f in wanted if f not in names]
    if missing:
        d.add("functions indexed", PROBLEM,
              f"{d.app} has not indexed {', '.join(missing)} (indexed: {', '.join(names) or 'none'}); an import "
              "error in function_app.py or a package missing from requirements.txt leaves functions unindexed",
              "`azd deploy`, then the portal: Function App > Monitoring > Log stream for the indexing error")
    else:
        d.add("functions indexed", OK, ", ".join(names))


def check_subscription(d: Deployment, web: Any, grid: Any) -> None:

    fix = "`azd hooks run postdeploy` (it writes the subscription from the deployed app's host name, function and key)"
    subs = grid.system_topic_event_subscriptions

    def missing(exc: Any) -> bool:
        if status_of(exc) != 404:
            return False
        d.add("Event Grid subscription", PROBLEM,
              f"no subscription {SUBSCRIPTION_NAME} on topic {d.topic}: dropped files are never submitted "
              "(the reconcile timer still finds them, minutes later)", fix)
        return True

    sub = read(d, "Event Grid subscription", f"Event Grid subscription {SUBSCRIPTION_NAME}",
               lambda: subs.get(d.group, d.topic, SUBSCRIPTION_NAME), missing)
    if sub is NOT_READ:
        return
    prefix = f"/blobServices/default/containers/{d.settings.input_container}/"
    f = sub.filter
    wrong = []
    if (sub.provisioning_state or "") != "Succeeded":
        wrong.append(f"provisioning state {sub.provisioning_state}")
    if f is None or "Microsoft.Storage.BlobCreated" not in (f.included_event_types or []):
        wrong.append("it does not take BlobCreated events")
    if f is None or (f.subject_begins_with or "") != prefix:
        wrong.append(f"it filters on {getattr(f, 'subject_begins_with', None)!r}, not {prefix!r}")
    if wrong:
        d.add("Event Grid subscription", PROBLEM, f"{SUBSCRIPTION_NAME}: {'; '.join(wrong)}", fix)
    else:
        d.add("Event Grid subscription", OK, f"{SUBSCRIPTION_NAME}: BlobCreated under {prefix}")

    forbidden: list[Any] = []

    def no_action(exc: Any) -> bool:
        if status_of(exc) == 403:
            forbidden.append(exc)
            return True
        return False

    full = read(d, "webhook function", f"the full URL of {SUBSCRIPTION_NAME}",
                lambda: subs.get_full_url(d.group, d.topic, SUBSCRIPTION_NAME).endpoint_url, no_action)
    full = None if full is NOT_READ else full
    base = getattr(sub.destination, "endpoint_base_url", None)
    url = urlsplit(full or base or "")
    host = d.site.default_host_name if d.site is not None else None
    where = f"{url.scheme}://{url.hostname}{url.path}"
    if host is None:
        d.add("webhook host", UNREAD, f"events go to {where}; the app's host name was not read (above)")
    elif (url.hostname or "").lower() != host.lower() or url.path != WEBHOOK_PATH or url.scheme != "https":
        d.add("webhook host", PROBLEM,
              f"events go to {where}, but the app answers at https://{host}{WEBHOOK_PATH}: every event is lost "
              "or dead-lettered", fix)
    else:
        d.add("webhook host", OK, where)
    if full is None:
        if forbidden:
            d.add("webhook function", UNREAD,
                  f"cannot read the subscription's full URL ({reason(forbidden[0])}; getFullUrl needs more than "
                  "Reader): the function name and key were not checked",
                  f"sign in as someone with Contributor on {d.rg_id}, or look in the portal: Event Grid system "
                  f"topic {d.topic} > Event Subscriptions > {SUBSCRIPTION_NAME} > Endpoint")
        return
    query = parse_qs(url.query)
    function = (query.get("functionName") or [""])[0]
    submit = d.env.get("SUBMIT_FUNCTION_NAME") or SUBMIT_FUNCTION
    if function != f"Host.Functions.{submit}":
        d.add("webhook function", PROBLEM,
              f"the webhook names functionName={function or '(none)'}, not Host.Functions.{submit}: the host "
              "answers 202 to every event and never runs the trigger (Azure/azure-functions-host #8802)", fix)
    elif d.functions is not None and submit not in d.functions:
        d.add("webhook function", PROBLEM, f"the webhook names {submit}, which {d.app} has not indexed (above)",
              "fix the indexing first (above)")
    else:
        d.add("webhook function", OK, function)
    _check_key(d, web, unquote((query.get("code") or [""])[0]), fix)


def _check_key(d: Deployment, web: Any, code: str, fix: str) -> None:
    keys = read(d, "webhook key", f"the host keys of {d.app} (listKeys needs Contributor)",
                lambda: web.web_apps.list_host_keys(d.group, d.app))
    if keys is NOT_READ:
        return
    key = (keys.system_keys or {}).get("blobs_extension")
    if not key:
        d.add("webhook key", PROBLEM,
              f"{d.app} has no blobs_extension system key: the host has not started the Event Grid blob trigger",
              "`azd deploy`, then the portal: Function App > Monitoring > Log stream")
    elif key != code:
        d.add("webhook key", PROBLEM, "the webhook's code is not the app's blobs_extension key (rotated?): every "
              "event is answered 401 and dead-lettered", fix)
    else:
        d.add("webhook key", OK, "the webhook carries the app's blobs_extension key")
