"""The Azure Batch adapter: the BatchGateway port implemented with azure.batch.BatchClient (azure-batch 15.x)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.pipeline.policies import RetryPolicy

from shared.batch.gateway import (
    FinishedTask,
    GatewayError,
    JobNotFound,
    PoolBusy,
    PoolSpec,
    PoolState,
    TaskCounts,
    TaskSpec,
)

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

APP_NAME = "mp3pipe"

# Ubuntu 18.04/20.04 images are retired for Batch; 24.04 LTS with its node agent.
IMAGE = {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
NODE_AGENT_SKU = "batch.node.ubuntu 24.04"

# Runs once per node as root; apt waits for the unattended-upgrades lock instead of failing at boot.
START_TASK_COMMAND = (
    '/bin/bash -c "set -euo pipefail; export DEBIAN_FRONTEND=noninteractive; '
    "apt-get -o DPkg::Lock::Timeout=300 update -y && "
    "apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends ffmpeg && "
    'ffmpeg -hide_banner -version"'
)


def package_start_command(package: str) -> tuple[str, str, str | None]:
    """Start task for the fast start mode: install a static ffmpeg from a Batch application package.

    `package` is "appid" or "appid@version". Returns (command line, application id, version). Copying a binary
    takes seconds where `apt-get update && apt-get install ffmpeg` takes about 90 s on every new node.
    """
    app_id, _, version = package.partition("@")

    def flat(text: str) -> str:
        return re.sub(r"[.\-#]", "_", text)

    variable = f"AZ_BATCH_APP_PACKAGE_{flat(app_id)}" + (f"_{flat(version)}" if version else "")
    command = (
        f"/bin/sh -c 'set -e; f=$(find \"${variable}\" -type f -name ffmpeg | head -n 1); "
        "install -m 0755 \"$f\" /usr/local/bin/ffmpeg; ffmpeg -hide_banner -version'"
    )
    return command, app_id, version or None


POOL_STATE_FIELDS = [
    "id",
    "allocationState",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "taskSlotsPerNode",
    "enableAutoScale",
]
FAILED_TASK_FIELDS = ["id", "displayName", "stateTransitionTime", "executionInfo", "environmentSettings"]
FAILED_FILTER = "state eq 'completed' and executionInfo/result eq 'failure'"
STATE_REUSE_SECONDS = 30.0  # resize() trusts a pool_state() answer this fresh
LIST_PAGE_SIZE = 1000  # Batch's maximum page size for list operations

# Every POST this adapter sends is safe to repeat: ids are fixed and "exists" (409) counts as done,
# a repeated resize asks for the same target. So POST is retried like the idempotent verbs.
_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class _BatchRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy (429/408/5xx with backoff and Retry-After), also applied to POST."""

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("retry_on_methods", _RETRY_METHODS)
        return super().configure_retries(options)


def _error_code(exc: HttpResponseError) -> str:
    err = getattr(exc, "error", None)
    return (getattr(err, "code", None) or "") if err is not None else ""


def _error_text(exc: BaseException) -> str:
    """'HTTP 403 AuthorizationFailure: <Batch's message> (request-id ...)' or the exception's own text."""
    if not isinstance(exc, HttpResponseError):
        return f"{type(exc).__name__}: {exc}"
    err = getattr(exc, "error", None)
    message = (getattr(err, "message", None) if err is not None else None) or exc.message or str(exc)
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    status = exc.status_code if exc.status_code is not None else "?"
    text = f"HTTP {status} {_error_code(exc) or type(exc).__name__}: {first_line}"
    request_id = exc.response.headers.get("request-id") if exc.response is not None else None
    return f"{text} (request-id {request_id})" if request_id else text


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def odata_datetime(value: dt.datetime) -> str:
    """An OData DateTime literal as Batch's $filter takes it: datetime'2025-01-02T03:04:05.000000Z'."""
    utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return "datetime'" + utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def failed_tasks_filter(since: dt.datetime | None) -> str:
    """The $filter for completed tasks whose final attempt failed, changed at or after `since`."""
    if since is None:
        return FAILED_FILTER
    return f"{FAILED_FILTER} and stateTransitionTime ge {odata_datetime(since)}"


