"""GPU canary: what a training job sees, recorded before the alignment grid spends hours.

Started by the same launcher line as the training rules (``torchrun --standalone
--nproc_per_node N``) on the alignment rule's resources. Every rank joins the process group the
way the trainers do (DeepSpeed's ``init_distributed``: NCCL on GPUs, gloo on CPU), checks one
all-reduce, and rank 0 writes one JSON file:

- the host, the SLURM job (id, partition, GPUs granted on the node, CPUs) and ``CUDA_VISIBLE_DEVICES``;
- ``torch.cuda.device_count()``, the device names, the backend and the world size each rank sees;
- ``checks``: named booleans, and ``ok``.

It fails (exit 1, the JSON still written next to the target as ``*.failed.json``) when the
world size differs from the GPUs the job asked for or SLURM granted, when the all-reduce is
wrong, or when the node has NVIDIA devices that torch cannot see (a CPU-only torch build or a
driver mismatch) -- the usual ways a cluster job silently trains on the wrong hardware. Without
NVIDIA devices (CPU runs, the test cluster's fake GPUs) it records ``backend: gloo`` and passes.

    torchrun --standalone --nproc_per_node 2 -m workflow_scripts.tools.canary --out gpu_job.json --expected-gpus 2
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import socket
import sys
from pathlib import Path

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.cli import run

logger = logging.getLogger("canary")

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "SLURM_JOB_NODELIST", "SLURM_GPUS_ON_NODE", "SLURM_JOB_GPUS",
              "SLURM_STEP_GPUS", "SLURM_CPUS_ON_NODE", "SLURM_CPUS_PER_GPU", "SLURM_MEM_PER_NODE")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--expected-gpus", type=int, default=0,
                   help="GPUs the job asked for (the rule's gpu resource); 0 = a CPU job")
    return p.parse_args(argv)


def granted_gpus() -> int | None:
    """GPUs SLURM granted on this node (None outside a SLURM GPU step)."""
    value = os.environ.get("SLURM_GPUS_ON_NODE", "")
    return int(value) if value.isdigit() else None


def rank_view() -> dict:
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    view = {
        "rank": dist.get_rank(), "local_rank": int(os.environ.get("LOCAL_RANK", 0)),
        "world_size": dist.get_world_size(), "backend": dist.get_backend(),
        "hostname": socket.gethostname(), "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "cuda_available": cuda, "cuda_device_count": torch.cuda.device_count() if cuda else 0,
    }
    if cuda:
        view["device"] = torch.cuda.current_device()
        view["device_name"] = torch.cuda.get_device_name(view["device"])
    return view


def evaluate_checks(report: dict) -> dict[str, bool]:
    """Named booleans over what rank 0 gathered; all must hold for the canary to pass."""
    world = report["world_size"]
    ranks = report["ranks"]
    checks = {
        "every_rank_reported": sorted(r["rank"] for r in ranks) == list(range(world)),
        "ranks_agree_on_world_size": all(r["world_size"] == world for r in ranks),
        "all_reduce_sums_ranks": report["all_reduce"] == world * (world + 1) // 2,
    }
    expected = report["expected_gpus"]
    if expected > 0:
        checks["world_size_equals_requested_gpus"] = world == expected
        if report["slurm"].get("SLURM_GPUS_ON_NODE"):
            checks["world_size_equals_granted_gpus"] = world == report["granted_gpus"]
    if report["nvidia_device_files"]:
        checks["torch_sees_the_nodes_gpus"] = all(r["cuda_device_count"] > 0 for r in ranks)
    if any(r["cuda_available"] for r in ranks):
        checks["one_device_per_local_rank"] = all(r["cuda_device_count"] >= report["local_world_size"] for r in ranks)
    return checks


def main(argv=None) -> int:
    setup_logging()
    args = parse_args(argv)
    import torch
    import torch.distributed as dist

    from workflow_scripts.core.train.engine import init_distributed

    rank, world, device = init_distributed()
    view = rank_view()
    gathered = [None] * world
    dist.all_gather_object(gathered, view)
    total = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(total)
    ok = True
    if rank == 0:
        report = {
            "hostname": socket.gethostname(),
            "slurm": {k: os.environ[k] for k in SLURM_VARS if k in os.environ},
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "nvidia_device_files": sorted(glob.glob("/dev/nvidia[0-9]*")),
            "expected_gpus": args.expected_gpus,
            "granted_gpus": granted_gpus(),
            "world_size": world,
            "local_world_size": int(os.environ.get("LOCAL_WORLD_SIZE", world)),
            "backend": dist.get_backend(),
            "cuda_device_count": view["cuda_device_count"],
            "all_reduce": int(total.item()),
            "ranks": sorted(gathered, key=lambda r: r["rank"]),
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "cuda": torch.version.cuda or "none"},
        }
        report["checks"] = evaluate_checks(report)
        ok = report["ok"] = all(report["checks"].values())
        out = Path(args.out)
        if ok:
            write_json_atomic(out, report)
            logger.info("canary ok: world %d, backend %s, host %s, CUDA_VISIBLE_DEVICES=%r, SLURM job %s",
                        world, report["backend"], report["hostname"], report["cuda_visible_devices"],
                        report["slurm"].get("SLURM_JOB_ID", "-"))
        else:
            failed = out.with_name(out.stem + ".failed.json")
            write_json_atomic(failed, report)
            logger.error("canary FAILED checks %s; what the job saw: %s",
                         [k for k, v in report["checks"].items() if not v], failed)
    flag = torch.tensor([1.0 if ok else 0.0], device=device)
    dist.broadcast(flag, src=0)
    dist.barrier()
    dist.destroy_process_group()
    return 0 if flag.item() == 1.0 else 1


if __name__ == "__main__":
    run(main)
