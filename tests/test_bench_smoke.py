"""Every benchmark in bench/ runs in its smoke mode (a few small files, seconds) and ends with its figures line, so a
broken benchmark cannot land. The figures of a smoke run mean nothing; that they are all there, and numbers, does."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from devhost import media_matrix as mm
from devhost.azurite import REPO

FIGURES = {
    "scaling.py": ("p95_wait_vs_formula", "node_minutes_vs_formula", "sparse_node_minutes_vs_formula",
                   "sparse_p95_wait_vs_formula"),
    "faults.py": ("dropped", "converted", "failed_with_report", "lost", "duplicated", "unexpected"),
    "pipeline.py": ("throughput_ratio", "latency_delta_s", "memory_ratio", "requests_10", "requests_5000",
                    "throughput_ratio_stored", "idle_cpu_20000", "latency_20000_s", "floor_ratio_stored",
                    "floor_ratio_drop", "runner_ratio"),
    "media.py": (*(f"speed_{c.name.replace('-', '_').replace('.', '_')}" for c in mm.GOOD),
                 "copy_speed_x", "reencode_speed_x", "copy_vs_reencode"),
    "many_files.py": ("many_files", "wall_s", "raw_s", "ratio", "outcomes", "host_rss_quarter_mib",
                      "host_rss_end_mib", "requests_per_file", "azure_storage_requests_per_file",
                      "batch_requests_per_file"),
}


def figures_line(line: str) -> dict[str, float]:
    """`name=value name=value ...` as numbers; anything else fails the test."""
    pairs = [field.split("=") for field in line.split()]
    assert pairs and all(len(p) == 2 for p in pairs), line
    return {name: float(value) for name, value in pairs}


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_each_benchmark_runs_in_smoke_mode_and_prints_its_figures(script, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    figures = figures_line(lines[-1])
    assert list(figures) == list(FIGURES[script])
    assert all(math.isfinite(v) for v in figures.values()), figures  # every phase ran, none was skipped
    if script == "faults.py":
        assert figures["lost"] == figures["duplicated"] == figures["unexpected"] == 0
        assert figures["converted"] > 0 and figures["failed_with_report"] > 0
