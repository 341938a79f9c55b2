"""Azure Batch errors and retries: azure-core's retry policy (POST included) and Batch's error codes as text."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from azure.batch import BatchClient
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest

from shared.ports.batch import GatewayError, Throttled

log = logging.getLogger("shared.adapters.batch.azure")
T = TypeVar("T")
THROTTLED_STATUS = (429, 503)  # Batch's answers when it sheds load (ServerBusy, TooManyRequests)
API_VERSION = "2025-06-01"  # the REST API version azure-batch 15.1 speaks

# Every POST the adapter sends is safe to repeat: ids are fixed and "exists" (409) counts as done,
# a repeated resize asks for the same target. So POST is retried like the idempotent verbs.
_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class BatchRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy (429/408/5xx with backoff and Retry-After), also applied to POST."""

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("retry_on_methods", _RETRY_METHODS)
        return super().configure_retries(options)


def error_code(exc: HttpResponseError) -> str:
    err = getattr(exc, "error", None)
    return (getattr(err, "code", None) or "") if err is not None else ""


def error_text(exc: BaseException) -> str:
    """'HTTP 403 AuthorizationFailure: <Batch's message> (request-id ...)' or the exception's own text."""
    if not isinstance(exc, HttpResponseError):
        return f"{type(exc).__name__}: {exc}"
    err = getattr(exc, "error", None)
    message = (getattr(err, "message", None) if err is not None else None) or exc.message or str(exc)
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    status = exc.status_code if exc.status_code is not None else "?"
    text = f"HTTP {status} {error_code(exc) or type(exc).__name__}: {first_line}"
    request_id = exc.response.headers.get("request-id") if exc.response is not None else None
    return f"{text} (request-id {request_id})" if request_id else text


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def odata_datetime(value: dt.datetime) -> str:
    """An OData DateTime literal as Batch's $filter takes it: datetime'2025-01-02T03:04:05.000000Z'."""
    utc_value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return "datetime'" + utc_value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


class AdapterBase:
    """What the Azure adapter's parts share: the client, the ids, and one way to call Batch."""

    client: BatchClient
    pool_id: str
    job_id: str
    slots_per_node: int

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call; anything but the cases the caller handles becomes a logged GatewayError."""
        try:
            return fn(*args, **kwargs)
        except (ResourceExistsError, ResourceNotFoundError):
            raise  # the caller decides what "exists" / "not found" means here
        except AzureError as exc:  # HTTP errors, connection errors, timeouts, credentials (after azure-core retries)
            raise self._unexpected(what, exc) from exc

    def _unexpected(self, what: str, exc: AzureError) -> GatewayError:
        text = error_text(exc)
        log.error("Batch %s failed: %s", what, text)
        status = getattr(exc, "status_code", None)
        if status in THROTTLED_STATUS or (isinstance(exc, HttpResponseError) and error_code(exc) == "ServerBusy"):
            return Throttled(f"Batch {what} failed: {text}")
        return GatewayError(f"Batch {what} failed: {text}")

    def _post_alone(self, internal: str, path: str, body: Any | None, *args: Any) -> None:
        """One POST for a long-running pool operation (resize, stop resize, remove nodes), never polled.

        azure-batch 15 exposes these publicly only as begin_* pollers, whose LROPoller starts a thread polling
        get_pool until the pool is steady (extra requests, a thread outliving the function call). The monitor
        never waits for them: the SDK's internal one-request method is used, else the same request is sent
        through the client's pipeline (auth and retries included) with send_request, which starts no thread.
        """
        method = getattr(self.client, internal, None)
        if method is not None:
            method(*args)
            return
        request = HttpRequest("POST", f"{{endpoint}}{path}", params={"api-version": API_VERSION},
                              json=body, headers={"Content-Type": "application/json; odata=minimalmetadata"})
        response = self.client.send_request(request)
        if response.status_code >= 400:
            map_error(response.status_code, response, {404: ResourceNotFoundError, 409: ResourceExistsError})
            raise HttpResponseError(response=response)
