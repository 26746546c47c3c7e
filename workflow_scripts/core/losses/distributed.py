"""The global batch under ``torch.distributed``.

Robust weights depend on *all* losses of the batch, so every rank all-gathers the detached
per-sample losses, computes the same global weights, and backpropagates only its own
slice. Gradients are then averaged across ranks by the data-parallel engine; the
surrogates of :mod:`.objective` are scaled by the world size to undo that average, so the
result equals one process holding the whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class GlobalBatch:
    """This rank's view of the global batch."""

    values: torch.Tensor   # detached, concatenated over ranks in rank order
    start: int             # this rank's slice is values[start:stop]
    stop: int
    world_size: int

    @property
    def size(self) -> int:
        return self.values.numel()


def is_distributed(group=None) -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def gather_detached(local: torch.Tensor, group=None) -> GlobalBatch:
    """All-gather a detached 1-D tensor whose length may differ between ranks."""
    local = local.detach().reshape(-1)
    if not is_distributed(group):
        return GlobalBatch(local, 0, local.numel(), 1)
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    size = torch.tensor([local.numel()], device=local.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s.item()) for s in sizes]
    padded = torch.zeros(max(sizes), dtype=local.dtype, device=local.device)
    padded[: local.numel()] = local
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded, group=group)
    values = torch.cat([chunk[:n] for chunk, n in zip(chunks, sizes)])
    start = sum(sizes[:rank])
    return GlobalBatch(values, start, start + sizes[rank], world)


def all_reduce_sum(x: torch.Tensor, group=None) -> torch.Tensor:
    """Sum of a detached tensor over ranks (identity when not distributed)."""
    x = x.detach().clone()
    if is_distributed(group):
        dist.all_reduce(x, op=dist.ReduceOp.SUM, group=group)
    return x
