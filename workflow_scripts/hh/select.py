"""The HH selection other stages read (the lm-eval leaderboard): per policy, aggregation, data scale and
variant, the radius and eta/beta with the best worst case over alpha on VALIDATION, as
:mod:`workflow_scripts.hh.report` selects them (SPEC 5.5).

The job's inputs are validation CSVs only (the rule passes no test file, and any test row is refused),
so the choice cannot depend on the test split, nor on what a later stage measures. Writes the selection
JSON of :func:`workflow_scripts.core.report.selection.write_selection` (``"experiment": "hh"``, group
``policy, aggregation, scale, variant``).

    python -m workflow_scripts.hh.select --evals v1.csv ... --training qwen=completions.parquet \\
        --alphas 0 0.5 1 --out selected.json
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import setup_logging
from workflow_scripts.core.report.aggregate import over_seeds
from workflow_scripts.core.report.selection import validation_only, write_selection
from workflow_scripts.hh.report import CELL, GROUP, add_zscores, select_configs


def validation_table(evals: Sequence[str], training: dict[str, str], alphas: Sequence[float]) -> pd.DataFrame:
    """The report's validation numbers from the evaluation CSVs (per-run means of the raw rewards).

    r(alpha) is affine in the z-scores and every prompt has the same number of samples, so the mean of
    r(alpha) over prompts equals r(alpha) of the means: the per-run CSV is enough to rank runs by their
    worst case over alpha, as the report does from the samples.
    """
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in evals]
    if not frames:
        raise ValueError("no validation CSVs given.")
    data = validation_only(pd.concat(frames, ignore_index=True), evals)
    data["value"] = pd.to_numeric(data["value"])
    data["seed"] = pd.to_numeric(data["seed"])
    keys = ["policy", "aggregation", "scale", "variant", "radius", "hp", "seed"]
    wide = add_zscores(data.pivot_table(index=keys, columns="objective", values="value", aggfunc="first")
                       .reset_index(), training)
    curves = np.stack([a * wide["z_helpful"] + (1 - a) * wide["z_harmless"] for a in alphas], axis=1)
    wide["worst_alpha"] = curves.min(axis=1)
    return over_seeds(wide, CELL, ["worst_alpha"])


def select(evals: Sequence[str], training: dict[str, str], alphas: Sequence[float]) -> pd.DataFrame:
    """Per (policy, aggregation, scale, variant): the best worst case over alpha on validation (the report's)."""
    return select_configs(validation_table(evals, training, alphas))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evals", nargs="+", required=True, help="the validation CSVs of every run")
    p.add_argument("--training", nargs="+", required=True, metavar="POLICY=PARQUET",
                   help="each policy's training completions (the z-score scale)")
    p.add_argument("--alphas", nargs="+", type=float, required=True, help="the alpha grid")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    write_selection(a.out, "hh", GROUP, select(a.evals, dict(item.split("=", 1) for item in a.training), a.alphas))


if __name__ == "__main__":
    run(main)
