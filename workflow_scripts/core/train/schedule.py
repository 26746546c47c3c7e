"""The iteration structure of alignment (REBEL, Algorithm 1), torch-free so the config check can use it.

An iteration takes ``iteration_batch`` pairs and fixes the anchor for them; it makes
``updates_per_iteration`` passes over them in minibatches of ``global_batch`` pairs (pass 0 in
order, later passes reshuffled), each minibatch one optimizer step; a minibatch is split over
``world`` ranks and, on each rank, into micro-batches of ``micro_batch`` pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IterationPlan:
    """How an iteration's batch becomes optimizer steps, and a step's global batch becomes micro-steps."""

    iteration_batch: int
    global_batch: int
    micro_batch: int
    world: int
    updates: int
    seed: int

    @property
    def minibatches_per_pass(self) -> int:
        return self.iteration_batch // self.global_batch

    @property
    def steps_per_iteration(self) -> int:
        return self.updates * self.minibatches_per_pass

    def minibatches(self, t: int, update: int) -> list[np.ndarray]:
        """Positions in the iteration's batch of each minibatch of pass ``update`` (pass 0 in order)."""
        n = self.iteration_batch
        order = np.arange(n) if update == 0 else np.random.default_rng([self.seed, t, update, 11]).permutation(n)
        g = self.global_batch
        return [order[j * g:(j + 1) * g] for j in range(self.minibatches_per_pass)]

    def micro_batches(self, minibatch: np.ndarray, rank: int) -> list[np.ndarray]:
        """This rank's share of a minibatch, as consecutive micro-batches."""
        per_rank = self.global_batch // self.world
        share = minibatch[rank * per_rank:(rank + 1) * per_rank]
        return [share[m:m + self.micro_batch] for m in range(0, per_rank, self.micro_batch)]

    def first_pass_micro_batches(self, t: int, rank: int) -> list[np.ndarray]:
        return [mb for minibatch in self.minibatches(t, 0) for mb in self.micro_batches(minibatch, rank)]


def check_iteration_structure(anchor: str, iteration_batch: int, global_batch: int, updates: int) -> None:
    """An iterate anchor must be able to move away from itself within an iteration."""
    if iteration_batch % global_batch:
        raise ValueError(f"iteration batch {iteration_batch} is not a multiple of the global batch {global_batch}.")
    if updates < 1:
        raise ValueError(f"updates per iteration must be >= 1, got {updates}.")
    if anchor == "iterate" and updates * (iteration_batch // global_batch) < 2:
        raise ValueError(
            f"anchor 'iterate' with one optimizer step per iteration (iteration batch {iteration_batch}, global batch "
            f"{global_batch}, {updates} update(s)) keeps the policy equal to its anchor at every step, so every REBEL "
            "loss is the constant (r1 - r2)^2; raise updates_per_iteration (REBEL uses several passes) or the "
            "iteration batch.")
