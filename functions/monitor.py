"""Timer trigger: one monitor tick (ensure pool and job, scale the pool, report failed tasks)."""

import azure.functions as func

from shared import bootstrap
from shared.usecases.monitor.tick import monitor_tick

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%MONITOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
def monitor(timer: func.TimerRequest) -> None:
    """Runs on the NCRONTAB schedule from the MONITOR_SCHEDULE app setting."""
    monitor_tick(bootstrap.deps())
