"""The preference-pairs schema: what every experiment's data stage writes and the alignment entry point
reads (offline), and what the online regime builds each iteration.

One row per pair: ``prompt_ids, y1_ids, y2_ids`` (token ids), ``r1, r2`` (the rewards REBEL regresses
on), ``label`` (1 when y1 is preferred: DPO's chosen / rejected), plus any bookkeeping columns.
Reference log-probs are never stored: the alignment job computes them with the forward it trains with.

:func:`label_pairs` makes such pairs from two sampled completions per prompt: both scored by a
:class:`~workflow_scripts.core.scoring.Scorer`, two objectives mixed under r*(alpha0), a Bradley-Terry label
drawn. The emotion experiment's pairs (once, from the SFT policy) and the online regime's (every
iteration, from the current policy) are made by it.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.mixtures import bradley_terry_labels, mix
from workflow_scripts.core.scoring import Scorer, check_scores

PAIR_COLUMNS = ("prompt_ids", "y1_ids", "y2_ids", "r1", "r2", "label")


def make_pairs(prompt_ids: Sequence, y1_ids: Sequence, y2_ids: Sequence, r1, r2, label, **extra) -> pd.DataFrame:
    """The pairs frame, checked: equal lengths, finite rewards, labels in {0, 1}; ``extra`` columns after."""
    columns = {"prompt_ids": list(prompt_ids), "y1_ids": list(y1_ids), "y2_ids": list(y2_ids),
               "r1": np.asarray(r1, dtype=np.float64), "r2": np.asarray(r2, dtype=np.float64),
               "label": np.asarray(label, dtype=np.int64)}
    sizes = {name: len(values) for name, values in {**columns, **extra}.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"pair columns differ in length: {sizes}.")
    if not (np.isfinite(columns["r1"]).all() and np.isfinite(columns["r2"]).all()):
        raise ValueError("pair rewards r1, r2 must be finite.")
    if not np.isin(columns["label"], (0, 1)).all():
        raise ValueError("pair labels must be 0 or 1 (1: y1 is preferred).")
    return pd.DataFrame({**columns, **extra})


def label_pairs(scorer: Scorer, prompts: Sequence[str], prompt_ids: Sequence, y1_ids: Sequence, y2_ids: Sequence,
                decode: Callable[[Sequence[int]], str], *, objectives: Sequence[str], alpha0: float, mixture: str,
                bt_scale: float, rng: np.random.Generator | None = None, uniforms=None,
                score_columns: bool = False) -> pd.DataFrame:
    """Pairs of the completions ``y1_ids[i]``, ``y2_ids[i]`` of prompt ``i`` (``prompts``: its text as the scorer
    reads it), rewarded ``r = mix(s[objectives[0]], s[objectives[1]], alpha0, mixture)`` and labelled by
    :func:`~workflow_scripts.core.mixtures.bradley_terry_labels` (uniforms from ``rng``, or given). With
    ``score_columns``, every objective the scorer knows follows as ``y1_<objective>, y2_<objective>``."""
    s1, s2 = (check_scores(scorer.score(list(prompts), [decode(y) for y in ys]), scorer, len(ys), objectives)
              for ys in (y1_ids, y2_ids))
    r1 = mix(s1[objectives[0]], s1[objectives[1]], alpha0, mixture)
    r2 = mix(s2[objectives[0]], s2[objectives[1]], alpha0, mixture)
    labels = bradley_terry_labels(r1, r2, bt_scale, rng, uniforms=uniforms)
    extra = {f"y{k}_{o}": s[o].to_numpy() for o in scorer.objectives for k, s in ((1, s1), (2, s2))} \
        if score_columns else {}
    return make_pairs(prompt_ids, y1_ids, y2_ids, r1, r2, labels, **extra)


def read_pairs(path: str, columns=PAIR_COLUMNS) -> pd.DataFrame:
    """A pairs file (or, with ``columns=("prompt_ids",)``, a prompt pool), with a one-line error naming
    what is missing."""
    df = pd.read_parquet(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: pairs file lacks columns {missing}.")
    if len(df) == 0:
        raise ValueError(f"{path}: pairs file is empty.")
    return df.reset_index(drop=True)
