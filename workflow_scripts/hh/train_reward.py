"""A pairwise Bradley-Terry reward model for one HH objective, trained on that subset's preference pairs
with the shared supervised loop (the alternative to the public Ray2333 models: ``hh.reward_models.source: train``).

The loss is ``-log sigmoid(r(chosen) - r(rejected))`` with ``r`` the single output of a sequence
classifier over the (prompt, response) text pair, the same input :class:`~.reward.HHRewardScorer`
scores. Metrics: pairwise accuracy (``r(chosen) > r(rejected)``) on the held-out validation pairs.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.hh.train_reward --pairs data/preferences/helpful-base \\
        --tokenizer tokenizer/ --model '{"n_layer": 2, ...}' --out reward_models/helpful --metrics m.json --run-info r.json
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from workflow_scripts.core.cli import run
from workflow_scripts.core.models import build_sequence_classifier, load_tokenizer
from workflow_scripts.core.train.job import SupervisedJob, model_spec, supervised_parser

logger = logging.getLogger("hh_reward")


def parse_args(argv=None):
    return supervised_parser(__doc__, data="--pairs", data_help="directory with train / validation parquet "
                             "(prompt, chosen, rejected)", metrics="metrics JSON (validation pairwise accuracy and "
                             "mean margin)", epochs=1, max_length=256).parse_args(argv)


def pairwise_loss(model, batch) -> torch.Tensor:
    """Bradley-Terry: rows [chosen_0..chosen_B-1, rejected_0..]; ``-log sigmoid(r_c - r_r)`` averaged."""
    rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].float()
    n = rewards.shape[0] // 2
    return -F.logsigmoid(rewards[:n] - rewards[n:]).mean()


def main(argv=None):
    args = parse_args(argv)
    job = SupervisedJob.start(args, logger, name="hh_reward_model")
    with job.phase("tokenizer_and_data"):
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

    with job.phase("model_load"):
        model = build_sequence_classifier(model_spec(args.model), tokenizer, 1, problem_type="regression",
                                          seed=args.seed)
    job.build_engine(model, len(train))
    history = job.train(len(train), lambda idx: make_batch(train, idx), pairwise_loss, desc="reward model",
                        scalars="reward_model")

    def margins(m, b):
        rewards = m(**b).logits[:, 0].float()
        n = rewards.shape[0] // 2
        return (rewards[:n] - rewards[n:]).cpu().numpy()

    with job.phase("evaluation"):
        margin = np.concatenate(job.evaluate(len(valid), lambda idx: make_batch(valid, idx), margins, 32))
    metrics = {"train_pairs": len(train), "validation_pairs": len(valid), "steps": len(history),
               "train_loss_final": history[-1]["loss"], "validation_pairwise_accuracy": float((margin > 0).mean()),
               "validation_mean_margin": float(margin.mean())}
    job.finish(tokenizer, metrics, title="reward model",
               summary=f"validation pairwise accuracy {metrics['validation_pairwise_accuracy']:.3f}")


if __name__ == "__main__":
    run(main)
