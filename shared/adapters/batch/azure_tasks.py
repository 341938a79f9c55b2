"""The Azure adapter's task operations: add, terminate, look up, count, list finished tasks, clean up the job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from azure.batch import models as bm
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.batch.azure_errors import AdapterBase, T, error_code, error_text, odata_datetime, utc
from shared.domain.task_slots import slots_on_node
from shared.ports.batch import CompletedTask, FinishedTask, JobNotFound, QueuedTask, TaskCounts, TaskSpec

FINISHED_TASK_FIELDS = ["id", "displayName", "stateTransitionTime", "executionInfo", "environmentSettings"]
COMPLETED_TASK_FIELDS = ["id", "stateTransitionTime", "executionInfo"]
COMPLETED_FILTER = "state eq 'completed'"
QUEUED_TASK_FIELDS = ["id", "creationTime", "environmentSettings"]
LIST_PAGE_SIZE = 1000  # Batch's maximum page size for list operations


def finished_tasks_filter(since: dt.datetime | None) -> str:
    """The $filter for completed tasks changed at or after `since`."""
    if since is None:
        return COMPLETED_FILTER
    return f"{COMPLETED_FILTER} and stateTransitionTime ge {odata_datetime(since)}"


class TaskOperations(AdapterBase):
    """Tasks of the persistent job."""

    pool_identity_id: str
    pool_id: str
    slots_per_node: int
    _pool_slots: int | None = None  # the pool's taskSlotsPerNode, read once (it is fixed at the pool's creation)

    def pool_slots(self) -> int:
        """The pool's taskSlotsPerNode: one GET the first time, then kept; the app's own BATCH_SLOTS_PER_NODE while
        the pool does not exist (the monitor creates it with that)."""
        if self._pool_slots is None:
            try:
                pool = self._call("get pool", self.client.get_pool, self.pool_id, select=["taskSlotsPerNode"])
            except ResourceNotFoundError:
                return self.slots_per_node
            self._pool_slots = pool.task_slots_per_node or 1
        return self._pool_slots

    def _identity(self) -> bm.BatchNodeIdentityReference | None:
        if not self.pool_identity_id:
            return None
        return bm.BatchNodeIdentityReference(resource_id=self.pool_identity_id)

    def _job_not_found(self, exc: ResourceNotFoundError) -> JobNotFound:
        return JobNotFound(f"Batch job {self.job_id} not found ({error_text(exc)})")

    def task_create_options(self, task: TaskSpec) -> bm.BatchTaskCreateOptions:
        """TaskSpec -> the Batch task body, field for field; requiredSlots within the pool's slots per node (Batch
        accepts more, and the task then never runs: docs/scaling.md)."""
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
                            path=of.path, container_url=of.container_url, identity_reference=identity,
                            upload_headers=[bm.OutputFileUploadHeader(name=k, value=v)
                                            for k, v in of.upload_headers] or None,
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
            required_slots=slots_on_node(task.required_slots, self.pool_slots()),
        )

    def add_task(self, task: TaskSpec) -> bool:
        try:
            self._call("add task", self.client.create_task, self.job_id, self.task_create_options(task))
        except ResourceExistsError as exc:
            if error_code(exc) in ("TaskExists", ""):
                return False
            raise self._unexpected("add task", exc) from exc  # e.g. 409 JobCompleted: the job takes no tasks
        except ResourceNotFoundError as exc:
            raise self._job_not_found(exc) from exc
        return True

    def terminate_task(self, task_id: str) -> bool:
        try:
            self._call("terminate task", self.client.terminate_task, self.job_id, task_id)
        except ResourceNotFoundError:
            return False
        except ResourceExistsError:
            return False  # 409 TaskCompleted: nothing left to stop
        return True

    def delete_task(self, task_id: str) -> bool:
        """DELETE /jobs/{job}/tasks/{task}: the task leaves the job and its folder leaves the node."""
        try:
            self._call("delete task", self.client.delete_task, self.job_id, task_id)
        except ResourceNotFoundError:
            return False
        except ResourceExistsError as exc:
            raise self._unexpected("delete task", exc) from exc
        return True

    def task_status(self, task_id: str) -> str | None:
        try:
            task = self._call("get task", self.client.get_task, self.job_id, task_id, select=["id", "state"])
        except ResourceNotFoundError:
            return None
        state = getattr(task.state, "value", task.state)
        return str(state).lower() if state is not None else None

    def _job_read(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """A read of the job's tasks: a 404 means the job is gone (JobNotFound), a 409 is unexpected."""
        try:
            return self._call(what, fn, *args)
        except ResourceNotFoundError as exc:
            raise self._job_not_found(exc) from exc
        except ResourceExistsError as exc:
            raise self._unexpected(what, exc) from exc

    def task_counts(self) -> TaskCounts:
        result = self._job_read("get task counts", self.client.get_job_task_counts, self.job_id)
        c, s = result.task_counts, result.task_slot_counts
        return TaskCounts(
            active=c.active or 0,
            running=c.running or 0,
            completed=c.completed or 0,
            succeeded=c.succeeded or 0,
            failed=c.failed or 0,
            # Absent (an older API), a task is a slot, as before requiredSlots.
            active_slots=(c.active or 0) if s is None else s.active or 0,
            running_slots=(c.running or 0) if s is None else s.running or 0,
        )

    def open_tasks(self) -> dict[str, str]:
        def fetch() -> list[bm.BatchTask]:
            return list(self.client.list_tasks(self.job_id, filter="state ne 'completed'", select=["id", "state"],
                                               max_results=LIST_PAGE_SIZE))

        tasks = self._job_read("list open tasks", fetch)
        return {t.id or "": str(getattr(t.state, "value", t.state) or "").lower() for t in tasks}

    def finished_tasks_since(self, since: dt.datetime | None, limit: int | None = None) -> list[FinishedTask]:
        def fetch() -> list[bm.BatchTask]:
            out: list[bm.BatchTask] = []
            pages = self.client.list_tasks(
                self.job_id,
                filter=finished_tasks_filter(since),
                select=FINISHED_TASK_FIELDS,
                max_results=LIST_PAGE_SIZE if limit is None else min(max(limit, 1), LIST_PAGE_SIZE),
            ).by_page()  # follows odata.nextLink, up to the limit
            for page in pages:
                out.extend(page)
                if limit is not None and len(out) >= limit:
                    break
            return out

        tasks = self._job_read("list finished tasks", fetch)
        found = [_finished(t) for t in tasks[:limit]]
        found.sort(key=lambda f: (f.state_transition_time, f.id))
        return found

    def _first_page(self, what: str, query: str, select: list[str], limit: int) -> list[bm.BatchTask]:
        """The first page (at most `limit`) of the job's tasks matching `query`; the next page is never fetched."""

        def fetch() -> list[bm.BatchTask]:
            pages = self.client.list_tasks(self.job_id, filter=query, select=select,
                                           max_results=min(max(limit, 1), LIST_PAGE_SIZE)).by_page()
            return list(next(pages, []))

        return self._job_read(what, fetch)

    def completed_tasks(self, before: dt.datetime, limit: int) -> list[CompletedTask]:
        """Up to `limit` tasks completed before `before`: pages of up to 1,000, no page past the limit."""
        query = f"{COMPLETED_FILTER} and stateTransitionTime lt {odata_datetime(before)}"

        def fetch() -> list[bm.BatchTask]:
            out: list[bm.BatchTask] = []
            pages = self.client.list_tasks(self.job_id, filter=query, select=COMPLETED_TASK_FIELDS,
                                           max_results=min(max(limit, 1), LIST_PAGE_SIZE)).by_page()
            for page in pages:
                out.extend(page)
                if len(out) >= limit:
                    break
            return out

        tasks = self._job_read("list completed tasks", fetch)
        epoch = dt.datetime.fromtimestamp(0, dt.UTC)
        out = []
        for t in tasks[:limit]:
            result = getattr(t.execution_info, "result", None) if t.execution_info is not None else None
            out.append(CompletedTask(t.id or "", str(getattr(result, "value", result) or "").lower() == "success",
                                     utc(t.state_transition_time) or epoch))
        return out

    def queued_tasks(self, created_before: dt.datetime, limit: int) -> list[QueuedTask]:
        """One page of at most `limit` active tasks created before `created_before`."""
        query = f"state eq 'active' and creationTime lt {odata_datetime(created_before)}"
        tasks = self._first_page("list queued tasks", query, QUEUED_TASK_FIELDS, limit)
        epoch = dt.datetime.fromtimestamp(0, dt.UTC)
        return [QueuedTask(t.id or "", utc(t.creation_time) or epoch,
                           {e.name: e.value or "" for e in (t.environment_settings or [])}) for t in tasks[:limit]]


def _finished(task: bm.BatchTask) -> FinishedTask:
    info = task.execution_info
    epoch = dt.datetime.fromtimestamp(0, dt.UTC)
    transition = utc(task.state_transition_time) or epoch
    failure = getattr(info, "failure_info", None) if info is not None else None
    result = getattr(info, "result", None) if info is not None else None
    succeeded = str(getattr(result, "value", result) or "").lower() == "success"
    message = ""
    if failure is not None:
        message = failure.message or failure.code or ""
        if failure.code and failure.message and failure.code not in failure.message:
            message = f"{failure.code}: {failure.message}"
    exit_code = info.exit_code if info is not None else None
    if not message and exit_code is not None and not succeeded:
        message = f"exit code {exit_code}"
    env: Mapping[str, str] = {e.name: e.value or "" for e in (task.environment_settings or [])}
    return FinishedTask(
        id=task.id or "",
        display_name=task.display_name or "",
        succeeded=succeeded,
        exit_code=exit_code,
        failure_message=message,
        attempts=((info.retry_count or 0) if info is not None else 0) + 1,
        finished_at=utc(info.end_time if info is not None else None) or transition,
        state_transition_time=transition,
        environment=dict(env),
    )
