"""Evaluation of one policy in the ArmoRM experiment (SPEC 5.2).

Samples ``--samples-per-prompt`` completions per test prompt (paper: 10 at temperature 0.1),
scores each with the reward model (the same scorer as the training scores), and averages every
objective (the 19 heads and ``ArmoRM``):

- ``--selection mean`` (default): over all completions. The authors' scripts generate with
  OpenRLHF's ``--best_of_n 10``, which samples n completions per prompt, and then "compute
  per-objective averages" of that file: this is our reading of "best-of-10";
- ``--selection best``: per prompt, only the completion with the highest ``--best-by`` score.

Writes a long CSV per split (``variant, radius, hp, seed, pair, split, objective, value, n``) and,
optionally, the scored completions. Every policy is evaluated on the validation prompts (held
out of training; selection) and on the test prompts (reported), in one job: the policy and the
reward model load once.

    python -m workflow_scripts.armorm.evaluate --policy align/<pair>/kl-dpo/0.05/beta0.01/0/policy \
        --prompts validation=prompts/validation.parquet --prompts test=prompts/test.parquet \
        --reward-model RLHFlow/ArmoRM-Llama3-8B-v0.1 --allowlist RLHFlow/ArmoRM-Llama3-8B-v0.1 \
        --variant kl-dpo --radius 0.05 --hp beta0.01 --seed 0 --pair <pair> \
        --out validation=eval/validation/run.csv --out test=eval/test/run.csv
"""
from __future__ import annotations

import argparse
import logging

import pandas as pd

from workflow_scripts.armorm.completions import generate
from workflow_scripts.armorm.model import SCORE_COLUMNS
from workflow_scripts.armorm.scores import add_reward_model_args, make_scorer
from workflow_scripts.core.cli import run
from workflow_scripts.core.evaluate import evaluate_policy
from workflow_scripts.core.io import split_paths
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import add_sampling_args, sampler_from_args

logger = logging.getLogger("evaluate_armorm")


def aggregate(scored: pd.DataFrame, selection: str = "mean", best_by: str = "ArmoRM") -> pd.DataFrame:
    """Mean of every score column over the completions kept by ``selection``; long format."""
    if selection == "best":
        order = scored.sort_values(["prompt_idx", best_by, "sample"], ascending=[True, False, True], kind="stable")
        scored = order.groupby("prompt_idx", sort=True).head(1)
    elif selection != "mean":
        raise ValueError(f"selection must be mean or best, got {selection!r}.")
    return pd.DataFrame({"objective": list(SCORE_COLUMNS), "value": [float(scored[c].mean()) for c in SCORE_COLUMNS],
                         "n": len(scored)})


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True)
    p.add_argument("--prompts", action="append", required=True, metavar="SPLIT=PARQUET",
                   help="per split (validation, test): its prompts")
    p.add_argument("--variant", required=True, help="label written into the CSV (sft for the base policy)")
    p.add_argument("--radius", default="0")
    p.add_argument("--hp", default="sft", help="label: the base hyperparameter (eta1, beta0.01)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--pair", default="", help="training pair name (empty for the base policy)")
    p.add_argument("--out", action="append", required=True, metavar="SPLIT=CSV", help="per split: the objectives CSV")
    p.add_argument("--completions-out", help="parquet of the scored completions (every split)")
    p.add_argument("--n-prompts", type=int, default=0, help="0 = all")
    p.add_argument("--samples-per-prompt", type=int, default=10)
    add_sampling_args(p, temperature=0.1, max_new_tokens=1024, max_prompt_tokens=1024, batch_size=32)
    p.add_argument("--selection", default="mean", choices=("mean", "best"))
    p.add_argument("--best-by", default="ArmoRM", choices=SCORE_COLUMNS)
    add_reward_model_args(p)
    return p.parse_args(argv)


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    prompt_files, outputs = split_paths(a.prompts), split_paths(a.out)
    prompts = {split: pd.read_parquet(path) for split, path in prompt_files.items()}
    if a.n_prompts:
        prompts = {split: frame.head(a.n_prompts) for split, frame in prompts.items()}

    def sample(sampler, split: str, frame: pd.DataFrame) -> pd.DataFrame:
        # The sampling seed depends on the run seed only: every policy sees the same prompts and seeds.
        return generate(sampler, tokenizer, frame["prompt"].tolist(), n=a.samples_per_prompt,
                        temperature=a.temperature, top_p=a.top_p, max_new_tokens=a.max_new_tokens,
                        max_prompt_tokens=a.max_prompt_tokens, seed=a.seed + 7919, desc=f"{split} samples",
                        keys={"prompt_idx": frame["prompt_idx"].to_numpy()})

    def table(split: str, scored: pd.DataFrame) -> pd.DataFrame:
        means = aggregate(scored, a.selection, a.best_by)
        logger.info("%s %s radius %s %s seed %d, %s prompts: %d completions; ArmoRM %.4f", a.variant,
                    a.pair or "(base)", a.radius, a.hp, a.seed, split, len(scored),
                    dict(zip(means["objective"], means["value"]))["ArmoRM"])
        return means

    # One reward model for every split (an 8B model loads once), each split scored on its own.
    evaluate_policy(prompts, outputs,
                    open_sampler=lambda: sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size),
                    sample=sample, open_scorer=lambda: make_scorer(a, device), aggregate=table,
                    labels={"variant": a.variant, "radius": a.radius, "hp": a.hp, "seed": a.seed, "pair": a.pair},
                    completions_out=a.completions_out)


if __name__ == "__main__":
    run(main)
