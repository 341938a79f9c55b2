"""The rules, pure (no I/O): naming, planning, the ffmpeg command, scaling, a file's life, reports, monitor state."""
