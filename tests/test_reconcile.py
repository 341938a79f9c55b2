"""Lost events: reconcile (bounded per run) and backfill submit input blobs that never got a task."""

from __future__ import annotations

from shared.usecases.reconcile import backfill, reconcile


def _put(deps, name: str, data: bytes = b"\x00\x00\x00\x18ftypmp42") -> None:
    deps.storage.service.get_blob_client(deps.settings.input_container, name).upload_blob(data, overwrite=True)


def test_reconcile_submits_missed_blobs_a_bounded_slice_at_a_time(deps):
    for i in range(5):
        _put(deps, f"old/{i}.mp4")  # there before the app: no trigger ever fired for them
    _put(deps, "old/readme.txt")
    first = reconcile(deps, budget=2)
    assert (first.checked, first.submitted, first.wrapped) == (2, 2, False)
    assert len(deps.gateway.task_ids()) == 2
    runs = [reconcile(deps, budget=2) for _ in range(2)]
    assert runs[-1].wrapped
    assert len(deps.gateway.task_ids()) == 5
    again = reconcile(deps, budget=10)  # a full pass later: everything has a record, nothing is resubmitted
    assert again.submitted == 0 and len(deps.gateway.task_ids()) == 5


def test_backfill_covers_the_container_once_and_is_idempotent(deps):
    for i in range(7):
        _put(deps, f"bf/{i}.mp4")
    assert backfill(deps, budget=3).submitted == 7
    assert backfill(deps, budget=3).submitted == 0
    _put(deps, "bf/3.mp4", b"new content")  # overwritten while no trigger was listening
    assert backfill(deps, budget=3).submitted == 1
    assert len(deps.gateway.task_ids()) == 8