def account_name_from_url(account_url: str) -> str:
    """https://myacct.westeurope.batch.azure.com -> myacct."""
    host = urlparse(account_url if "//" in account_url else f"https://{account_url}").hostname or ""
    name = host.split(".", 1)[0]
    if not name:
        raise ValueError(f"cannot read the Batch account name from BATCH_ACCOUNT_URL={account_url!r}")
    return name


class AzureBatchGateway:
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
        ffmpeg_package: str = "",
        retry_total: int = 4,
        retry_backoff_factor: float = 0.8,
        retry_backoff_max: int = 30,
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
        self.ffmpeg_package = ffmpeg_package
        if client is None:
            client_kwargs.setdefault("connection_timeout", 20)
            client_kwargs.setdefault("read_timeout", 60)
            retry = _BatchRetryPolicy(
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
            ffmpeg_package=settings.ffmpeg_package,
            **client_kwargs,
        )

    def close(self) -> None:
        self.client.close()

    # -- error handling -------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call; anything but the cases the caller handles becomes a logged GatewayError."""
        try:
            return fn(*args, **kwargs)
        except (ResourceExistsError, ResourceNotFoundError):
            raise  # the caller decides what "exists" / "not found" means here
        except AzureError as exc:  # HTTP errors, connection errors, timeouts, credentials (after azure-core retries)
            raise self._unexpected(what, exc) from exc

    def _unexpected(self, what: str, exc: AzureError) -> GatewayError:
        text = _error_text(exc)
        log.error("Batch %s failed: %s", what, text)
        return GatewayError(f"Batch {what} failed: {text}")

    def _identity(self) -> bm.BatchNodeIdentityReference | None:
        if not self.pool_identity_id:
            return None
        return bm.BatchNodeIdentityReference(resource_id=self.pool_identity_id)

    # -- pool and job ---------------------------------------------------------------------------------

    def pool_create_options(self, spec: PoolSpec) -> bm.BatchPoolCreateOptions:
        """The pool this adapter creates when none exists (IaC-made pools are used as they are)."""
        metadata = dict(spec.metadata)
        metadata.setdefault("app", self.app_name)
        command, packages = START_TASK_COMMAND, None
        if self.ffmpeg_package:
            command, app_id, version = package_start_command(self.ffmpeg_package)
            packages = [bm.BatchApplicationPackageReference(application_id=app_id, version=version)]
        return bm.BatchPoolCreateOptions(
            id=spec.id,
            vm_size=self.vm_size,
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=bm.BatchVmImageReference(**IMAGE),
                node_agent_sku_id=NODE_AGENT_SKU,
            ),
            target_dedicated_nodes=spec.initial_dedicated_nodes,
            target_low_priority_nodes=0,
            enable_auto_scale=False,
            task_slots_per_node=spec.slots_per_node,
            # Pack tasks onto the fewest nodes so shrinking (taskcompletion) finds idle nodes sooner.
            task_scheduling_policy=bm.BatchTaskSchedulingPolicy(node_fill_type=bm.BatchNodeFillType.PACK),
            application_package_references=packages,
            start_task=bm.BatchStartTask(
                command_line=command,
                user_identity=bm.UserIdentity(
                    auto_user=bm.AutoUserSpecification(
                        scope=bm.AutoUserScope.POOL, elevation_level=bm.ElevationLevel.ADMIN
                    )
                ),
                max_task_retry_count=2,
                wait_for_success=True,
            ),
            metadata=[bm.BatchMetadataItem(name=k, value=v) for k, v in metadata.items()],
        )

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
        try:
            self._call("create pool", self.client.create_pool, self.pool_create_options(spec))
        except ResourceExistsError:
            log.info("Batch pool %s exists; using it as it is", spec.id)
            return False
        except ResourceNotFoundError as exc:
            raise self._unexpected("create pool", exc) from exc
        log.info("Created Batch pool %s (%s, %d slots per node)", spec.id, self.vm_size, spec.slots_per_node)
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

    # -- tasks ----------------------------------------------------------------------------------------

    def task_create_options(self, task: TaskSpec) -> bm.BatchTaskCreateOptions:
        """TaskSpec -> the Batch task body, field for field."""
        identity = self._identity()
        return bm.BatchTaskCreateOptions(
            id=task.id,
            display_name=task.display_name,
            command_line=task.command_line,
            resource_files=[
                bm.ResourceFile(http_url=rf.http_url, file_path=rf.file_path, identity_reference=identity)
                for rf in task.resource_files
            ],
            output_files=[
                bm.OutputFile(
                    file_pattern=of.pattern,
                    destination=bm.OutputFileDestination(
                        container=bm.OutputFileBlobContainerDestination(
                            path=of.path, container_url=of.container_url, identity_reference=identity
                        )
                    ),
                    upload_options=bm.OutputFileUploadConfiguration(
                        upload_condition=bm.OutputFileUploadCondition(of.upload_condition)
                    ),
                )
                for of in task.output_files
            ],
            environment_settings=[bm.EnvironmentSetting(name=k, value=v) for k, v in task.environment],
            constraints=bm.BatchTaskConstraints(
                max_task_retry_count=task.max_task_retry_count,
                max_wall_clock_time=dt.timedelta(seconds=task.max_wall_clock_seconds),
                retention_time=dt.timedelta(seconds=task.retention_seconds),
            ),
        )

    def add_task(self, task: TaskSpec) -> bool:
        try:
            self._call("add task", self.client.create_task, self.job_id, self.task_create_options(task))
        except ResourceExistsError as exc:
            if _error_code(exc) in ("TaskExists", ""):
                return False
            raise self._unexpected("add task", exc) from exc
        except ResourceNotFoundError as exc:
            raise JobNotFound(f"Batch job {self.job_id} not found ({_error_text(exc)})") from exc
        return True

    def terminate_task(self, task_id: str) -> bool:
        try:
            self._call("terminate task", self.client.terminate_task, self.job_id, task_id)
        except ResourceNotFoundError:
            return False
        except ResourceExistsError:
            return False  # 409 TaskCompleted: nothing left to stop
        return True

    def task_status(self, task_id: str) -> str | None:
        try:
            task = self._call("get task", self.client.get_task, self.job_id, task_id, select=["id", "state"])
        except ResourceNotFoundError:
            return None
        state = getattr(task.state, "value", task.state)
        return str(state).lower() if state is not None else None

    def task_counts(self) -> TaskCounts:
        try:
            result = self._call("get task counts", self.client.get_job_task_counts, self.job_id)
        except ResourceNotFoundError as exc:
            raise JobNotFound(f"Batch job {self.job_id} not found ({_error_text(exc)})") from exc
        except ResourceExistsError as exc:
            raise self._unexpected("get task counts", exc) from exc
        c = result.task_counts
        return TaskCounts(
            active=c.active or 0,
            running=c.running or 0,
            completed=c.completed or 0,
            succeeded=c.succeeded or 0,
            failed=c.failed or 0,
        )

    # -- pool size ------------------------------------------------------------------------------------

    def pool_state(self) -> PoolState | None:
        try:
            pool = self._call("get pool", self.client.get_pool, self.pool_id, select=POOL_STATE_FIELDS)
        except ResourceNotFoundError:
            return None
        except ResourceExistsError as exc:
            raise self._unexpected("get pool", exc) from exc
        state = PoolState(
            allocation_state=str(getattr(pool.allocation_state, "value", pool.allocation_state) or "steady").lower(),
            current_dedicated=pool.current_dedicated_nodes or 0,
            current_spot=pool.current_low_priority_nodes or 0,
            target_dedicated=pool.target_dedicated_nodes or 0,
            target_spot=pool.target_low_priority_nodes or 0,
            slots_per_node=pool.task_slots_per_node or self.slots_per_node,
            auto_scale=bool(pool.enable_auto_scale),
            preempted=self._preempted_spot() if (pool.current_low_priority_nodes or 0) > 0 else 0,
        )
        self._last_state = (time.monotonic(), state)
        return state

    def _preempted_spot(self) -> int:
        """Preempted Spot nodes (one node-counts request, made only while the pool has Spot nodes).

        A preempted node stays in the pool and in its current Spot count, doing no work; the policy makes up for
        it with dedicated nodes. Counts unavailable: 0, and the timer goes on (Batch re-allocates Spot by itself).
        """
        try:
            counts = self._call("get node counts", self.client.list_pool_node_counts,
                                filter=f"poolId eq '{self.pool_id}'")
            for entry in counts:
                if entry.pool_id.lower() == self.pool_id.lower() and entry.low_priority is not None:
                    return entry.low_priority.preempted or 0
        except (GatewayError, ResourceNotFoundError, ResourceExistsError) as exc:
            log.warning("preempted Spot nodes unknown this run: %s", exc)
        return 0

    def resize(self, dedicated: int, spot: int) -> None:
        # The monitor reads pool_state() just before deciding; reuse that answer instead of a second GET.
        seen_at, state = self._last_state
        if state is None or time.monotonic() - seen_at > STATE_REUSE_SECONDS:
            state = self.pool_state()
        if state is None:
            raise JobNotFound(f"Batch pool {self.pool_id} not found")
        if state.auto_scale:
            raise PoolBusy(f"Batch pool {self.pool_id} uses autoscale; not resizing it")
        if state.allocation_state != "steady":
            raise PoolBusy(f"Batch pool {self.pool_id} is {state.allocation_state}; resize later")
        options = bm.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated,
            target_low_priority_nodes=spot,
            node_deallocation_option=bm.BatchNodeDeallocationOption.TASK_COMPLETION,
        )
        try:
            self._call("resize pool", self._send_resize, options)
        except ResourceExistsError as exc:  # 409: resizing / stopping / autoscale since we looked
            raise PoolBusy(f"Batch pool {self.pool_id} cannot be resized now ({_error_text(exc)})") from exc
        except ResourceNotFoundError as exc:
            raise JobNotFound(f"Batch pool {self.pool_id} not found ({_error_text(exc)})") from exc
        self._last_state = (0.0, None)  # the pool is resizing now
        log.info("Resizing Batch pool %s to %d dedicated + %d Spot nodes", self.pool_id, dedicated, spot)

    def _send_resize(self, options: bm.BatchPoolResizeOptions) -> None:
        # One POST /pools/{id}/resize. azure-batch 15 exposes it publicly only as begin_resize_pool, whose
        # LROPoller starts a thread polling get_pool until the pool is steady (extra requests, a thread
        # outliving the function call). The monitor never waits for a resize, so send the request alone.
        internal = getattr(self.client, "_resize_pool_internal", None)
        if internal is not None:
            internal(self.pool_id, options)
            return
        self.client.begin_resize_pool(self.pool_id, options, polling_interval=3600)  # fallback; never waited on

    # -- failures -------------------------------------------------------------------------------------

    def failed_tasks_since(self, since: dt.datetime | None) -> list[FinishedTask]:
        def fetch() -> list[bm.BatchTask]:
            pages = self.client.list_tasks(
                self.job_id,
                filter=failed_tasks_filter(since),
                select=FAILED_TASK_FIELDS,
                max_results=LIST_PAGE_SIZE,
            )
            return list(pages)  # follows odata.nextLink to the last page

        try:
            tasks = self._call("list failed tasks", fetch)
        except ResourceNotFoundError as exc:
            raise JobNotFound(f"Batch job {self.job_id} not found ({_error_text(exc)})") from exc
        except ResourceExistsError as exc:
            raise self._unexpected("list failed tasks", exc) from exc
        found = [_finished(t) for t in tasks]
        found.sort(key=lambda f: (f.state_transition_time, f.id))
        return found


def _finished(task: bm.BatchTask) -> FinishedTask:
    info = task.execution_info
    epoch = dt.datetime.fromtimestamp(0, dt.UTC)
    transition = _utc(task.state_transition_time) or epoch
    failure = getattr(info, "failure_info", None) if info is not None else None
    message = ""
    if failure is not None:
        message = failure.message or failure.code or ""
        if failure.code and failure.message and failure.code not in failure.message:
            message = f"{failure.code}: {failure.message}"
    exit_code = info.exit_code if info is not None else None
    if not message and exit_code is not None:
        message = f"exit code {exit_code}"
    env: Mapping[str, str] = {e.name: e.value or "" for e in (task.environment_settings or [])}
    return FinishedTask(
        id=task.id or "",
        display_name=task.display_name or "",
        exit_code=exit_code,
        failure_message=message,
        attempts=((info.retry_count or 0) if info is not None else 0) + 1,
        finished_at=_utc(info.end_time if info is not None else None) or transition,
        state_transition_time=transition,
        environment=dict(env),
    )
