"""A training job's start-up: nothing is compiled, nothing waits, and its fixed cost is measured and written.

- The real alignment entry point, started three at once with empty, private extension caches (as after
  another environment used the machine, or on nodes sharing a home directory), builds nothing and writes
  its phase breakdown to run_info.json; the phases and ``fixed_seconds`` add up to its own total.
- With ``DRO_REBEL_STOCK_STARTUP=1`` the lean start-up is off: DeepSpeed's stock behaviour is reachable
  (the benchmark's comparison), and the patched names still exist in this DeepSpeed (an upgrade that
  renames them fails here instead of silently compiling again).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tiny_models
from workflow_scripts.core.train.timing import PHASES, JobClock

REPO = Path(__file__).resolve().parents[2]


def test_job_clock_phases_add_up_and_exclude_nested_time():
    clock = JobClock()
    with clock.phase("model_load"):
        time.sleep(0.02)
    with clock.phase("training"):
        time.sleep(0.02)
        with clock.exclude("checkpoints"):
            time.sleep(0.05)
    report = clock.report()
    timing = report["timing"]
    assert timing["checkpoints"] >= 0.05 and 0.02 <= timing["training"] < 0.05
    parts = sum(v for k, v in timing.items() if k != "total")
    assert parts == pytest.approx(timing["total"], abs=0.01)
    assert report["fixed_seconds"] == pytest.approx(timing["total"] - timing["training"], abs=0.002)
    with pytest.raises(ValueError, match="unknown phase"):
        with clock.phase("lunch"):
            pass


LEAN_CHECK = """
import importlib, sys
import deepspeed
from workflow_scripts.core import startup
ds_comm_torch = importlib.import_module("deepspeed.comm.torch")
startup.lean_deepspeed_startup()
import deepspeed.runtime.zero.muon.original_muon as muon
assert ds_comm_torch.build_shm_op is startup._no_shm_op and ds_comm_torch.__name__ == "deepspeed.comm.torch"
assert "torch._inductor.compile_fx" not in sys.modules, "the Muon import compiled its kernels' decorators"
assert muon.muon_update.__wrapped__.__name__ == "muon_update"       # deferred, same function underneath
print("lean ok")
"""

STOCK_CHECK = """
import importlib, os, deepspeed
from workflow_scripts.core import startup
ds_comm_torch = importlib.import_module("deepspeed.comm.torch")
ds_compiler = importlib.import_module("deepspeed.runtime.compiler")
original = ds_comm_torch.build_shm_op
assert callable(original) and callable(ds_compiler.compile)      # the names the lean start-up patches
os.environ[startup.STOCK_STARTUP_ENV] = "1"
startup.lean_deepspeed_startup()
assert ds_comm_torch.build_shm_op is original
print("stock ok")
"""


@pytest.mark.parametrize("script, expected", [(LEAN_CHECK, "lean ok"), (STOCK_CHECK, "stock ok")])
def test_lean_startup_patches_exactly_deepspeeds_unused_startup_work(script, expected):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DRO_REBEL_STOCK_STARTUP", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and expected in done.stdout, done.stderr[-3000:]


def test_jobs_started_together_compile_nothing_and_record_their_fixed_cost(tmp_path):
    inputs = tiny_models.build(tmp_path / "inputs", n_pairs=32)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "DRO_REBEL_STOCK_STARTUP")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    procs = []
    for k in range(3):
        cache = tmp_path / f"extensions-{k}"
        cache.mkdir()
        out = tmp_path / f"job-{k}"
        cmd = [sys.executable, "-m", "workflow_scripts.core.train.align", "--pairs", str(inputs["pairs"]),
               "--policy", str(inputs["policy"]), "--out", str(out), "--variant", "kl-rebel", "--radius", "0.5",
               "--eta", "1", "--seed", str(k), "--iterations", "2", "--global-batch", "16", "--micro-batch", "8",
               "--lr", "1e-3", "--max-length", "32"]
        procs.append((cache, out, subprocess.Popen(cmd, cwd=REPO, env={**env, "TORCH_EXTENSIONS_DIR": str(cache)},
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for cache, out, proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert not any(cache.iterdir()), f"a job built something into its extension cache: {list(cache.rglob('*'))}"
        assert "built successfully" not in err
        info = json.loads((out / "run_info.json").read_text())
        timing = info["timing"]
        assert set(timing) - {"other", "total"} <= set(PHASES)
        for phase in ("interpreter_and_imports", "distributed_setup", "model_load", "engine_init", "reference_pass",
                      "training", "final_save"):
            assert timing[phase] > 0, phase
        assert sum(v for k, v in timing.items() if k != "total") == pytest.approx(timing["total"], abs=0.01)
        assert info["fixed_seconds"] == pytest.approx(timing["total"] - timing["training"], abs=0.002)
