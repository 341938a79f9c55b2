"""`mp3pipe --azure doctor`: read a deployed environment through ARM and say, check by check, what is wrong and the fix.

Everything here reads (GET, and two read-like POSTs: the subscription's full URL and the host keys); nothing is
changed. A check the signed-in user may not read (403: no Reader) is reported as such, never as healthy.
The azure-mgmt-* clients are imported inside `run`: the rest of the CLI does not need them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from mp3pipe.doctor.app_checks import (
    FUNCTIONS,
    SUBMIT_FUNCTION,
    SUBSCRIPTION_NAME,
    WEBHOOK_PATH,
    check_app,
    check_functions,
    check_subscription,
)
from mp3pipe.doctor.batch_checks import check_pool, check_quota
from mp3pipe.doctor.model import ARM, ARM_ENDPOINT_SETTING, OK, PROBLEM, UNREAD, Deployment, DoctorError, Finding
from mp3pipe.doctor.monitor_checks import check_monitor
from mp3pipe.doctor.role_checks import BATCH_APP_ROLE, COVERS, GRANTS, ROLES, WHO, Grant, check_roles
from shared.ports.storage import Storage
from shared.settings import Settings

__all__ = ["ARM", "ARM_ENDPOINT_SETTING", "BATCH_APP_ROLE", "COVERS", "FUNCTIONS", "GRANTS", "NEEDED", "OK",
           "PROBLEM", "ROLES", "SUBMIT_FUNCTION", "SUBSCRIPTION_NAME", "UNREAD", "WEBHOOK_PATH", "WHO", "Deployment",
           "DoctorError", "Finding", "Grant", "exit_code", "main", "render", "run"]

# -- running it ------------------------------------------------------------------------------------------------
NEEDED = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_STORAGE_ACCOUNT_NAME",
          "AZURE_BATCH_ACCOUNT_NAME", "EVENTGRID_SYSTEM_TOPIC_NAME")


def run(env: Mapping[str, str], credential: Any, *, base_url: str | None = None, storage: Storage | None = None,
        now: float | None = None, **transport: Any) -> list[Finding]:
    """Every check, in the order a file travels (app, monitor, trigger, pool, quota, roles). `storage` reads the
    monitor's state blob (default: the account's blob endpoint with `credential`); `now` is the time it is read at."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.batch import BatchManagementClient
    from azure.mgmt.eventgrid import EventGridManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.web import WebSiteManagementClient

    from shared.settings import SettingsError

    missing = [n for n in NEEDED if not env.get(n)]
    if missing:
        raise DoctorError(f"missing from the azd environment: {', '.join(missing)} (run `mp3pipe --azure doctor` in "
                          "the project after `azd up`, or pass --azure-env NAME)")
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        raise DoctorError(str(exc)) from None
    d = Deployment(env, settings, *(env[n] for n in NEEDED))
    options = {"base_url": base_url or env.get(ARM_ENDPOINT_SETTING) or ARM, "retry_total": 2, **transport}
    clients = [WebSiteManagementClient(credential, d.subscription, **options),
               EventGridManagementClient(credential, d.subscription, **options),
               BatchManagementClient(credential, d.subscription, **options),
               ManagedServiceIdentityClient(credential, d.subscription, **options),
               AuthorizationManagementClient(credential, d.subscription, **options)]
    web, grid, batch, msi, auth = clients
    try:
        check_app(d, web)
        check_functions(d, web)
        check_monitor(d, storage if storage is not None else _state_storage(env, credential),
                      time.time() if now is None else now)
        check_subscription(d, web, grid)
        check_pool(d, batch)
        check_quota(d, batch)
        check_roles(d, grid, msi, auth)
    finally:
        for client in clients:
            client.close()
    return d.findings


def _state_storage(env: Mapping[str, str], credential: Any) -> Storage:
    """The deployment's storage account, read with the operator's sign-in (azd's output names its blob endpoint)."""
    from azure.storage.blob import BlobServiceClient

    from shared.adapters.storage import BlobStorage

    url = (env.get("AzureWebJobsStorage__blobServiceUri")
           or f"https://{env['AZURE_STORAGE_ACCOUNT_NAME']}.blob.core.windows.net")
    return BlobStorage(BlobServiceClient(url, credential=credential))


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when something is wrong, 2 when nothing is wrong but some check could not be read, else 0."""
    statuses = {f.status for f in findings}
    return 1 if PROBLEM in statuses else 2 if UNREAD in statuses else 0


def render(findings: list[Finding]) -> list[str]:
    """One line per finding (status, check, what), the fix indented under it, and a count."""
    width = max(len(s) for s in (OK, PROBLEM, UNREAD))
    lines = []
    for f in findings:
        lines.append(f"{f.status:<{width}}  {f.check}: {f.detail}")
        if f.fix and f.status != OK:
            lines.append(f"{'':<{width}}  fix: {f.fix}")
    counts = {s: sum(f.status == s for f in findings) for s in (OK, PROBLEM, UNREAD)}
    lines.append(f"{counts[OK]} ok, {counts[PROBLEM]} problem(s), {counts[UNREAD]} not checked")
    return lines


def main(env: Mapping[str, str] | None = None, credential: Any = None) -> int:
    """Run the checks with the operator's sign-in (DefaultAzureCredential), print them, return the exit code."""
    import os
    import sys

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        findings = run(os.environ if env is None else env, credential)
    except DoctorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(render(findings)))
    return exit_code(findings)
