"""Per-objective z-score statistics of a split: what the chat experiments standardise their rewards with.

ArmoRM and HH z-score every objective over the training completions (mean and population standard
deviation over all completions of all prompts) before mixing objectives into one reward; their reports
and the lm-eval selection reuse the same statistics, so every place standardises alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def zscore_stats(scores: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation of each column over the split."""
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack objective column(s) {missing}.")
    stats = {}
    for c in columns:
        values = scores[c].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"objective {c!r} has non-finite scores.")
        stats[c] = {"mean": float(values.mean()), "std": float(values.std())}
    return stats
