"""Score every completion once with the ArmoRM reward model (SPEC 5.2), resumable per shard.

Each completion (its prompt text and decoded response) goes through the reward model's chat
template; the 19 objective heads (``output.rewards``) and the gated score (``output.score``,
column ``ArmoRM``) are stored as named columns (:func:`workflow_scripts.armorm.model.reward_columns`).
Inside a shard, sequences are scored in batches of similar length. Several processes (one per
GPU under the launcher) split the shards between them.

Output columns: ``prompt_idx, sample`` and the 20 score columns.

    python -m workflow_scripts.armorm.scores --completions completions/train.parquet \
        --reward-model RLHFlow/ArmoRM-Llama3-8B-v0.1 --allowlist RLHFlow/ArmoRM-Llama3-8B-v0.1 --out scores/train.parquet
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import time

import pandas as pd

from workflow_scripts.core.io import setup_logging
from workflow_scripts.core.models import job_device
from workflow_scripts.armorm.model import SCORE_COLUMNS, ArmoRMScorer
from workflow_scripts.core.shards import run_sharded
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_scores")


def add_reward_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reward model")
    g.add_argument("--reward-model", required=True, help="hub id or directory (the mini stand-in's directory)")
    g.add_argument("--allowlist", nargs="*", default=[], help="ids that may load with trust_remote_code=True")
    g.add_argument("--loader", default="remote_code", choices=("remote_code", "native"))
    g.add_argument("--dtype", default="bf16", choices=("bf16", "fp32", "auto"), help="bf16 needs a GPU (else fp32)")
    g.add_argument("--score-batch-size", type=int, default=8)
    g.add_argument("--score-max-length", type=int, default=4096, help="truncate the templated conversation")


def make_scorer(a: argparse.Namespace, device) -> ArmoRMScorer:
    return ArmoRMScorer.load(a.reward_model, device, allowlist=a.allowlist, loader=a.loader, dtype=a.dtype,
                             batch_size=a.score_batch_size, max_length=a.score_max_length)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--shard-size", type=int, default=4096, help="completions per shard")
    p.add_argument("--stop-after-shards", type=int, default=None, help=argparse.SUPPRESS)
    add_reward_model_args(p)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    device = job_device()
    completions = pd.read_parquet(a.completions, columns=["prompt_idx", "sample", "prompt", "response"])
    scorer = None
    scored, scoring_seconds = 0, 0.0

    def work(index: int, lo: int, hi: int) -> pd.DataFrame:
        nonlocal scorer, scored, scoring_seconds
        if scorer is None:
            scorer = make_scorer(a, device)
        rows = completions.iloc[lo:hi]
        started = time.time()
        scores = scorer.score(rows["prompt"].tolist(), rows["response"].tolist(), desc=f"scoring shard {index}")
        scoring_seconds += time.time() - started
        scored += len(rows)
        return pd.concat([rows[["prompt_idx", "sample"]].reset_index(drop=True), scores], axis=1)

    digest = hashlib.sha256(pd.util.hash_pandas_object(completions, index=False).values.tobytes()).hexdigest()
    settings = {k: v for k, v in vars(a).items() if k not in ("out", "stop_after_shards", "score_batch_size")}
    merged = run_sharded(a.out, len(completions), a.shard_size, work, {**settings, "completions_sha256": digest},
                         stop_after=a.stop_after_shards)
    logger.info("scored %d sequences in this process in %.1fs of scoring (%.2f sequences/s, model loading excluded)",
                scored, scoring_seconds, scored / max(scoring_seconds, 1e-9))
    if merged is not None:
        logger.info("score means: %s", ", ".join(f"{c}={merged[c].mean():.3f}" for c in SCORE_COLUMNS))


if __name__ == "__main__":
    run(main)
