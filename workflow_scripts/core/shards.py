"""Resumable, shardable row jobs (ArmoRM completions and scoring).

The items (prompts, completions) are cut into fixed shards of ``shard_size``. Each shard's rows
are written atomically to ``<out stem>.shards/shard-00003.parquet``; a rerun after a crash or a
kill skips the shards already there, and only then are the shards merged, in order, into the
output file (and the shard directory removed). The shard directory also holds a
``manifest.json`` describing the inputs and settings; shards written under another manifest are
discarded, never mixed in.

Under a launcher with several processes (``RANK`` / ``WORLD_SIZE``, e.g. one per GPU) process r
takes the shards i with ``i % world == r``; rank 0 merges after a barrier.

The shard directory is deliberately *not* a declared Snakemake output: Snakemake removes the
outputs of a failed job, which would throw the finished shards away.
"""
from __future__ import annotations

import atexit
import datetime
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd

from workflow_scripts.core.io import write_frame_atomic, write_json_atomic

logger = logging.getLogger("shards")

#: Exit status of a run stopped on purpose by ``stop_after`` (the resumption tests' "kill").
STOPPED_EXIT = 75


class ShardsStopped(SystemExit):
    def __init__(self, done: int):
        super().__init__(STOPPED_EXIT)
        self.done = done


def shard_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name.split('.')[0]}.shards")


def shard_path(directory: Path, index: int) -> Path:
    return directory / f"shard-{index:05d}.parquet"


def leave_process_group() -> None:
    """Destroy the process group while the interpreter is still whole (registered with atexit).

    A group left to the interpreter's teardown is destroyed during C++ static destruction, where a thread
    still joinable calls std::terminate: a rank aborted with "terminate called without an active exception"
    (SIGABRT) after its outputs were written, and torchrun reported the whole job failed (the fidelity
    tests' two-process gloo driver on 2026-12-06, once in 10 runs of that module). PyTorch asks for
    ``destroy_process_group`` before a program exits."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception as error:                          # exiting anyway; say why the teardown failed
            logger.warning("destroying the process group at exit failed: %s", error)


def distributed_context() -> tuple[int, int, Callable[[], None]]:
    """``(rank, world, barrier)`` from the launcher's environment; one process: no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world <= 1:
        return 0, 1, lambda: None
    import torch.distributed as dist

    if not dist.is_initialized():
        # gloo only synchronises the file hand-over; long timeout: ranks may finish hours apart.
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=48))
        atexit.register(leave_process_group)
    return rank, world, dist.barrier


def run_sharded(out: str | os.PathLike, n_items: int, shard_size: int, work: Callable[[int, int, int], pd.DataFrame],
                manifest: dict, *, stop_after: int | None = None) -> pd.DataFrame | None:
    """Run ``work(shard_index, lo, hi)`` for every missing shard, then merge into ``out`` (rank 0).

    Returns the merged frame on rank 0, ``None`` on other ranks. ``stop_after=k`` exits with
    :data:`STOPPED_EXIT` after this process wrote k shards (a test hook that simulates a kill).
    """
    if shard_size <= 0:
        raise ValueError(f"shard size must be positive, got {shard_size}.")
    rank, world, barrier = distributed_context()
    directory = shard_dir(out)
    n_shards = max(1, -(-n_items // shard_size))
    manifest = {**manifest, "n_items": n_items, "shard_size": shard_size}
    if rank == 0:
        manifest_path = directory / "manifest.json"
        if manifest_path.is_file() and json.loads(manifest_path.read_text()) != json.loads(json.dumps(manifest, default=str)):
            logger.warning("%s: shards from other inputs or settings; starting over", directory)
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(".*.tmp"):           # half-written files of a killed run
            stale.unlink()
        write_json_atomic(manifest_path, manifest)
    barrier()

    written = skipped = 0
    for index in range(rank, n_shards, world):
        path = shard_path(directory, index)
        if path.is_file():
            skipped += 1
            continue
        lo, hi = index * shard_size, min(n_items, (index + 1) * shard_size)
        frame = work(index, lo, hi)
        write_frame_atomic(frame, path)
        written += 1
        logger.info("shard %d/%d (items %d-%d): %d rows -> %s", index + 1, n_shards, lo, hi - 1, len(frame), path)
        if stop_after is not None and written >= stop_after:
            logger.warning("stopping after %d shard(s) on request (--stop-after-shards)", written)
            raise ShardsStopped(written)
    logger.info("rank %d: %d shard(s) written, %d already there", rank, written, skipped)
    barrier()
    if rank != 0:
        return None
    merged = pd.concat([pd.read_parquet(shard_path(directory, i)) for i in range(n_shards)], ignore_index=True)
    write_frame_atomic(merged, out)
    shutil.rmtree(directory)
    logger.info("merged %d shards (%d rows) -> %s", n_shards, len(merged), out)
    return merged
