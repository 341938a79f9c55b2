"""Every benchmark in bench/ runs (`python -m bench.<name> --smoke`: a few small files, seconds) and ends with its
figures line, so a broken benchmark cannot land. The figures of a smoke run mean nothing; that they are all there,
and numbers, does."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from devhost.azurite import REPO
from tests.support import media_matrix as mm

FIGURES = {
    "scaling": ("p95_wait_vs_formula", "node_minutes_vs_formula", "sparse_node_minutes_vs_formula",
                   "sparse_p95_wait_vs_formula", "p95_wait_vs_before", "node_minutes_vs_before",
                   "memos_node_minutes_vs_before", "sweep_p95_wait_vs_formula", "sweep_node_minutes_vs_formula"),
    "faults": ("dropped", "converted", "failed_with_report", "lost", "duplicated", "unexpected"),
    "pipeline": ("throughput_ratio", "latency_delta_s", "memory_ratio", "requests_10", "requests_5000",
                    "throughput_ratio_stored", "idle_cpu_20000", "latency_20000_s", "floor_ratio_stored",
                    "floor_ratio_drop", "runner_ratio"),
    "media": (*(f"speed_{c.name.replace('-', '_').replace('.', '_')}" for c in mm.GOOD),
                 "copy_speed_x", "reencode_speed_x", "copy_vs_reencode"),
    "many_files": ("many_files", "wall_s", "raw_s", "ratio", "outcomes", "host_rss_quarter_mib",
                   "host_rss_end_mib", "requests_per_file", "azure_storage_requests_per_file",
                   "batch_requests_per_file"),
    "scale_day": ("files_per_s", "job_tasks_before", "job_tasks_before_infra", "job_tasks", "deletes_per_run",
                  "reconcile_seen_before", "reconcile_seen", "reconcile_seen_7d_inputs",
                  "storage_requests_per_file_before", "storage_requests_per_file", "batch_requests_per_file",
                  "batch_requests_per_s", "batch_requests_per_file_collection", "nodes_d2s_v3_before", "nodes_d2s_v3",
                  "node_usd_day_before", "node_usd_day", "usd_per_day", "sim_nodes_before", "sim_nodes",
                  "sim_steady_nodes_before", "sim_steady_nodes", "sim_node_usd_day_before", "sim_node_usd_day",
                  "sim_p95_wait_s_before", "sim_p95_wait_s"),
}


def figures_line(line: str) -> dict[str, float]:
    """`name=value name=value ...` as numbers; anything else fails the test."""
    pairs = [field.split("=") for field in line.split()]
    assert pairs and all(len(p) == 2 for p in pairs), line
    return {name: float(value) for name, value in pairs}


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_each_benchmark_runs_in_smoke_mode_and_prints_its_figures(bench, tmp_path):
    # As `make bench` runs it (python -m bench.<name>), from a folder of its own: the repository only on the path.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", f"bench.{bench}", "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    figures = figures_line(lines[-1])
    assert list(figures) == list(FIGURES[bench])
    assert all(math.isfinite(v) for v in figures.values()), figures  # every phase ran, none was skipped
    if bench == "faults":
        assert figures["lost"] == figures["duplicated"] == figures["unexpected"] == 0
        assert figures["converted"] > 0 and figures["failed_with_report"] > 0
