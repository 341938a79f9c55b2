"""The rules, pure (no I/O): naming, task planning, the ffmpeg command, scaling, reports, records, monitor state."""
