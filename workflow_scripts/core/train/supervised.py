"""The supervised loop shared by SFT and reward-model training (nanoGPT-sized on purpose)."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from workflow_scripts.core.train.checkpoint import rng_state, set_rng_state
from workflow_scripts.core.train.engine import BatchSplit
from workflow_scripts.core.train.timing import NO_CLOCK

logger = logging.getLogger(__name__)


def steps_per_epoch(n_examples: int, split: BatchSplit) -> int:
    steps = n_examples // split.global_batch
    if steps == 0:
        raise ValueError(f"{n_examples} training examples is fewer than one global batch of {split.global_batch}.")
    return steps


def train_supervised(engine, n_examples: int, make_batch: Callable[[np.ndarray], dict], loss_fn: Callable,
                     split: BatchSplit, epochs: int, seed: int, rank: int, device, desc: str,
                     checkpointer=None, evaluate: Callable[[], dict] | None = None, eval_every: int = 0,
                     clock=NO_CLOCK, scalars=None) -> list[dict]:
    """Seeded shuffles per epoch; each global batch is sliced over ranks, then micro-batches.

    ``make_batch(indices)`` returns tensors; ``loss_fn(engine, batch)`` returns a scalar loss.
    Returns one history row per optimizer step (rank 0's view of the loss). With a
    :class:`~.checkpoint.Checkpointer`, resumes from the newest intact checkpoint: the data
    order is a function of (seed, epoch), so the step count is the whole data position.
    ``evaluate()`` (every ``eval_every`` steps and at the end) adds its numbers to that step's
    row: the learning curve on held-out data. ``clock`` (a :class:`~.timing.JobClock`) counts the
    checkpoints and the learning-curve evaluations apart from the loop; ``scalars`` (a
    :class:`~.scalars.ScalarLog`) receives every row.
    """
    history = []
    per_epoch = steps_per_epoch(n_examples, split)
    per_rank = split.micro_batch * split.grad_accum
    total = per_epoch * epochs
    with clock.exclude("checkpoints"):
        resumed = checkpointer.resume() if checkpointer else None
    if resumed is not None:
        history = list(resumed["history"])
        set_rng_state(resumed["rng"])
        if scalars is not None:
            scalars.rewrite(history)
        logger.info("%s resuming at step %d/%d", desc, len(history) + 1, total)
    bar = tqdm(total=total, initial=len(history), desc=desc, disable=rank != 0, mininterval=5)
    engine.train()
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(n_examples)
        for step in range(per_epoch):
            if epoch * per_epoch + step < len(history):
                continue          # done before the restart
            batch_idx = order[step * split.global_batch:(step + 1) * split.global_batch]
            mine = batch_idx[rank * per_rank:(rank + 1) * per_rank]
            losses = []
            for m in range(split.grad_accum):
                micro = make_batch(mine[m * split.micro_batch:(m + 1) * split.micro_batch])
                micro = {k: v.to(device) for k, v in micro.items()}
                loss = loss_fn(engine, micro)
                engine.backward(loss)
                engine.step()
                losses.append(float(loss))
            row = {"epoch": epoch, "step": len(history), "loss": float(np.mean(losses)), "lr": engine.get_lr()[0]}
            if evaluate is not None and eval_every > 0 and ((len(history) + 1) % eval_every == 0
                                                             or len(history) + 1 == total):
                with clock.exclude("evaluation"):
                    row.update(evaluate())
            history.append(row)
            if scalars is not None:
                scalars.add(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
            if rank == 0 and (len(history) % max(1, total // 10) == 0 or len(history) == total):
                logger.info("%s step %d/%d epoch %d loss %.4f lr %.3g", desc, len(history), total, epoch, row["loss"], row["lr"])
            if checkpointer:
                with clock.exclude("checkpoints"):
                    checkpointer.step_done(len(history), lambda: {"history": history, "rng": rng_state()})
    bar.close()
    return history


@torch.no_grad()
def evaluate_batches(model, n_examples: int, make_batch, fn, batch_size: int, device) -> list:
    """Apply ``fn(model, batch)`` over an eval set in order (rank-local, no shuffling)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, n_examples, batch_size):
        batch = make_batch(np.arange(start, min(n_examples, start + batch_size)))
        out.append(fn(model, {k: v.to(device) for k, v in batch.items()}))
    model.train(was_training)
    return out
