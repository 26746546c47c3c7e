"""HH preference pairs: each objective z-scored over the split, aggregated, then labelled (SPEC 5.3).

Every training prompt has two sampled responses, both scored by both reward models. Each objective
is z-scored over all responses of the split (the statistics go to ``--summary``: evaluation reports
on the same scale). The **aggregation** turns the per-objective z-scores ``z`` of a response into
the one reward the preference data carries; it is a property of the data, so any base x ambiguity
set trains on any aggregation:

- ``mixture``: ``alpha0 * z_helpful + (1 - alpha0) * z_harmless`` (the training mixture r(alpha0));
- ``hard_min``: ``min_k z_k`` (AT-PRMD's pessimistic ensemble);
- ``cvar``: CVaR at level q of the objectives' z-scores, the objectives equally weighted: the mean of
  the worst q-fraction, ``CVaR_q = (1/q) * integral_0^q F^-1(u) du``. With K objectives each holds
  mass 1/K: for two, ``q <= 1/2`` is the minimum (hard-min), ``q = 1`` the mean, and in between
  ``(min / 2 + (q - 1/2) max) / q`` (:func:`cvar`).

Pairs: ``y1, y2`` = the two responses; ``r1, r2`` their aggregated rewards (REBEL's regression target);
``label`` drawn from Bradley-Terry ``P(y1 > y2) = sigmoid(s (r1 - r2))`` (the shared label code).
**Data scale**: the first ``n`` prompts of one shuffled order (seeded by the data seed), so smaller
scales are subsets of larger ones (``0`` = all).

    python -m workflow_scripts.hh.prefs --completions completions/0/train.parquet --objectives helpful harmless \\
        --aggregation cvar --cvar-q 0.75 --scale 2000 --seed 0 --out prefs/cvar/2000/0/train.parquet
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.io import setup_logging, write_frame_atomic, write_json_atomic
from workflow_scripts.core.mixtures import bradley_terry_labels
from workflow_scripts.core.pairs import make_pairs
from workflow_scripts.core.zscores import zscore_stats
from workflow_scripts.core.cli import run

logger = logging.getLogger("hh_prefs")

AGGREGATIONS = ("mixture", "hard_min", "cvar")


def zscores(frame: pd.DataFrame, stats: dict[str, dict[str, float]]) -> np.ndarray:
    """(n, K) z-scores of the objectives in ``stats`` order; a constant objective is 0."""
    columns = []
    for o, s in stats.items():
        values = frame[o].to_numpy(dtype=np.float64)
        columns.append(np.zeros_like(values) if s["std"] <= 0 else (values - s["mean"]) / s["std"])
    return np.stack(columns, axis=1)


def cvar(z: np.ndarray, q: float) -> np.ndarray:
    """CVaR_q over the objectives (columns, equally weighted) of each row: the mean of the worst q-fraction.

    ``(1/q) * integral_0^q F^-1(u) du`` with F the empirical distribution of the row's K values: sorted
    ascending, value k holds the quantile interval [k/K, (k+1)/K).
    """
    if not 0 < q <= 1:
        raise ValueError(f"the CVaR level q must be in (0, 1], got {q}.")
    z = np.sort(np.asarray(z, dtype=np.float64), axis=1)
    k = z.shape[1]
    lo = np.arange(k) / k
    mass = np.clip(q - lo, 0.0, 1.0 / k)                             # the part of each value's interval below q
    return (z * mass).sum(axis=1) / q


def aggregate(z: np.ndarray, how: str, alpha0: float = 0.5, q: float = 0.5) -> np.ndarray:
    """The one reward of each response from its objectives' z-scores (columns: helpful, harmless, ...)."""
    if how == "mixture":
        if z.shape[1] != 2:
            raise ValueError(f"the mixture r(alpha0) needs two objectives, got {z.shape[1]}.")
        return alpha0 * z[:, 0] + (1.0 - alpha0) * z[:, 1]
    if how == "hard_min":
        return z.min(axis=1)
    if how == "cvar":
        return cvar(z, q)
    raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}.")


