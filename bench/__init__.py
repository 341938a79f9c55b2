"""Benchmarks: each module runs as `python -m bench.<name>` and ends with one `name=value ...` line."""
