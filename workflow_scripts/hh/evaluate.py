"""Evaluation of one HH policy on the validation and the test prompts (SPEC 5.3).

Samples ``--samples-per-prompt`` responses per prompt, scores each with both reward models (raw
rewards, one column per objective), and writes per split a CSV of the mean of each objective plus
the scored samples (every split, one parquet): the report z-scores them with the training
completions' statistics, sweeps alpha, takes the worst case and the win rate against SFT prompt by
prompt. The sampling seed depends on the run seed only, so every policy sees the same prompts and
noise stream.

    python -m workflow_scripts.hh.evaluate --policy align/.../policy --prompts validation=p/validation.parquet \\
        --prompts test=p/test.parquet --reward-models '{...}' --variant dpo --radius 0 --hp beta0.1 --seed 0 \\
        --policy-name qwen1.5b --aggregation mixture --scale 2000 \\
        --out validation=v.csv --out test=t.csv --completions-out run.parquet
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd

from workflow_scripts.core.cli import run
from workflow_scripts.core.evaluate import evaluate_policy
from workflow_scripts.core.io import split_paths
from workflow_scripts.core.models import resolve_dtype
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import add_sampling_args, sampler_from_args
from workflow_scripts.hh.completions import sample
from workflow_scripts.hh.reward import ensemble

logger = logging.getLogger("hh_evaluate")


def stratified_subset(prompts: pd.DataFrame, n: int, seed: int = 0, by: str = "subset") -> pd.DataFrame:
    """``n`` prompts drawn without replacement in proportion to each ``by`` group (largest remainders; seeded),
    in their original order: every subset keeps its share of the split (``head(n)`` took the first subset's
    prompts only, as the prompt files are grouped by subset). ``n <= 0`` or ``n >= len``: all prompts."""
    if n <= 0 or n >= len(prompts):
        return prompts
    sizes = prompts.groupby(by, sort=True).size()
    quota = sizes / sizes.sum() * n
    take = np.floor(quota).astype(int)
    remainders = (quota - take).sort_values(ascending=False, kind="stable")
    take[remainders.index[: n - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.flatnonzero(prompts[by].to_numpy() == group), size=k, replace=False)
                             for group, k in take.items() if k > 0])
    return prompts.iloc[np.sort(chosen)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True)
    p.add_argument("--prompts", action="append", required=True, metavar="SPLIT=PARQUET")
    p.add_argument("--reward-models", required=True, help="JSON mapping objective -> reward model")
    p.add_argument("--reward-dtype", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--variant", required=True, help="label (sft for the SFT policy)")
    p.add_argument("--radius", default="0")
    p.add_argument("--hp", default="sft")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--policy-name", required=True, help="label: the policy (model-size axis)")
    p.add_argument("--aggregation", default="", help="label: the preference data's aggregation (empty for SFT)")
    p.add_argument("--scale", default="", help="label: the data scale (empty for SFT)")
    p.add_argument("--out", action="append", required=True, metavar="SPLIT=CSV")
    p.add_argument("--completions-out", required=True)
    p.add_argument("--n-prompts", type=int, default=0, help="0 = all; else a subset stratified by source (seed 0, "
                   "the same for every policy)")
    p.add_argument("--samples-per-prompt", type=int, default=1)
    add_sampling_args(p, temperature=1.0, max_new_tokens=128, max_prompt_tokens=512, batch_size=32)
    p.add_argument("--score-batch-size", type=int, default=16)
    p.add_argument("--score-max-length", type=int, default=1024)
    return p.parse_args(argv)


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    prompt_files, outputs = split_paths(a.prompts), split_paths(a.out)
    prompts = {split: stratified_subset(pd.read_parquet(path), a.n_prompts) for split, path in prompt_files.items()}
    models = json.loads(a.reward_models)
    labels = {"variant": a.variant, "radius": a.radius, "hp": a.hp, "seed": a.seed, "policy": a.policy_name,
              "aggregation": a.aggregation, "scale": a.scale}

    def sample_split(sampler, split: str, frame: pd.DataFrame) -> pd.DataFrame:
        return sample(sampler, tokenizer, frame["prompt"].tolist(), n=a.samples_per_prompt, temperature=a.temperature,
                      top_p=a.top_p, max_new_tokens=a.max_new_tokens, max_prompt_tokens=a.max_prompt_tokens,
                      seed=a.seed + 7919, desc=f"{split} samples", keys=frame[["prompt_idx", "subset"]])

    def means(split: str, scored: pd.DataFrame) -> pd.DataFrame:
        logger.info("%s %s radius %s %s seed %d, %s: %d responses; means %s", a.variant, a.aggregation or "(sft)",
                    a.radius, a.hp, a.seed, split, len(scored), {o: round(float(scored[o].mean()), 4) for o in models})
        return pd.DataFrame({"objective": list(models), "value": [float(scored[o].mean()) for o in models],
                             "n": len(scored)})

    evaluate_policy(prompts, outputs,
                    open_sampler=lambda: sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size),
                    sample=sample_split,
                    open_scorer=lambda: ensemble(models, device, max_length=a.score_max_length,
                                                 batch_size=a.score_batch_size,
                                                 dtype=resolve_dtype(a.reward_dtype, device)),
                    aggregate=means, labels=labels, completions_out=a.completions_out, labelled_completions=True)


if __name__ == "__main__":
    run(main)
