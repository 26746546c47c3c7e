"""Shift evaluation of one trained policy (SPEC 5.1).

Generates completions on held-out prompts (the first tokens of the validation and the test split's
texts), scores them with the reward model, and reports the mean r*(alpha) for every alpha of the
grid and both mixtures: one CSV per split, one row per (mixture, alpha). Validation rows select
radii and base hyperparameters, test rows are reported. Both splits in one job: the policy and the
reward model load once.

    python -m workflow_scripts.emotion.evaluate --policy align/kl-rebel/0.5/eta1/0/policy --reward-model rm/ \
        --data DIR --variant kl-rebel --radius 0.5 --hp eta1 --seed 0 \
        --out validation=eval/validation/run.csv --out test=eval/test/run.csv --completions-out run.parquet
"""
from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from workflow_scripts.core.cli import run
from workflow_scripts.core.evaluate import evaluate_policy
from workflow_scripts.core.io import split_paths
from workflow_scripts.core.mixtures import MIXTURES, mix
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import sampler_from_args
from workflow_scripts.emotion.data import load_emotion_split
from workflow_scripts.emotion.pairs import add_continuation_args, make_prompts
from workflow_scripts.emotion.reward import EmotionScorer

logger = logging.getLogger("evaluate")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True)
    p.add_argument("--reward-model", required=True)
    p.add_argument("--data", required=True, help="emotion dataset; prompts come from the splits of --out")
    p.add_argument("--variant", required=True, help="label written into the CSV (sft for the baseline)")
    p.add_argument("--radius", default="0", help="label written into the CSV (canonical spelling)")
    p.add_argument("--hp", default="sft", help="label written into the CSV: the base hyperparameter (eta1, beta0.1)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", action="append", required=True, metavar="SPLIT=CSV",
                   help="per split (validation, test): CSV of the mean r*(alpha) per mixture and alpha")
    p.add_argument("--completions-out", help="parquet of the scored completions (one row per sample, every split)")
    p.add_argument("--n-prompts", type=int, default=0, help="0 = all")
    p.add_argument("--samples-per-prompt", type=int, default=1)
    add_continuation_args(p)
    p.add_argument("--objectives", nargs=2, default=("anger", "fear"), metavar=("R1", "R2"))
    p.add_argument("--alphas", type=float, nargs="+", default=[round(0.1 * i, 1) for i in range(11)])
    p.add_argument("--mixtures", nargs="+", default=list(MIXTURES), choices=MIXTURES)
    return p.parse_args(argv)


def mixture_table(r1: np.ndarray, r2: np.ndarray, alphas, mixtures) -> pd.DataFrame:
    """Mean r*(alpha) over completions for every (mixture, alpha)."""
    return pd.DataFrame([{"mixture": kind, "alpha": float(alpha), "reward": float(np.mean(mix(r1, r2, alpha, kind)))}
                         for kind in mixtures for alpha in alphas])


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    outputs = split_paths(a.out)
    decode = lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True)  # noqa: E731
    n = a.samples_per_prompt

    def sample(sampler, split: str, prompts: list[list[int]]) -> pd.DataFrame:
        """``samples_per_prompt`` completions per prompt, prompt-major, decoded for the reward model."""
        # The sampling seed depends on the run seed only: every policy sees the same prompts and seeds.
        completions = sampler.sample(prompts, n=n, temperature=1.0, top_k=a.top_k, top_p=a.top_p,
                                     max_new_tokens=a.max_new_tokens, seed=a.seed + 7919, desc=f"{split} samples")
        return pd.DataFrame({"split": split, "prompt_idx": np.repeat(np.arange(len(prompts)), n),
                             "sample": np.tile(np.arange(n), len(prompts)),
                             "prompt": [decode(p) for p in prompts for _ in range(n)],
                             "completion": [decode(c) for c in completions]})

    def aggregate(split: str, scored: pd.DataFrame) -> pd.DataFrame:
        r1, r2 = (scored[o].to_numpy() for o in a.objectives)
        logger.info("%s radius %s %s seed %d, %s split: %d completions; mean %s %.4f, %s %.4f", a.variant, a.radius,
                    a.hp, a.seed, split, len(scored), a.objectives[0], r1.mean(), a.objectives[1], r2.mean())
        return mixture_table(r1, r2, a.alphas, a.mixtures)

    evaluate_policy(
        {split: make_prompts(tokenizer, load_emotion_split(a.data, split)["text"], a.prompt_tokens, a.n_prompts)
         for split in outputs}, outputs,
        open_sampler=lambda: sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size,
                                               stop_ids=[tokenizer.eos_token_id]),
        sample=sample, open_scorer=lambda: EmotionScorer(a.reward_model, device), aggregate=aggregate,
        labels={"variant": a.variant, "radius": a.radius, "hp": a.hp, "seed": a.seed},
        completions_out=a.completions_out, response="completion")


if __name__ == "__main__":
    run(main)
