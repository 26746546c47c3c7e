"""The lifecycle of a supervised training job (SFT, the reward models), written once.

Every supervised trainer goes through the same steps: start (logging, process group, batch split,
precision, seeds, the phase clock), build the DeepSpeed engine and its checkpointer, run the shared
loop (which resumes from the newest intact checkpoint), then save the model, ``metrics.json`` and
``run_info.json`` and remove the checkpoints. :class:`SupervisedJob` owns those steps; a trainer's
``main()`` supplies only what is its own: its data, its model, its loss and its metrics.

    job = SupervisedJob.start(args, logger, name="sft")
    with job.phase("tokenizer_and_data"):
        ...                                    # the trainer's data
    with job.phase("model_load"):
        model = ...                            # the trainer's model
    job.build_engine(model, n_train)
    history = job.train(n_train, make_batch, loss_fn, desc="sft", scalars="sft")
    with job.phase("evaluation"):
        metrics = ...                          # the trainer's metrics, e.g. through job.evaluate
    job.finish(tokenizer, metrics, title="SFT", summary="validation perplexity 12.34")
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.runinfo import seed_everything, write_run_info
from workflow_scripts.core.train.checkpoint import Checkpointer, fingerprint_of
from workflow_scripts.core.train.engine import (BatchSplit, init_distributed, make_engine, resolve_precision,
                                               run_info_fields, save_model, split_batch)
from workflow_scripts.core.train.scalars import ScalarLog
from workflow_scripts.core.train.supervised import evaluate_batches, steps_per_epoch, train_supervised
from workflow_scripts.core.train.timing import JobClock


def model_spec(text: str):
    """A model spec on the command line: JSON object -> config mapping, anything else -> hub id / path."""
    text = text.strip()
    return json.loads(text) if text.startswith("{") else text


def supervised_parser(description: str, *, data: str, data_help: str, metrics: str, epochs: int,
                      max_length: int) -> argparse.ArgumentParser:
    """The command line every supervised job shares: its data (flag ``data``), tokenizer and model in; the model,
    the metrics JSON (``metrics`` says what it holds) and run_info.json out; how it trains (batch, schedule,
    checkpoints, numerics, with the trainer's default ``epochs`` and ``max_length``). A trainer adds its own."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(data, required=True, help=data_help)
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (from the tokenizer rule)")
    p.add_argument("--model", required=True, help="hub id / directory, or a JSON object of GPT2Config arguments")
    p.add_argument("--out", required=True, help="output directory of the trained model (save_pretrained)")
    p.add_argument("--metrics", required=True, help=metrics)
    p.add_argument("--run-info", required=True, help="run_info.json path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-name", default="", help="free-text label recorded in run_info.json")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--global-batch", type=int, default=64)
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--max-length", type=int, default=max_length)
    p.add_argument("--checkpoint-dir", help="resumable checkpoints (default: <out>.checkpoints); removed on success")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save every N steps (0: only on SIGTERM)")
    p.add_argument("--checkpoint-keep", type=int, default=2)
    p.add_argument("--zero-stage", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--gradient-checkpointing", default="false", choices=("true", "false"),
                   help="recompute activations in the backward (long sequences at the paper's model sizes)")
    return p


@dataclass
class SupervisedJob:
    """One supervised training job. ``args`` comes from a :func:`supervised_parser`; ``name`` is the job's name
    in run_info.json; ``log`` is the trainer's logger (its closing line names it)."""

    args: object
    log: logging.Logger
    name: str
    rank: int
    world: int
    device: torch.device
    split: BatchSplit
    precision: str
    started: float
    clock: JobClock
    engine: object = None
    ds_config: dict | None = None
    checkpointer: Checkpointer | None = None
    total_steps: int = 0

    @classmethod
    def start(cls, args, log: logging.Logger, *, name: str) -> "SupervisedJob":
        """Logging, the process group, the global batch split over it, the precision, every RNG seeded."""
        setup_logging()
        clock = JobClock()
        started = time.time()
        with clock.phase("distributed_setup"):
            rank, world, device = init_distributed()
        split = split_batch(args.global_batch, args.micro_batch, world)
        precision = resolve_precision(args.precision)
        with clock.phase("seeding"):
            seed_everything(args.seed)
        return cls(args, log, name, rank, world, device, split, precision, started, clock)

    def phase(self, name: str):
        """A timed phase of the job (:data:`~.timing.PHASES`)."""
        return self.clock.phase(name)

    def build_engine(self, model, n_examples: int):
        """The DeepSpeed engine for ``epochs`` passes over ``n_examples``, and its checkpointer.
        Returns the engine; ``total_steps`` is the number of optimizer steps the job will make."""
        args = self.args
        self.total_steps = steps_per_epoch(n_examples, self.split) * args.epochs
        with self.phase("engine_init"):
            self.engine, self.ds_config = make_engine(
                model, self.split, lr=args.lr, total_steps=self.total_steps, warmup_ratio=args.warmup_ratio,
                weight_decay=args.weight_decay, zero_stage=args.zero_stage, precision=self.precision,
                gradient_checkpointing=args.gradient_checkpointing == "true")
        self.checkpointer = self._checkpointer()
        return self.engine

    def _checkpointer(self) -> Checkpointer:
        """Checkpoints beside the model directory (never inside a declared output); the fingerprint is every
        argument but the checkpoint options, plus the world size, so only the same job resumes from them."""
        args = self.args
        directory = args.checkpoint_dir or f"{args.out.rstrip('/')}.checkpoints"
        job = {k: v for k, v in vars(args).items() if not k.startswith("checkpoint_")}
        return Checkpointer(self.engine, directory, every=args.checkpoint_every, keep=args.checkpoint_keep,
                            fingerprint=fingerprint_of({**job, "world_size": self.world}), rank=self.rank)

    def train(self, n_examples: int, make_batch: Callable[[np.ndarray], dict], loss_fn: Callable, *, desc: str,
              scalars: str, evaluate: Callable[[], dict] | None = None, eval_every: int = 0) -> list[dict]:
        """The shared loop (:func:`~.supervised.train_supervised`), resumed from the newest intact checkpoint;
        every step's scalars go to TensorBoard as ``<scalars>/<column>`` in ``tensorboard/`` next to
        ``metrics.json``. Returns the history."""
        args = self.args
        log = ScalarLog(Path(args.metrics).parent / "tensorboard", self.rank, prefix=scalars)
        with self.phase("training"):
            history = train_supervised(self.engine, n_examples, make_batch, loss_fn, self.split, args.epochs,
                                       args.seed, self.rank, self.device, desc=desc, checkpointer=self.checkpointer,
                                       evaluate=evaluate, eval_every=eval_every, clock=self.clock, scalars=log)
            log.close()
        return history

    def evaluate(self, n_examples: int, make_batch: Callable[[np.ndarray], dict], fn: Callable,
                 batch_size: int) -> list:
        """``fn(model, batch)`` over a held-out set, in order, on the trained module."""
        return evaluate_batches(self.engine.module, n_examples, make_batch, fn, batch_size, self.device)

    def elapsed(self) -> float:
        return time.time() - self.started

    def finish(self, tokenizer, metrics: dict, *, title: str, summary: str) -> None:
        """Save the model and ``metrics.json``, record ``run_info.json``, log ``<title> done in ..s: <summary>``,
        then remove the checkpoints (the outputs are complete)."""
        args = self.args
        with self.phase("final_save"):
            save_model(self.engine, tokenizer, args.out, self.rank)
            if self.rank == 0:
                write_json_atomic(args.metrics, metrics)
        if self.rank == 0:
            write_run_info(args.run_info, job=self.name, seed=args.seed,
                           **run_info_fields(self.split, self.ds_config, self.precision),
                           deepspeed_config=self.ds_config, args=vars(args),
                           wall_seconds=round(self.elapsed(), 2), **self.clock.report())
            self.log.info("%s done in %.1fs: %s", title, self.elapsed(), summary)
        self.checkpointer.finish()
