"""The doctor's model: a finding, the deployment the checks read and fill in, and reading through ARM."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.settings import Settings

OK, PROBLEM, UNREAD = "ok", "PROBLEM", "cannot check"
ARM = "https://management.azure.com"
ARM_ENDPOINT_SETTING = "MP3PIPE_ARM_ENDPOINT"  # another cloud's Resource Manager (default: Azure's public cloud)


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


class DoctorError(RuntimeError):
    """Nothing can be checked (no azd environment values, no sign-in); the message says what to do."""


@dataclass
class Deployment:
    """The names azd's environment gives, and what the checks learn on the way (site, pool) for later checks."""

    env: Mapping[str, str]
    settings: Settings
    subscription: str
    group: str
    app: str
    storage: str
    batch: str
    topic: str
    site: Any = None
    functions: list[str] | None = None
    pool: Any = None
    pool_missing: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def rg_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"

    def resource_id(self, kind: str) -> str:
        storage = f"{self.rg_id}/providers/Microsoft.Storage/storageAccounts/{self.storage}"
        s = self.settings
        return {
            "storage": storage,
            "batch": f"{self.rg_id}/providers/Microsoft.Batch/batchAccounts/{self.batch}",
            "pool": f"{self.rg_id}/providers/Microsoft.Batch/batchAccounts/{self.batch}/pools/{s.pool_id}",
            "input": f"{storage}/blobServices/default/containers/{s.input_container}",
            "output": f"{storage}/blobServices/default/containers/{s.output_container}",
            "deadLetter": f"{storage}/blobServices/default/containers/"
                          f"{self.env.get('EVENTGRID_DEADLETTER_CONTAINER', 'eventgrid-deadletter')}",
            "notifyQueue": f"{storage}/queueServices/default/queues/{self.env.get('MP3PIPE_NOTIFY_QUEUE', '')}",
            "insights": f"{self.rg_id}/providers/Microsoft.Insights/components/<the app's Application Insights>",
        }[kind]

    def add(self, check: str, status: str, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, status, detail, fix))


T = TypeVar("T")
NOT_READ = object()


def read(d: Deployment, check: str, what: str, call: Callable[[], T],
         on_error: Callable[[Any], bool] | None = None) -> T | Any:
    """`call()`, or NOT_READ after recording why it could not be read (`on_error` may record its own finding)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    try:
        return call()
    except ServiceRequestError as exc:
        raise DoctorError(f"cannot reach Azure Resource Manager ({exc.message or exc}): check the network, or "
                          f"{ARM_ENDPOINT_SETTING} for another cloud") from None
    except ClientAuthenticationError as exc:
        if getattr(exc, "status_code", None) is None:
            raise DoctorError(f"no Azure sign-in ({exc.message.splitlines()[0] if exc.message else exc}): "
                              "run `az login` or `azd auth login`, then `mp3pipe --azure doctor` again") from None
        if on_error is None or not on_error(exc):
            d.add(check, UNREAD, f"cannot read {what}: {reason(exc)}", "sign in again (`az login`)")
    except HttpResponseError as exc:
        if on_error is not None and on_error(exc):
            return NOT_READ
        if exc.status_code == 403:
            d.add(check, UNREAD, f"cannot read {what}: your sign-in may not read it ({reason(exc)})",
                  f"ask an Owner for Reader on the resource group: `az role assignment create --assignee "
                  f"<your sign-in> --role Reader --scope {d.rg_id}`")
        else:
            d.add(check, UNREAD, f"cannot read {what}: {reason(exc)}", "run `mp3pipe --azure doctor` again")
    return NOT_READ


def reason(exc: Any) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = (getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)).splitlines()[0]
    return f"{exc.status_code} {code}: {message}" if code else f"{exc.status_code}: {message}"


def status_of(exc: Any) -> int | None:
    return getattr(exc, "status_code", None)
