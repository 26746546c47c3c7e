"""Preference pairs for one ArmoRM training pair of objectives (SPEC 5.2).

Each objective column is z-scored over the whole split (all completions of all prompts; a
constant column becomes 0, not NaN), the two objectives of the training pair are mixed with
their weights, ``s = w1 z1 + w2 z2``, and for every prompt the completion with the highest
``s`` is chosen and the one with the lowest rejected (ties: the lowest sample index; a prompt
whose completions all tie has no preference and is dropped).

The output is the pairs schema of ``workflow_scripts.core.train.align`` (offline regime):
``prompt_ids, y1_ids`` (chosen), ``y2_ids`` (rejected), ``r1, r2`` (the mixed z-scores, which
REBEL variants regress on), ``label`` (always 1: y1 is preferred), plus bookkeeping columns.

    python -m workflow_scripts.armorm.prefs --completions completions/train.parquet \
        --scores scores/train.parquet --objectives ultrafeedback-truthfulness helpsteer-complexity \
        --weights 0.5 0.5 --out prefs/<pair>/train.parquet --summary prefs/<pair>/summary.json
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.io import setup_logging, write_frame_atomic, write_json_atomic
from workflow_scripts.core.pairs import make_pairs
from workflow_scripts.core.zscores import zscore_stats
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_prefs")

KEYS = ["prompt_idx", "sample"]


def zscore(values, mean: float, std: float) -> np.ndarray:
    """``(x - mean) / std``; a constant objective (std 0) is 0 everywhere."""
    values = np.asarray(values, dtype=np.float64)
    if std <= 0 or not np.isfinite(std):
        return np.zeros_like(values)
    return (values - mean) / std


def mixed_zscores(scores: pd.DataFrame, objectives: Sequence[str], weights: Sequence[float],
                  stats: dict[str, dict[str, float]] | None = None) -> np.ndarray:
    """``sum_k w_k z_k`` with each objective z-scored over ``scores`` (or with the given ``stats``)."""
    if len(objectives) != len(weights):
        raise ValueError(f"{len(objectives)} objectives but {len(weights)} weights.")
    stats = stats or zscore_stats(scores, objectives)
    return sum(float(w) * zscore(scores[o], stats[o]["mean"], stats[o]["std"]) for o, w in zip(objectives, weights))


def extreme_pairs(prompt_idx, sample, score) -> pd.DataFrame:
    """Per prompt: chosen = argmax, rejected = argmin of ``score`` (first sample on ties).

    Prompts with fewer than two completions, or whose completions all tie, are dropped.
    Columns: ``prompt_idx, chosen_sample, rejected_sample, chosen_score, rejected_score``.
    """
    frame = pd.DataFrame({"prompt_idx": np.asarray(prompt_idx), "sample": np.asarray(sample),
                          "score": np.asarray(score, dtype=np.float64)})
    if frame["score"].isna().any():
        raise ValueError("mixed scores contain NaN.")
    frame = frame.sort_values(["prompt_idx", "sample"], kind="stable")
    rows = []
    for prompt, group in frame.groupby("prompt_idx", sort=True):
        values = group["score"].to_numpy()
        hi, lo = int(np.argmax(values)), int(np.argmin(values))
        if len(values) < 2 or values[hi] == values[lo]:
            continue
        rows.append({"prompt_idx": prompt, "chosen_sample": int(group["sample"].iloc[hi]),
                     "rejected_sample": int(group["sample"].iloc[lo]),
                     "chosen_score": float(values[hi]), "rejected_score": float(values[lo])})
    return pd.DataFrame(rows, columns=["prompt_idx", "chosen_sample", "rejected_sample", "chosen_score",
                                       "rejected_score"])


def build_pairs(completions: pd.DataFrame, scores: pd.DataFrame, objectives: Sequence[str],
                weights: Sequence[float]) -> tuple[pd.DataFrame, dict]:
    """The align-ready pairs frame and a summary (counts, z-score statistics)."""
    data = completions.merge(scores, on=KEYS, how="inner", validate="one_to_one")
    if len(data) != len(completions) or len(data) != len(scores):
        raise ValueError(f"completions ({len(completions)} rows) and scores ({len(scores)} rows) do not match "
                         "one to one on (prompt_idx, sample).")
    stats = zscore_stats(data, objectives)
    data["mixed"] = mixed_zscores(data, objectives, weights, stats)
    picks = extreme_pairs(data["prompt_idx"], data["sample"], data["mixed"])
    if picks.empty:
        raise ValueError(f"no preference pairs: every prompt's completions tie under {list(objectives)}.")
    indexed = data.set_index(KEYS)
    chosen = indexed.loc[list(zip(picks["prompt_idx"], picks["chosen_sample"]))].reset_index()
    rejected = indexed.loc[list(zip(picks["prompt_idx"], picks["rejected_sample"]))].reset_index()
    extra = {"chosen_sample": picks["chosen_sample"].to_numpy(), "rejected_sample": picks["rejected_sample"].to_numpy()}
    for o in objectives:
        extra[f"y1_{o}"] = chosen[o].to_numpy()
        extra[f"y2_{o}"] = rejected[o].to_numpy()
    pairs = make_pairs(chosen["prompt_ids"].to_numpy(), chosen["response_ids"].to_numpy(),
                       rejected["response_ids"].to_numpy(), picks["chosen_score"].to_numpy(),
                       picks["rejected_score"].to_numpy(), np.ones(len(picks), dtype=np.int64), **extra)
    pairs.insert(0, "prompt_idx", picks["prompt_idx"].to_numpy())
    n_prompts = int(data["prompt_idx"].nunique())
    summary = {"objectives": list(objectives), "weights": [float(w) for w in weights], "zscore_stats": stats,
               "n_prompts": n_prompts, "n_pairs": int(len(pairs)), "n_dropped_ties": n_prompts - int(len(pairs)),
               "mean_gap": float((pairs["r1"] - pairs["r2"]).mean())}
    return pairs, summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", required=True)
    p.add_argument("--scores", required=True)
    p.add_argument("--objectives", nargs=2, required=True, metavar=("O1", "O2"))
    p.add_argument("--weights", nargs=2, type=float, default=(0.5, 0.5), metavar=("W1", "W2"))
    p.add_argument("--out", required=True, help="pairs parquet")
    p.add_argument("--summary", required=True, help="summary JSON")
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    completions = pd.read_parquet(a.completions, columns=KEYS + ["prompt_ids", "response_ids"])
    scores = pd.read_parquet(a.scores)
    pairs, summary = build_pairs(completions, scores, a.objectives, a.weights)
    write_frame_atomic(pairs, a.out)
    write_json_atomic(a.summary, summary)
    logger.info("%d pairs from %d prompts (%d dropped on ties) for %s x %s; mean mixed gap %.3f", summary["n_pairs"],
                summary["n_prompts"], summary["n_dropped_ties"], a.objectives, a.weights, summary["mean_gap"])


if __name__ == "__main__":
    run(main)
