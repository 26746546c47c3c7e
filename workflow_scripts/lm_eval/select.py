"""Which policy of each variant the leaderboard stage evaluates: the radius and eta/beta selected on
VALIDATION, exactly as the experiment's own report selects them (SPEC 5.5).

This job's inputs are validation results only (the rule passes no test file), so the choice cannot
depend on the test split, nor on the benchmark. It writes one JSON per experiment:

    {"experiment": "armorm", "group": ["pair", "variant"],
     "selected": [{"pair": "...", "variant": "dpo", "radius": "0", "hp": "beta0.1", "score": 0.12}, ...]}

    python -m workflow_scripts.lm_eval.select armorm --evals v1.csv ... --scores scores.parquet \\
        --pairs-json '[...]' --axes a b --out selected.json
    python -m workflow_scripts.lm_eval.select hh --evals v1.csv ... --training qwen=completions.parquet \\
        --alphas 0 0.5 1 --out selected.json
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.report.aggregate import over_seeds
from workflow_scripts.core.report.selection import SELECTION_SPLIT
from workflow_scripts.core.cli import run

log = logging.getLogger("workflow_scripts.lm_eval.select")


def _validation_only(data: pd.DataFrame, paths) -> pd.DataFrame:
    bad = sorted(set(data["split"]) - {SELECTION_SPLIT})
    if bad:
        raise ValueError(f"selection reads {SELECTION_SPLIT} results only; got split(s) {bad} in {list(paths)[:3]}...")
    return data


def select_armorm(evals: Sequence[str], scores: str, pairs: list[dict], axes: Sequence[str]) -> pd.DataFrame:
    """Per (pair, variant): the armorm report's selection (mean z-score over the axes, on validation)."""
    from workflow_scripts.armorm.prefs import zscore_stats
    from workflow_scripts.armorm.report import load_inputs, objectives_table, select_configs, to_zscores

    data = _validation_only(load_inputs(evals), evals)
    objectives = sorted(set(axes) | {o for p in pairs for o in p["objectives"]})
    wide = to_zscores(data, zscore_stats(pd.read_parquet(scores), objectives))
    return select_configs(objectives_table(wide, pairs, axes), axes)


def hh_validation_table(evals: Sequence[str], training: dict[str, str], alphas: Sequence[float]) -> pd.DataFrame:
    """The HH report's validation numbers from the evaluation CSVs (per-run means of the raw rewards).

    r(alpha) is affine in the z-scores and every prompt has the same number of samples, so the mean of
    r(alpha) over prompts equals r(alpha) of the means: the per-run CSV is enough to rank runs by their
    worst case over alpha, as the report does from the samples.
    """
    from workflow_scripts.hh.report import CELL, add_zscores

    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in evals]
    if not frames:
        raise ValueError("no validation CSVs given.")
    data = _validation_only(pd.concat(frames, ignore_index=True), evals)
    data["value"] = pd.to_numeric(data["value"])
    data["seed"] = pd.to_numeric(data["seed"])
    keys = ["policy", "aggregation", "scale", "variant", "radius", "hp", "seed"]
    wide = add_zscores(data.pivot_table(index=keys, columns="objective", values="value", aggfunc="first")
                       .reset_index(), training)
    curves = np.stack([a * wide["z_helpful"] + (1 - a) * wide["z_harmless"] for a in alphas], axis=1)
    wide["worst_alpha"] = curves.min(axis=1)
    return over_seeds(wide, CELL, ["worst_alpha"])


def select_hh(evals: Sequence[str], training: dict[str, str], alphas: Sequence[float]) -> pd.DataFrame:
    """Per (policy, aggregation, scale, variant): the best worst case over alpha on validation (the HH report's)."""
    from workflow_scripts.hh.report import select_configs

    return select_configs(hh_validation_table(evals, training, alphas))


GROUPS = {"armorm": ["pair", "variant"], "hh": ["policy", "aggregation", "scale", "variant"]}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(GROUPS))
    p.add_argument("--evals", nargs="+", required=True, help="the validation CSVs of every run")
    p.add_argument("--scores", help="armorm: the training completions' scores (the z-score scale)")
    p.add_argument("--pairs-json", help="armorm: the training pairs")
    p.add_argument("--axes", nargs="+", help="armorm: the evaluation axes")
    p.add_argument("--training", nargs="+", default=[], metavar="POLICY=PARQUET",
                   help="hh: each policy's training completions (the z-score scale)")
    p.add_argument("--alphas", nargs="+", type=float, help="hh: the alpha grid")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    if a.experiment == "armorm":
        chosen = select_armorm(a.evals, a.scores, json.loads(a.pairs_json), a.axes)
    else:
        chosen = select_hh(a.evals, dict(item.split("=", 1) for item in a.training), a.alphas)
    group = GROUPS[a.experiment]
    records = [{**{k: str(row[k]) for k in [*group, "radius", "hp"]}, "score": float(row["score"])}
               for _, row in chosen.iterrows()]
    write_json_atomic(a.out, {"experiment": a.experiment, "group": group, "split": SELECTION_SPLIT,
                              "selected": records})
    for r in records:
        log.info("selected on %s: %s", SELECTION_SPLIT, r)


if __name__ == "__main__":
    run(main)
