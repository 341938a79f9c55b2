"""Every app setting declared once: name, kind, default, bounds or choices, and meaning (standard library only).

shared/settings.py parses from this table, shared/settings_doc.py writes README's table and
local.settings.sample.json from it, and tests/test_infra_settings.py holds Bicep's app settings to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Hand-rolled over the standard library: import + parse of all settings takes ~10 ms in a fresh interpreter, the
# same model in pydantic-settings 2.16 ~150 ms (min of 20 fresh interpreters; Functions cold start matters).

Kind = Literal["text", "path", "connection", "container", "batch_id", "ncrontab", "choice", "whole", "number"]

CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The names of shared/node/presets.py's PRESETS, here so that reading settings never loads the node runner
# (tests/test_settings.py holds the two equal).
PRESET_NAMES = ("standard", "high", "small", "cbr128", "cbr320", "podcast")

# Node URLs (SAS mode) are signed for TASK_MAX_WALL_CLOCK_SECONDS + 12 h with a user-delegation key that lives
# 1 h 5 min longer (shared/adapters/storage.py); Azure caps a user-delegation key at 7 days.
URL_GRACE_SECONDS = 12 * 3600
DELEGATION_KEY_MAX_SECONDS = 7 * 24 * 3600
DELEGATION_KEY_MARGIN_SECONDS = 65 * 60
MAX_WALL_CLOCK_WITH_SAS = DELEGATION_KEY_MAX_SECONDS - URL_GRACE_SECONDS - DELEGATION_KEY_MARGIN_SECONDS
MAX_SLOTS = 256  # Batch: taskSlotsPerNode at most 4 x the node's vCPUs, and 256
SLOTS_PER_VCPU = 4  # Batch's most, the default: short tasks overlap their per-task gaps (docs/scaling.md)


@dataclass(frozen=True)
class Setting:
    """One app setting. An empty `default` with `computed` set means the code works the default out."""

    name: str  # the app setting (environment variable)
    attr: str | None  # the Settings attribute it fills; None: read where it is used (identity-based storage)
    kind: Kind
    default: str
    meaning: str  # Markdown, for README's table
    low: float | None = None  # whole / number: inclusive bounds
    high: float | None = None
    choices: tuple[str, ...] = ()  # choice
    fold_case: bool = False  # choice: compared (and kept) in lower case
    computed: str = ""  # README's default column when the default is worked out at start-up
    local: bool = True  # written into local.settings.sample.json


_STORAGE_IDENTITY = "identity-based storage (used when `AzureWebJobsStorage` is unset)"

SETTINGS: tuple[Setting, ...] = (
    Setting("AzureWebJobsStorage", "storage_connection", "connection", "UseDevelopmentStorage=true",
            "storage connection; in Azure prefer identity: `AzureWebJobsStorage__accountName` or "
            "`AzureWebJobsStorage__blobServiceUri`"),
    Setting("AzureWebJobsStorage__accountName", None, "text", "",
            f"{_STORAGE_IDENTITY}: the storage account's name", local=False),
    Setting("AzureWebJobsStorage__blobServiceUri", None, "text", "",
            f"{_STORAGE_IDENTITY}: the blob endpoint, e.g. `https://myacct.blob.core.windows.net`", local=False),
    Setting("AzureWebJobsStorage__queueServiceUri", None, "text", "",
            f"{_STORAGE_IDENTITY}: the queue endpoint (the outcome queue), e.g. "
            "`https://myacct.queue.core.windows.net`; worked out from the account's name when unset", local=False),
    Setting("AzureWebJobsStorage__clientId", None, "text", "",
            f"{_STORAGE_IDENTITY}: client id of the user-assigned identity to sign in with", local=False),
    Setting("INPUT_CONTAINER", "input_container", "container", "mp4-in",
            "where inputs are dropped (the trigger's path is `%INPUT_CONTAINER%/{name}`)"),
    Setting("OUTPUT_CONTAINER", "output_container", "container", "mp3-out",
            "where MP3s, failure reports (`*.error.json`) and failed tasks' logs (`_mp3pipe-logs/`) land"),
    Setting("STATE_CONTAINER", "state_container", "container", "mp3pipe-state",
            "the monitor's small state record (outcome watermark, last work seen) and the per-file records"),
    Setting("OUTCOME_QUEUE", "outcome_queue", "container", "mp3pipe-outcomes",
            "the Storage queue (in the app's storage account) that gets one CloudEvent per input version when it "
            "ends: see [Outcome events](#outcome-events)"),
    Setting("FFMPEG_PRESET", "ffmpeg_preset", "choice", "standard",
            "how the MP3 is made: see [Presets](#presets)", choices=PRESET_NAMES),
    Setting("MONITOR_SCHEDULE", "monitor_schedule", "ncrontab", "0 * * * * *",
            "NCRONTAB (with seconds) of the monitor timer"),
    Setting("RECONCILE_SCHEDULE", "reconcile_schedule", "ncrontab", "30 */10 * * * *",
            "NCRONTAB of the reconcile timer (submits input blobs a trigger missed)"),
    Setting("RECONCILE_BATCH", "reconcile_batch", "whole", "500",
            "the fewest input blobs the reconcile timer looks at per run (it continues where it stopped, and looks "
            "at more so a pass covers the container every 2 h)", low=1, high=5000),
    Setting("BATCH_GATEWAY", "batch_gateway", "choice", "local",
            "`local` (ffmpeg processes here) or `azure` (Azure Batch)", choices=("local", "azure"), fold_case=True),
    Setting("BATCH_ACCOUNT_URL", "batch_account_url", "text", "",
            "e.g. `https://myacct.westeurope.batch.azure.com`; needed when `BATCH_GATEWAY=azure`"),
    Setting("BATCH_ACCOUNT_KEY", "batch_account_key", "text", "",
            "only if you must use shared-key auth; Entra ID is used otherwise"),
    Setting("BATCH_POOL_ID", "pool_id", "batch_id", "mp3pipe-pool", "the pool"),
    Setting("BATCH_JOB_ID", "job_id", "batch_id", "mp3pipe-job", "the persistent job"),
    Setting("BATCH_VM_SIZE", "vm_size", "text", "standard_d2s_v3", "node size when the app creates the pool"),
    Setting("BATCH_SLOTS_PER_NODE", "slots_per_node", "whole", "",
            "task slots per node; a conversion asks for 1 to a core's worth (slots / vCPUs) by its input's size "
            "(docs/scaling.md); at most 4 × vCPUs",
            low=1, high=MAX_SLOTS, computed="4 × vCPUs of `BATCH_VM_SIZE` (8)"),
    Setting("BATCH_MIN_NODES", "min_nodes", "whole", "",
            "pool size lower bound for the scaling policy (at most `BATCH_MAX_NODES`)",
            low=0, computed="cores locally, 0 in Azure"),
    Setting("BATCH_MAX_NODES", "max_nodes", "whole", "10", "pool size upper bound for the scaling policy", low=1),
    Setting("BATCH_POOL_IDENTITY_ID", "pool_identity_id", "text", "",
            "resource id of the pool's user-assigned identity; nodes then reach storage with it instead of SAS "
            "URLs, and the monitor never creates the pool itself (the deployment does; a missing pool is logged "
            "naming this setting)"),
    Setting("BATCH_SPOT_SHARE", "spot_share", "number", "0",
            "share of nodes that may be Spot (`target_low_priority_nodes`; needs a user-subscription Batch "
            "account); above 0 it must give at least one Spot node at `BATCH_MAX_NODES` beside "
            "`BATCH_DEDICATED_FLOOR`", low=0, high=1),
    Setting("BATCH_DEDICATED_FLOOR", "dedicated_floor", "whole", "0",
            "dedicated nodes kept whenever the pool has nodes (at most `BATCH_MAX_NODES`)", low=0),
    Setting("SCALE_IDLE_GRACE_SECONDS", "idle_grace_seconds", "whole", "300",
            "how long the pool stays up after work was last seen before going to the minimum", low=0),
    Setting("TASK_MAX_RETRIES", "task_max_retries", "whole", "1",
            "retries of a failed conversion before it is reported", low=0, high=100),
    Setting("TASK_MAX_WALL_CLOCK_SECONDS", "task_max_wall_clock_seconds", "whole", "3600",
            f"longest a conversion may run; at most {MAX_WALL_CLOCK_WITH_SAS} unless the pool has an identity "
            "(SAS node URLs are signed for it + 12 h, with a key Azure caps at 7 days)", low=10),
    Setting("TASK_RETENTION_SECONDS", "task_retention_seconds", "whole", "900",
            "how long a completed task's files stay on the node; the monitor then deletes the task from the job",
            low=60),
    Setting("LOCAL_STATE_DIR", "local_state_dir", "path", ".state", "local gateway state (SQLite, task folders)"),
    Setting("FFMPEG_PATH", "ffmpeg_path", "text", "", "local gateway: an ffmpeg other than the imageio-ffmpeg wheel's"),
    Setting("LOCAL_TASK_SLOTS", "local_task_slots", "whole", "",
            "local gateway: task slots on this machine, whatever the pool's size; a conversion holds the slots it "
            "asks for, as on a node (four per core, as the pool has per vCPU: a short file holds one, a long one a "
            "core's worth)", low=1, high=MAX_SLOTS, computed="4 × the core count"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
