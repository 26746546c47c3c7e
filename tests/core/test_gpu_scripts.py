"""The GPU check's scripts on a machine without a GPU: they parse, and the check stops at once with a reason
(it never hangs waiting for a device). Their GPU results are reported by the check itself (docs/cluster.md)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_scripts_parse():
    for script in ("scripts/gpu_check.sh", "scripts/gpu_wheels.sh"):
        assert subprocess.run(["bash", "-n", str(REPO / script)]).returncode == 0, script
        assert os.access(REPO / script, os.X_OK), f"{script} is not executable"


def test_gpu_check_refuses_a_machine_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a GPU is present: the check would run for minutes")
    result = subprocess.run([str(REPO / "scripts/gpu_check.sh"), str(tmp_path / "report")], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 2
    assert "sees no CUDA GPU" in result.stderr


def test_gpu_report_lists_every_job_and_the_step0_log_ratios_of_the_mini_run(mini_run, tmp_path):
    """The report the GPU check writes, on the session's mini run (its production numerics, checked too:
    every alignment job starts at a log-ratio of exactly 0, Wasserstein variants on eager attention only)."""
    from workflow_scripts.tools.gpu_report import render, training_rows

    (tmp_path / "run").symlink_to(mini_run)
    text = render(tmp_path, tmp_path, "mini", ["bench_align (timed out after 200s)"])
    assert "## mini jobs" in text and "- bench_align (timed out after 200s)" in text
    aligned = [r for r in training_rows(mini_run, "mini") if "/align/" in r["job"]]
    assert len(aligned) >= 20
    for row in aligned:
        assert float(row["ratio"]) == 0.0, row
        wasserstein = any(f"/{v}/" in row["job"] for v in ("w-rebel", "wdpo"))
        assert row["attention"] == ("eager" if wasserstein else "sdpa"), row
