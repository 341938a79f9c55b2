"""The Azure Batch adapter: the BatchGateway port implemented with azure.batch.BatchClient (azure-batch 15.x).

Split by concern: the pool definition (azure_pool), pool size and node health (azure_pool_ops), tasks
(azure_tasks), errors and retries (azure_errors). This module wires them into one class and owns the pool and
job's creation.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.batch.azure_errors import BatchRetryPolicy, error_code, error_text, odata_datetime
from shared.adapters.batch.azure_pool import (
    APP_NAME,
    IMAGE,
    NODE_AGENT_SKU,
    START_TASK_COMMAND,
    pool_definition,
)
from shared.adapters.batch.azure_pool_ops import POOL_STATE_FIELDS, PoolOperations
from shared.adapters.batch.azure_tasks import TaskOperations, finished_tasks_filter
from shared.ports.batch import GatewayError, PoolSpec, PoolState

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "APP_NAME", "IMAGE", "NODE_AGENT_SKU", "POOL_STATE_FIELDS", "START_TASK_COMMAND", "AzureBatchGateway",
    "account_name_from_url", "finished_tasks_filter", "odata_datetime",
]

POOL_DELETE_WAIT_SECONDS = 20.0  # how long ensure_pool waits for a pool being deleted before giving up this run


def account_name_from_url(account_url: str) -> str:
    """https://myacct.westeurope.batch.azure.com -> myacct."""
    host = urlparse(account_url if "//" in account_url else f"https://{account_url}").hostname or ""
    name = host.split(".", 1)[0]
    if not name:
        raise ValueError(f"cannot read the Batch account name from BATCH_ACCOUNT_URL={account_url!r}")
    return name


class AzureBatchGateway(PoolOperations, TaskOperations):
    """BatchGateway on a real Batch account: one persistent job on one fixed-size pool resized by the monitor."""

    def __init__(
        self,
        account_url: str,
        credential: TokenCredential | AzureNamedKeyCredential,
        pool_id: str,
        job_id: str,
        vm_size: str,
        slots_per_node: int,
        pool_identity_id: str = "",
        app_name: str = APP_NAME,
        *,
        retry_total: int = 4,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: int = 30,
        pool_delete_wait_seconds: float = POOL_DELETE_WAIT_SECONDS,
        client: BatchClient | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.account_url = account_url.rstrip("/")
        self.pool_id = pool_id
        self.job_id = job_id
        self.vm_size = vm_size
        self.slots_per_node = slots_per_node
        self.pool_identity_id = pool_identity_id
        self.app_name = app_name
        self.pool_delete_wait_seconds = pool_delete_wait_seconds
        if client is None:
            client_kwargs.setdefault("connection_timeout", 20)
            client_kwargs.setdefault("read_timeout", 60)
            retry = BatchRetryPolicy(
                retry_total=retry_total,
                retry_status=retry_total,
                retry_connect=retry_total,
                retry_read=retry_total,
                retry_backoff_factor=retry_backoff_factor,
                retry_backoff_max=retry_backoff_max,
            )
            client = BatchClient(self.account_url, credential, retry_policy=retry, **client_kwargs)  # type: ignore[arg-type]
        self.client = client
        self._last_state: tuple[float, PoolState | None] = (0.0, None)

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> AzureBatchGateway:
        """Managed identity / developer login by default; the shared key only when BATCH_ACCOUNT_KEY is set."""
        credential: TokenCredential | AzureNamedKeyCredential
        if settings.batch_account_key:
            credential = AzureNamedKeyCredential(
                account_name_from_url(settings.batch_account_url), settings.batch_account_key
            )
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(
            account_url=settings.batch_account_url,
            credential=credential,
            pool_id=settings.pool_id,
            job_id=settings.job_id,
            vm_size=settings.vm_size,
            slots_per_node=settings.slots_per_node,
            pool_identity_id=settings.pool_identity_id,
            **client_kwargs,
        )

    def close(self) -> None:
        self.client.close()

    # -- pool and job ---------------------------------------------------------------------------------

    def pool_create_options(self, spec: PoolSpec) -> bm.BatchPoolCreateOptions:
        """The pool this adapter creates when none exists (IaC-made pools are used as they are)."""
        return pool_definition(spec, vm_size=self.vm_size, app_name=self.app_name)

    def ensure_pool(self, spec: PoolSpec) -> bool:
        if self.pool_identity_id:
            # Batch's data plane cannot give a pool an identity: a pool made here would reach storage without it.
            try:
                self._call("get pool", self.client.get_pool, spec.id, select=["id"])
            except ResourceNotFoundError:
                log.error("Batch pool %s does not exist; BATCH_POOL_IDENTITY_ID is set, so it is not created here "
                          "without that identity: create it with the deployment (azd provision runs "
                          "infra/hooks/postprovision.py)", spec.id)
            return False
        options = self.pool_create_options(spec)
        deadline = time.monotonic() + self.pool_delete_wait_seconds
        while True:
            try:
                self._call("create pool", self.client.create_pool, options)
            except ResourceExistsError as exc:
                if error_code(exc) != "PoolBeingDeleted":
                    log.info("Batch pool %s exists; using it as it is", spec.id)
                    return False
                # A pool of that id is going away: it is not "the pool exists". Wait for it, then create.
                if time.monotonic() >= deadline:
                    raise GatewayError(f"Batch pool {spec.id} is still being deleted; it is created again "
                                       f"once it is gone ({error_text(exc)})") from exc
                log.info("Batch pool %s is being deleted; waiting to create it again", spec.id)
                time.sleep(min(2.0, max(self.pool_delete_wait_seconds / 10, 0.01)))
                continue
            except ResourceNotFoundError as exc:
                raise self._unexpected("create pool", exc) from exc
            log.info("Created Batch pool %s (%s, %d slots per node)", spec.id, self.vm_size, spec.slots_per_node)
            self._pool_slots = spec.slots_per_node
            return True

    def ensure_job(self, pool_id: str) -> bool:
        job = bm.BatchJobCreateOptions(
            id=self.job_id,
            display_name=f"{self.app_name} conversions",
            pool_info=bm.BatchPoolInfo(pool_id=pool_id),
            all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.NO_ACTION,
            metadata=[bm.BatchMetadataItem(name="app", value=self.app_name)],
        )
        try:
            self._call("create job", self.client.create_job, job)
        except ResourceExistsError:
            return False
        except ResourceNotFoundError as exc:
            raise self._unexpected("create job", exc) from exc
        log.info("Created Batch job %s on pool %s", self.job_id, pool_id)
        return True
