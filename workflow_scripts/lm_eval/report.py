"""The leaderboard stage's table and figure.

Per run (one lm-eval results file): the six benchmarks normalised as the OpenLLM Leaderboard v2 does
(:func:`workflow_scripts.lm_eval.normalize.leaderboard_scores`) and their average, plus every metric of
any other task (the mini preset's demo task: raw values). The table has one row per experiment,
training context (ArmoRM training pair; HH policy, aggregation and data scale) and variant, SFT first,
each cell mean +- std over seeds; the per-run values, raw leaderboard scores included, go to
``{table}_runs.csv``. The figure shows each variant's difference to SFT per benchmark (mean +- std over
seeds), one panel per training context.

    python -m workflow_scripts.lm_eval.report --results a/results.json ... --table tables/lm_eval_leaderboard \\
        --figure figures/lm_eval_vs_sft
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import setup_logging, write_frame_atomic
from workflow_scripts.core.report.aggregate import over_seeds
from workflow_scripts.core.report.style import VARIANT_COLORS
from workflow_scripts.core.report.tables import fmt_hparam, fmt_variant, save_figure, variant_sort_key, write_table
from workflow_scripts.lm_eval.normalize import BENCHMARKS, leaderboard_scores, task_scores

log = logging.getLogger("workflow_scripts.lm_eval.report")

#: What names a training context, per experiment (SFT records carry a subset: they match every context
#: that agrees on it, e.g. ArmoRM's base policy appears next to every training pair).
CONTEXT_KEYS = {"armorm": ("pair",), "hh": ("policy", "aggregation", "scale")}


def is_leaderboard(task: str) -> bool:
    return task.startswith("leaderboard")


def run_scores(record: dict) -> dict[str, float]:
    """One results file's numbers: leaderboard benchmarks (normalised, ``raw/...`` kept) when it ran any,
    and every metric of the other tasks that are not groups of other tasks."""
    results = record["results"]
    groups = {g for g, members in record.get("group_subtasks", {}).items() if members}
    scores: dict[str, float] = {}
    if any(is_leaderboard(t) for t in results):
        scores.update(leaderboard_scores(results))
    others = {t: m for t, m in results.items() if not is_leaderboard(t) and t not in groups}
    scores.update(task_scores(others))
    return scores


def load_runs(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per results file: its labels (experiment, context, variant, radius, hp, seed) and scores."""
    if not paths:
        raise ValueError("no lm-eval results given.")
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        if "dro_rebel" not in record or "results" not in record:
            raise ValueError(f"{path}: not a results file of workflow_scripts.lm_eval.run.")
        labels = record["dro_rebel"]
        keys = CONTEXT_KEYS[labels["experiment"]]
        rows.append({"experiment": labels["experiment"], **{k: str(labels.get(k, "")) for k in keys},
                     "variant": labels["variant"], "radius": str(labels.get("radius", "")),
                     "hp": str(labels.get("hp", "")), "seed": int(labels["seed"]), **run_scores(record)})
    return pd.DataFrame(rows)


def score_columns(runs: pd.DataFrame) -> list[str]:
    """The table's score columns: the leaderboard benchmarks that ran and their average, then other tasks'."""
    averages = sorted(c for c in runs.columns if c.startswith("Average"))     # by what each averages
    present = [b for b in (*BENCHMARKS, *averages) if b in runs and runs[b].notna().any()]
    others = sorted(c for c in runs.columns if "/" in c and not c.startswith("raw/"))
    return present + others


