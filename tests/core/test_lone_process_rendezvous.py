"""A training CLI started without a launcher (one process, no RANK) must not race for a TCP port: two such
jobs started together on one node once both bound the same "free" port and one died with EADDRINUSE (the SLURM
test, CI). Several lone processes started at once all initialise, and leave no rendezvous files behind.
Each leaves its process group at exit (atexit), not in the interpreter's C++ teardown, where a gloo thread aborted
a two-process job after its outputs were written ("terminate called without an active exception")."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import torch, torch.distributed as dist
from workflow_scripts.core.train.engine import init_distributed
rank, world, device = init_distributed()
t = torch.ones(1)
dist.all_reduce(t)
assert (rank, world, t.item()) == (0, 1, 1.0), (rank, world, t.item())
import atexit
atexit._run_exitfuncs()                 # what the interpreter runs first at exit
assert not dist.is_initialized(), "the process group outlives the job's exit handlers"
print("ok")
"""


def test_lone_processes_started_together_all_initialise(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(TMPDIR=str(tmp_path), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and out.strip().endswith("ok"), err[-2000:]
    assert not list(tmp_path.glob("dist-store-*")), "rendezvous directories left behind"
