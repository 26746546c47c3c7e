"""A pairwise Bradley-Terry reward model for one HH objective, trained on that subset's preference pairs
with the shared supervised loop (the alternative to the public Ray2333 models: ``hh.reward_models.source: train``).

The loss is ``-log sigmoid(r(chosen) - r(rejected))`` with ``r`` the single output of a sequence
classifier over the (prompt, response) text pair, the same input :class:`~.reward.HHRewardScorer`
scores. Metrics: pairwise accuracy (``r(chosen) > r(rejected)``) on the held-out validation pairs.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.hh.train_reward --pairs data/preferences/helpful-base \\
        --tokenizer tokenizer/ --model '{"n_layer": 2, ...}' --out reward_models/helpful --metrics m.json --run-info r.json
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.models import build_sequence_classifier, load_tokenizer
from workflow_scripts.core.runinfo import write_run_info
from workflow_scripts.core.train.engine import (add_training_args, make_engine, run_info_fields, save_model,
                                               start_training_job)
from workflow_scripts.core.train.sft import make_checkpointer, model_spec
from workflow_scripts.core.train.scalars import ScalarLog
from workflow_scripts.core.train.supervised import evaluate_batches, steps_per_epoch, train_supervised
from workflow_scripts.core.cli import run

logger = logging.getLogger("hh_reward")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", required=True, help="directory with train / validation parquet (prompt, chosen, rejected)")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--model", required=True, help="hub id / directory, or a JSON object of GPT2Config arguments")
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", required=True)
    add_training_args(p, epochs=1, max_length=256)
    return p.parse_args(argv)


def pairwise_loss(model, batch) -> torch.Tensor:
    """Bradley-Terry: rows [chosen_0..chosen_B-1, rejected_0..]; ``-log sigmoid(r_c - r_r)`` averaged."""
    rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].float()
    n = rewards.shape[0] // 2
    return -F.logsigmoid(rewards[:n] - rewards[n:]).mean()


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    job = start_training_job(args)
    rank, world, device, split, precision, started = (job.rank, job.world, job.device, job.split, job.precision,
                                                      job.started)
    clock = job.clock
    with clock.phase("tokenizer_and_data"):
        tokenizer = load_tokenizer(args.tokenizer)
        tokenizer.padding_side = "right"
        train = pd.read_parquet(Path(args.pairs) / "train.parquet")
        valid = pd.read_parquet(Path(args.pairs) / "validation.parquet")

    def make_batch(frame, idx):
        rows = frame.iloc[np.asarray(idx)]
        prompts = list(rows["prompt"]) * 2
        enc = tokenizer(prompts, list(rows["chosen"]) + list(rows["rejected"]), return_tensors="pt", padding=True,
                        truncation=True, max_length=args.max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    with clock.phase("model_load"):
        model = build_sequence_classifier(model_spec(args.model), tokenizer, 1, problem_type="regression",
                                          seed=args.seed)
    total = steps_per_epoch(len(train), split) * args.epochs
    with clock.phase("engine_init"):
        engine, ds_config = make_engine(model, split, lr=args.lr, total_steps=total, warmup_ratio=args.warmup_ratio,
                                        weight_decay=args.weight_decay, zero_stage=args.zero_stage,
                                        precision=precision,
                                        gradient_checkpointing=args.gradient_checkpointing == "true")
    checkpointer = make_checkpointer(engine, args, world, rank)
    scalars = ScalarLog(Path(args.metrics).parent / "tensorboard", rank, prefix="reward_model")
    with clock.phase("training"):
        history = train_supervised(engine, len(train), lambda idx: make_batch(train, idx),
                                   lambda eng, b: pairwise_loss(eng, b), split, args.epochs, args.seed, rank, device,
                                   desc="reward model", checkpointer=checkpointer, clock=clock, scalars=scalars)
        scalars.close()

    def margins(m, b):
        rewards = m(**b).logits[:, 0].float()
        n = rewards.shape[0] // 2
        return (rewards[:n] - rewards[n:]).cpu().numpy()

    with clock.phase("evaluation"):
        margin = np.concatenate(evaluate_batches(engine.module, len(valid), lambda idx: make_batch(valid, idx),
                                                 margins, 32, device))
    metrics = {"train_pairs": len(train), "validation_pairs": len(valid), "steps": len(history),
               "train_loss_final": history[-1]["loss"], "validation_pairwise_accuracy": float((margin > 0).mean()),
               "validation_mean_margin": float(margin.mean())}
    with clock.phase("final_save"):
        save_model(engine, tokenizer, args.out, rank)
        if rank == 0:
            write_json_atomic(args.metrics, metrics)
    if rank == 0:
        write_run_info(args.run_info, job="hh_reward_model", seed=args.seed, **run_info_fields(split, ds_config, precision),
                       deepspeed_config=ds_config, args=vars(args), wall_seconds=round(time.time() - started, 2),
                       **clock.report())
        logger.info("reward model done in %.1fs: validation pairwise accuracy %.3f", time.time() - started,
                    metrics["validation_pairwise_accuracy"])
    checkpointer.finish()


if __name__ == "__main__":
    run(main)