def with_contexts(runs: pd.DataFrame) -> pd.DataFrame:
    """Each run under its training context; an SFT run under every context of its experiment it matches."""
    out = []
    for experiment, part in runs.groupby("experiment", sort=False):
        keys = list(CONTEXT_KEYS[experiment])
        trained = part[part["variant"] != "sft"]
        contexts = trained[keys].drop_duplicates()
        for _, sft in part[part["variant"] == "sft"].iterrows():
            given = [k for k in keys if sft[k] != ""]
            match = contexts[(contexts[given] == sft[given]).all(axis=1)] if given else contexts
            for _, ctx in match.iterrows():
                out.append(sft.to_frame().T.assign(**{k: ctx[k] for k in keys}))
        out.append(trained)
    data = pd.concat(out, ignore_index=True)
    data["context"] = data.apply(lambda r: " · ".join(str(r[k]) for k in CONTEXT_KEYS[r["experiment"]]), axis=1)
    return data


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds per (experiment, context, variant); SFT first, variants in canonical order."""
    data = with_contexts(runs)
    columns = score_columns(runs)
    for c in columns:
        data[c] = pd.to_numeric(data[c])
    table = over_seeds(data, ["experiment", "context", "variant", "radius", "hp"], columns)
    order = {e: i for i, e in enumerate(dict.fromkeys(runs["experiment"]))}
    table = table.assign(_e=table["experiment"].map(order),
                         _v=table["variant"].map(lambda v: -1 if v == "sft" else variant_sort_key(v)[0]))
    return table.sort_values(["_e", "context", "_v"], kind="stable").drop(columns=["_e", "_v"]).reset_index(drop=True)


def figure_title(columns: Sequence[str]) -> str:
    """What the figure shows: the OpenLLM Leaderboard v2 only when its benchmarks are the columns, else the tasks."""
    leaderboard = [c for c in columns if c in BENCHMARKS]
    if leaderboard:
        missing = [b for b in BENCHMARKS if b not in leaderboard]
        return "OpenLLM Leaderboard v2 (lm-eval)" + (f", without {', '.join(missing)}" if missing else "")
    tasks = sorted({c.split("/")[0] for c in columns})
    return f"lm-eval task{'s' if len(tasks) > 1 else ''} {', '.join(tasks)}"


def plot_difference_to_sft(table: pd.DataFrame, columns: Sequence[str], stem) -> dict:
    """Per training context, each variant's (mean over seeds) minus SFT's, per benchmark; bars +- the variant's std."""
    contexts = list(dict.fromkeys(zip(table["experiment"], table["context"])))
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.0):
        fig, axes = plt.subplots(len(contexts), 1, figsize=(max(6.0, 1.3 * len(columns) + 2), 3.4 * len(contexts)),
                                 squeeze=False)
        try:
            for ax, (experiment, context) in zip(axes[:, 0], contexts):
                part = table[(table["experiment"] == experiment) & (table["context"] == context)]
                sft = part[part["variant"] == "sft"]
                variants = part[part["variant"] != "sft"]
                x = np.arange(len(columns))
                width = 0.8 / max(1, len(variants))
                for i, (_, row) in enumerate(variants.iterrows()):
                    base = sft.iloc[0] if len(sft) else None
                    diff = [row[f"{c}_mean"] - (base[f"{c}_mean"] if base is not None else math.nan) for c in columns]
                    err = [row[f"{c}_std"] if row["n_seeds"] > 1 else 0.0 for c in columns]
                    ax.bar(x - 0.4 + width * (i + 0.5), diff, width, yerr=err, capsize=2,
                           color=VARIANT_COLORS.get(row["variant"], "0.3"),
                           label=f"{fmt_variant(row['variant'])} ({row['radius']}, {fmt_hparam(row['hp'])})")
                ax.axhline(0.0, color="0.2", linewidth=0.8)
                ax.set_xticks(x, [c.replace("/", "\n") for c in columns], fontsize="small")
                ax.set_ylabel("difference to SFT")
                ax.set_title(f"{experiment}: {context}" if context else experiment, fontsize="medium")
                ax.legend(fontsize="x-small", ncol=min(4, max(1, len(variants))), frameon=False,
                          title="variant (radius, η/β selected on validation)", title_fontsize="x-small")
            fig.suptitle(f"{figure_title(columns)}: each variant minus the SFT policy; bars ±1 std over seeds",
                         fontsize="medium")
            fig.tight_layout()
            return save_figure(fig, stem)
        finally:
            plt.close(fig)


def build_report(paths, table_stem, figure_stem):
    runs = load_runs(paths)
    columns = score_columns(runs)
    if not columns:
        raise ValueError("the lm-eval results hold no numeric metric.")
    table = summary_table(runs)
    write_table(table, table_stem,
                columns={"experiment": "Experiment", "context": "Trained on", "variant": "Variant",
                         "radius": "Radius", "hp": "η / β", "n_seeds": "Seeds (n)"},
                formatters={"variant": fmt_variant, "hp": lambda h: fmt_hparam(h) if h != "sft" else ""},
                count_column="n_seeds", precision=2)
    write_frame_atomic(runs, f"{table_stem}_runs.csv")
    plot_difference_to_sft(table, columns, figure_stem)
    log.info("lm-eval report: %d runs, %d table rows, columns %s", len(runs), len(table), columns)
    return table


def main(argv=None):
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", nargs="+", required=True)
    p.add_argument("--table", required=True, help="stem of the table (.csv/.md/.tex) and of {stem}_runs.csv")
    p.add_argument("--figure", required=True, help="stem of the figure (.pdf/.png)")
    a = p.parse_args(argv)
    build_report(a.results, a.table, a.figure)


if __name__ == "__main__":
    run(main)
