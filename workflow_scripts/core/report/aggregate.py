"""Aggregation every report shares: the canonical row order of runs, and mean / sample std over seeds."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.report.tables import sample_std, variant_sort_key


def hparam_value(spelling: str) -> float:
    """The numeric value of a canonical hyperparameter spelling ("eta10" -> 10.0); "sft" -> 0."""
    digits = str(spelling).lstrip("abcdefghijklmnopqrstuvwxyz")
    return float(digits) if digits else 0.0


def sort_runs(df: pd.DataFrame, first: Sequence[str] = ()) -> pd.DataFrame:
    """Rows in the canonical order: ``first`` columns as given, then variant (SFT, REBEL family, DPO
    family), radius and hyperparameter numerically (so "2" comes before "10")."""
    keys = {"_o": df["variant"].map(lambda v: variant_sort_key(v)[0]), "_r": pd.to_numeric(df["radius"])}
    if "hp" in df:
        keys["_h"] = df["hp"].map(hparam_value)
    return (df.assign(**keys).sort_values([*first, *keys], kind="stable").drop(columns=list(keys))
            .reset_index(drop=True))


def over_seeds(frame: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Per group of ``keys`` (in order of appearance): ``n_seeds`` and, for every column, ``<column>_mean``
    and ``<column>_std`` over its seeds (sample std, ddof=1; 0 for one seed; NaN values ignored)."""
    rows = []
    for key, group in frame.groupby(list(keys), sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["n_seeds"] = int(group["seed"].nunique())
        for column in columns:
            values = group[column].dropna().to_numpy(dtype=float)
            row[f"{column}_mean"] = float(values.mean()) if values.size else np.nan
            row[f"{column}_std"] = sample_std(values)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["n_seeds"] = out["n_seeds"].astype(int)
    return out
