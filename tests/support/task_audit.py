"""What the local gateway did per task, read from its state folder (runs, command launches and uploads), and how
that squares with the commits storage itself saw."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devhost.local_pipeline import LocalPipeline
from localbatch.history import read_history
from shared.domain import planning
from tests.support.local_tasks import read_tasks
from tests.support.storage_commits import Commit


@dataclass
class TaskAudit:
    """One task's row in the local gateway's table and its append-only history."""

    id: str
    state: str
    result: str | None
    failure_message: str
    retry_count: int
    requeue_count: int
    owner_pid: int | None
    name: str  # the input blob
    etag: str  # the input version
    output: str | None  # where its MP3 is uploaded on success
    output_container: str | None  # the container it goes to
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminated(self) -> bool:
        return self.state == "completed" and self.failure_message.startswith("TaskEnded")

    def runs(self) -> list[list[dict[str, Any]]]:
        """The history split into runs: each begins when a process claims the task."""
        runs: list[list[dict[str, Any]]] = []
        for event in self.history:
            if event["event"] == "run" or not runs:
                runs.append([])
            runs[-1].append(event)
        return runs

    def execs(self) -> int:
        return sum(1 for e in self.history if e["event"] == "exec")

    def mp3_uploads(self, run: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        events = self.history if run is None else run
        return [e for e in events if e["event"] == "upload" and e.get("path") == self.output]

    def problems(self, forgotten: frozenset[str] = frozenset()) -> list[str]:
        """Work done twice or not accounted for; empty when each run, launch and upload happened once.

        `forgotten`: ETags of MP3 commits storage lost (Azurite killed within its save window); a run whose MP3
        was forgotten may be followed by one more run that makes it again."""
        out: list[str] = []
        runs = self.runs()
        redone = [any(e.get("etag") in forgotten for e in self.mp3_uploads(run)) for run in runs]
        # The first try, Batch retries, requeues after a crash, runs again after storage forgot the MP3.
        allowed = 1 + self.retry_count + self.requeue_count + sum(redone[:-1])
        if len(runs) > allowed:
            out.append(f"{len(runs)} runs, but only {allowed} accounted for by retries and requeues")
        for i, run in enumerate(runs):
            if sum(1 for e in run if e["event"] == "exec") > 1:
                out.append(f"run {i + 1} launched its command more than once")
            uploads = len(self.mp3_uploads(run))
            cut = i + 1 < len(runs) and runs[i + 1][0]["pid"] != run[0]["pid"]  # its process died, it ran again
            last_success = i == len(runs) - 1 and self.state == "completed" and self.result == "success"
            if uploads > 1 or (uploads and not (cut or last_success or redone[i])):
                out.append(f"run {i + 1} uploaded the MP3 {uploads} time(s)")
            if last_success and uploads == 0:
                out.append("completed with success but its last run uploaded no MP3")
        return out

    def upload_spans(self) -> list[tuple[float, float]]:
        """(begun, recorded) times of each MP3 upload that finished."""
        spans, begun = [], None
        for e in self.history:
            if e.get("path") != self.output:
                continue
            if e["event"] == "uploading":
                begun = e["at"]
            elif e["event"] == "upload" and begun is not None:
                spans.append((begun, e["at"]))
                begun = None
        return spans

    def open_uploads(self) -> int:
        """MP3 uploads begun but never seen to finish (the run died or the upload raised): each may have committed."""
        count = 0
        for run in self.runs():
            begun = sum(1 for e in run if e["event"] == "uploading" and e.get("path") == self.output)
            count += max(begun - len(self.mp3_uploads(run)), 0)
        return count


def storage_problems(tasks: list[TaskAudit], commits: list[Commit],
                     starts: Sequence[float] = ()) -> dict[str, list[str]]:
    """Per MP3 path, where storage's own commits (from Azurite's log, one container) and the gateway's history
    disagree: an upload the history claims storage never committed, or a commit the history does not account for
    (only an upload begun and never seen to finish may have committed unrecorded, once; and a recorded upload
    during which storage restarted (`starts`) may have committed more than once: the SDK sent it again when the
    stopping storage's answer was lost)."""
    by_path: dict[str, list[TaskAudit]] = defaultdict(list)
    for t in tasks:
        if t.output:
            by_path[t.output].append(t)
    stored: dict[str, list[Commit]] = defaultdict(list)
    for c in commits:
        stored[c.blob].append(c)
    out: dict[str, list[str]] = {}
    for path, owners in by_path.items():
        etags = {c.etag for c in stored[path]}
        recorded = [e["etag"] for t in owners for e in t.mp3_uploads()]
        problems = [f"the gateway recorded an upload (ETag {e}) that storage never committed"
                    for e in recorded if e not in etags]
        spans = [(b, d) for t in owners for b, d in t.upload_spans() if any(b <= s <= d for s in starts)]
        unrecorded = [c for c in stored[path] if c.etag not in recorded
                      and not any(begun <= c.epoch <= done + 0.001 for begun, done in spans)]
        allowed = sum(t.open_uploads() for t in owners)
        if len(unrecorded) > allowed:
            problems.append(f"storage committed it {len(stored[path])} time(s), {len(unrecorded)} not in the "
                            f"gateway's history ({allowed} explained by an upload cut short)")
        if problems:
            out[path] = problems
    return out


def output_container(container_url: str) -> str:
    """The container a container URL names (http://host/account/container?sas)."""
    return unquote(urlsplit(container_url).path.rstrip("/").rsplit("/", 1)[-1])


def audit(state_dir: Path, job_id: str) -> list[TaskAudit]:
    """Every task of the job in the local gateway under `state_dir`, with its history; [] before it exists."""
    root = Path(state_dir) / "batch"
    out = []
    for t in read_tasks(state_dir, job_id):
        env = t.spec.env()
        rule = next((o for o in t.spec.output_files if o.upload_condition.lower() == "tasksuccess"), None)
        out.append(TaskAudit(t.id, t.state, t.result, t.failure_message or "", t.retry_count, t.requeue_count,
                             t.owner_pid, env.get(planning.ENV_INPUT_BLOB, ""), env.get(planning.ENV_INPUT_ETAG, ""),
                             rule.path if rule else None, output_container(rule.container_url) if rule else None,
                             read_history(root, job_id, t.id)))
    return out


def tasks_of(pipe: LocalPipeline) -> list[TaskAudit]:
    """Every task of a local pipeline's gateway with its history (runs, launches, uploads)."""
    return audit(pipe.state_dir, pipe.value("BATCH_JOB_ID"))
