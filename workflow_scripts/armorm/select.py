"""The ArmoRM selection other stages read (the lm-eval leaderboard): per training pair and variant, the
radius and eta/beta selected on VALIDATION, exactly as :mod:`workflow_scripts.armorm.report` selects them
(mean z-score over the evaluation axes; SPEC 5.5).

The job's inputs are validation CSVs only (the rule passes no test file, and any test row is refused),
so the choice cannot depend on the test split, nor on what a later stage measures. Writes the selection
JSON of :func:`workflow_scripts.core.report.selection.write_selection`:

    {"experiment": "armorm", "group": ["pair", "variant"], "split": "validation",
     "selected": [{"pair": "...", "variant": "dpo", "radius": "0", "hp": "beta0.1", "score": 0.12}, ...]}

    python -m workflow_scripts.armorm.select --evals v1.csv ... --scores scores.parquet \\
        --pairs-json '[...]' --axes a b --out selected.json
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import pandas as pd

from workflow_scripts.core.zscores import zscore_stats
from workflow_scripts.armorm.report import load_inputs, objectives_table, select_configs, to_zscores
from workflow_scripts.core.cli import run
from workflow_scripts.core.io import setup_logging
from workflow_scripts.core.report.selection import validation_only, write_selection

#: One selected policy per (training pair, variant).
GROUP = ["pair", "variant"]


def select(evals: Sequence[str], scores: str, pairs: list[dict], axes: Sequence[str]) -> pd.DataFrame:
    """Per (pair, variant): the report's selection (mean z-score over the axes, on validation)."""
    data = validation_only(load_inputs(evals), evals)
    objectives = sorted(set(axes) | {o for p in pairs for o in p["objectives"]})
    wide = to_zscores(data, zscore_stats(pd.read_parquet(scores), objectives))
    return select_configs(objectives_table(wide, pairs, axes), axes)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evals", nargs="+", required=True, help="the validation CSVs of every run")
    p.add_argument("--scores", required=True, help="the training completions' scores (the z-score scale)")
    p.add_argument("--pairs-json", required=True, help="the training pairs")
    p.add_argument("--axes", nargs="+", required=True, help="the evaluation axes")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    write_selection(a.out, "armorm", GROUP, select(a.evals, a.scores, json.loads(a.pairs_json), a.axes))


if __name__ == "__main__":
    run(main)
