"""Timer trigger (slower schedule): submit input blobs that were missed, a bounded slice per run."""

import azure.functions as func

from shared import bootstrap
from shared.usecases.reconcile import reconcile as reconcile_inputs

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    """Runs on RECONCILE_SCHEDULE; looks at least RECONCILE_BATCH input blobs a run, enough for a pass every 2 h."""
    deps = bootstrap.deps()
    reconcile_inputs(deps, deps.settings.reconcile_batch)