def scale_subset(prompt_idx: np.ndarray, scale: int, seed: int) -> np.ndarray:
    """The first ``scale`` prompts of one seeded order (0 = all): nested across scales."""
    unique = np.unique(prompt_idx)
    order = np.random.default_rng([seed, 2_718]).permutation(unique)
    if scale and scale > len(unique):
        raise ValueError(f"data scale {scale} exceeds the {len(unique)} training prompts.")
    return order[:scale] if scale else order


def build_pairs(completions: pd.DataFrame, objectives: Sequence[str], how: str, *, alpha0: float, q: float,
                scale: int, bt_scale: float, seed: int) -> tuple[pd.DataFrame, dict]:
    stats = zscore_stats(completions, objectives)
    frame = completions.assign(reward=aggregate(zscores(completions, stats), how, alpha0, q))
    keep = scale_subset(frame["prompt_idx"].to_numpy(), scale, seed)
    frame = frame[frame["prompt_idx"].isin(keep)].sort_values(["prompt_idx", "sample"], kind="stable")
    first, second = frame[frame["sample"] == 0], frame[frame["sample"] == 1]
    if len(first) != len(second) or not (first["prompt_idx"].to_numpy() == second["prompt_idx"].to_numpy()).all():
        raise ValueError("every prompt needs responses 0 and 1.")
    order = {p: i for i, p in enumerate(keep)}                      # the scale's order: nested prefixes
    rank = first["prompt_idx"].map(order).to_numpy()
    first, second = first.iloc[np.argsort(rank)], second.iloc[np.argsort(rank)]
    r1, r2 = first["reward"].to_numpy(), second["reward"].to_numpy()
    labels = bradley_terry_labels(r1, r2, bt_scale, np.random.default_rng([seed, 1]))
    extra = {"prompt_idx": first["prompt_idx"].to_numpy(), "subset": first["subset"].to_numpy()}
    for o in objectives:
        extra[f"y1_{o}"], extra[f"y2_{o}"] = first[o].to_numpy(), second[o].to_numpy()
    pairs = make_pairs(first["prompt_ids"].to_numpy(), first["response_ids"].to_numpy(),
                       second["response_ids"].to_numpy(), r1, r2, labels, **extra)
    summary = {"objectives": list(objectives), "aggregation": how, "alpha0": alpha0, "cvar_q": q, "scale": scale,
               "n_pairs": len(pairs), "zscore_stats": stats, "label_mean": float(labels.mean()),
               "abs_gap_mean": float(np.abs(r1 - r2).mean())}
    return pairs, summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--completions", required=True)
    p.add_argument("--objectives", nargs="+", default=["helpful", "harmless"])
    p.add_argument("--aggregation", required=True, choices=AGGREGATIONS)
    p.add_argument("--alpha0", type=float, default=0.5, help="mixture: the weight of the first objective")
    p.add_argument("--cvar-q", type=float, default=0.5, help="cvar: the level q")
    p.add_argument("--scale", type=int, default=0, help="training prompts kept (0 = all)")
    p.add_argument("--bt-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--summary", required=True)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    completions = pd.read_parquet(a.completions)
    pairs, summary = build_pairs(completions, a.objectives, a.aggregation, alpha0=a.alpha0, q=a.cvar_q, scale=a.scale,
                                 bt_scale=a.bt_scale, seed=a.seed)
    write_frame_atomic(pairs, a.out)
    write_json_atomic(a.summary, summary)
    logger.info("%d pairs (%s, scale %s): mean |r1 - r2| %.3f, P(label=1) %.3f", len(pairs), a.aggregation,
                a.scale or "all", summary["abs_gap_mean"], summary["label_mean"])


if __name__ == "__main__":
    run(main)
