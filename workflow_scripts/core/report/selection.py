"""Choosing each variant's radius and base hyperparameter on VALIDATION data (SPEC 5.5).

Selection reads validation rows only; the tables and figures then report the selected runs on
the test split. Choosing on the reported split would hand every robust variant the best of
several noisy draws while the bases get one: a bias in exactly the direction of the claim
being tested.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from workflow_scripts.core.report.aggregate import hparam_value
from workflow_scripts.core.report.tables import variant_sort_key

#: The eval split radii / hyperparameters are chosen on, and the one reported.
SELECTION_SPLIT = "validation"
REPORTED_SPLIT = "test"


def split_rows(data: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one evaluation split; a one-line error when there are none."""
    rows = data[data["split"] == split]
    if rows.empty:
        raise ValueError(f"no evaluation rows for the {split} split (have: {sorted(set(data['split']))}); "
                         f"selection needs {SELECTION_SPLIT}, the report {REPORTED_SPLIT}.")
    return rows


def select_best(scores: pd.DataFrame, groups: Sequence[str], score: str = "score") -> pd.DataFrame:
    """Per group (e.g. variant, or training pair x variant), the (radius, hp) with the highest ``score``.

    ``scores`` has the ``groups`` columns, ``radius``, ``hp`` and ``score``, computed from validation
    rows only. SFT rows and missing scores are ignored. Ties go to the smallest radius, then the
    smallest hyperparameter. Returns one row per group with ``radius``, ``hp`` and ``score``.
    """
    scored = scores[(scores["variant"] != "sft") & scores[score].notna()].copy()
    scored["_r"] = pd.to_numeric(scored["radius"])
    scored["_h"] = scored["hp"].map(hparam_value)
    scored = scored.sort_values([*groups, score, "_r", "_h"], ascending=[True] * len(groups) + [False, True, True],
                                kind="stable")
    best = scored.groupby(list(groups), sort=False).head(1)
    best = best.assign(_o=best["variant"].map(lambda v: variant_sort_key(v)[0]))
    order = [g for g in groups if g != "variant"] + ["_o"]
    return best.sort_values(order, kind="stable")[[*groups, "radius", "hp", score]].reset_index(drop=True)


def mark_selected(table: pd.DataFrame, best: pd.DataFrame, groups: Sequence[str]) -> pd.Series:
    """Boolean column: the table rows (per groups, radius, hp) that selection chose."""
    keys = [*groups, "radius", "hp"]
    chosen = set(best[keys].itertuples(index=False, name=None))
    return pd.Series([row in chosen for row in table[keys].itertuples(index=False, name=None)], index=table.index)
