"""Choosing each variant's radius and base hyperparameter on VALIDATION data (SPEC 5.5).

Selection reads validation rows only; the tables and figures then report the selected runs on
the test split. Choosing on the reported split would hand every robust variant the best of
several noisy draws while the bases get one: a bias in exactly the direction of the claim
being tested.

An experiment that feeds a later stage (the lm-eval leaderboard) writes its choice as a small JSON
(:func:`write_selection`), so that stage reads a file instead of importing the experiment's report.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pandas as pd

from workflow_scripts.core.io import write_json_atomic
from workflow_scripts.core.report.aggregate import hparam_value
from workflow_scripts.core.report.tables import variant_sort_key

log = logging.getLogger("workflow_scripts.core.report.selection")

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


def validation_only(data: pd.DataFrame, paths: Iterable[str]) -> pd.DataFrame:
    """``data`` unchanged if every row is from the selection split; otherwise a one-line error naming the
    split(s) and the first files. A selection job's inputs are validation files only, so this is the
    check that a wrong input list cannot let the test split decide."""
    bad = sorted(set(data["split"]) - {SELECTION_SPLIT})
    if bad:
        raise ValueError(f"selection reads {SELECTION_SPLIT} results only; got split(s) {bad} in {list(paths)[:3]}...")
    return data


def write_selection(path: str, experiment: str, groups: Sequence[str], best: pd.DataFrame) -> list[dict]:
    """Write :func:`select_best`'s choice as the selection JSON other stages read; returns its records.

    ``{"experiment": ..., "group": [...], "split": "validation", "selected": [{<group keys>, "radius", "hp",
    "score"}, ...]}``: every key a string but ``score``, a float.
    """
    records = [{**{k: str(row[k]) for k in [*groups, "radius", "hp"]}, "score": float(row["score"])}
               for _, row in best.iterrows()]
    write_json_atomic(path, {"experiment": experiment, "group": list(groups), "split": SELECTION_SPLIT,
                             "selected": records})
    for r in records:
        log.info("selected on %s: %s", SELECTION_SPLIT, r)
    return records


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
