"""Inputs that would map to one MP3 (a.mp4 and a.mov in one folder): the first by naming.precedence owns it, every
other is rejected with a report naming the owner, so no input's MP3 is ever overwritten by another's."""

from __future__ import annotations

from shared.domain import file_life, naming
from shared.domain.file_life import RecordState
from shared.ports.deps import Deps
from shared.ports.storage import BlobInfo
from shared.usecases import notify
from shared.usecases.file_records import FileRecords
from shared.usecases.report_writer import write_report


def stem_listing(deps: Deps, name: str) -> list[BlobInfo]:
    """The input blobs that share this name's stem, itself included: one listing (which submit reads instead of
    the blob's properties, so finding rivals costs no request of its own)."""
    return list(deps.storage.list_blobs(deps.settings.input_container, naming.siblings_prefix(name)))


def rival_inputs(name: str, listing: list[BlobInfo]) -> list[BlobInfo]:
    """The other inputs in the stem's listing whose MP3 name is this one's."""
    output = naming.output_name(name)
    return [b for b in listing if b.name != name and naming.is_input(b.name) and naming.mapped_output(b.name) == output]


def owner(name: str, rivals: list[BlobInfo]) -> str | None:
    """The rival that owns the MP3 instead of `name`, None when `name` owns it."""
    first = min([name, *(b.name for b in rivals)], key=naming.precedence)
    return None if first == name else first


def rival_reason(name: str, winner: str) -> str:
    return (f"another input, {winner!r}, converts to the same MP3 ({naming.output_name(name)}) and comes first "
            f"(in the order {' '.join(naming.INPUT_SUFFIXES)}); rename this file to convert it too")


def write_rival_report(deps: Deps, name: str, etag: str, winner: str) -> tuple[str, str]:
    """The report of a version that lost to `winner`, by its hash (the MP3's place is the winner's): (reason, path)."""
    reason = rival_reason(name, winner)
    path = write_report(deps, name, etag, task_id=None, exit_code=None, reason=reason, stderr_tail="", attempts=0,
                        path=naming.unmapped_report_name(name))
    return reason, path


def reject_losers(deps: Deps, winner: str, losers: list[BlobInfo]) -> None:
    """Each loser recorded before the winner came (submitted, or even converted): rejected with its report, its
    task stopped (so its MP3 cannot land after the winner's) and deleted (so the monitor reports nothing of it).
    A loser with no record yet rejects itself when its own trigger (or reconcile) submits it."""
    records = FileRecords.of(deps)
    for blob in losers:
        _reject_loser(deps, records, blob, winner)


def _reject_loser(deps: Deps, records: FileRecords, blob: BlobInfo, winner: str) -> None:
    etag = naming.clean_etag(blob.etag)
    record, _ = records.get(blob.name)
    if record is None or record.etag != etag or record.state == RecordState.REJECTED:
        return
    if record.task_id and record.state in (RecordState.SUBMITTED, RecordState.UNSUBMITTED):
        deps.gateway.terminate_task(record.task_id)  # first: no MP3 of the loser lands from here on
        deps.gateway.delete_task(record.task_id)
    reason, path = write_rival_report(deps, blob.name, etag, winner)
    # Its outcome event, as for a loser rejected at its own submit (no task: the task it had was deleted).
    notify.decide(deps, lambda: notify.rejected(deps, blob.name, etag, reason, path, deps.settings.ffmpeg_preset),
                  lambda: records.apply(blob.name, etag, lambda r: file_life.lost_to_rival(r, reason, path)))
