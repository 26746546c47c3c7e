"""ArmoRM multi-objective report: spider (radar) plots, alpha sweep and objectives table (SPEC 5.2).

Inputs are the per-run evaluation CSVs of :mod:`workflow_scripts.armorm.evaluate` (long format:
``variant, radius, hp, seed, pair, split, objective, value, n``; the base policy has
``variant=sft``, ``hp=sft`` and an empty ``pair``) and the training split's scores, which fix the scale: every objective is
reported as a **z-score w.r.t. the base policy's training completions** (the same mean and
standard deviation the preference pairs were built with), so 0 is the base policy's level on
the training prompts and one unit is one standard deviation of that objective. Means over
completions commute with this affine map, so nothing is lost.

Selection (SPEC 5.5): per training pair and variant, the radius and base hyperparameter with the
highest mean over the evaluation axes on the **validation** prompts (held out of the training
prompts); everything below reports the **test** prompts.

Outputs:

``{table}.csv|.md|.tex``
    One row per (training pair, variant, radius, hp) on the test prompts, the base policy (SFT)
    first in each pair, ``validation_score`` (the selection criterion) and ``selected``: each
    evaluation axis, ``trained_mix`` (the training mixture ``w1 z1 + w2 z2`` of the pair's own
    objectives) and ``worst_unseen`` (per seed, the minimum over the axes that are not one of the
    pair's objectives), each as mean and sample std over seeds (``<name>_mean``/``<name>_std``).

``{spider}.pdf|.png``
    One radar panel per training pair, one axis per evaluation objective (unseen ones marked
    "(unseen)"), one polygon per variant at its best radius (highest mean over the axes,
    averaged over seeds; ties: smallest radius), the base policy dashed grey.

``{alpha_sweep}.pdf|.png``
    One panel per training pair: mean ``r*(alpha) = alpha z1 + (1 - alpha) z2`` of each
    variant's generations for the evaluation alphas, the training alpha0 = w1 / (w1 + w2) dotted.

    python -m workflow_scripts.armorm.report --inputs eval/*.csv --scores scores/train.parquet --pairs-json '[...]' \
        --axes helpsteer-helpfulness ... ArmoRM --alphas 0 0.1 0.3 0.5 0.7 0.9 1 \
        --spider figures/armorm_spider --alpha-sweep figures/armorm_alpha_sweep --table tables/armorm_objectives
"""
from __future__ import annotations

import argparse
import json
import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from workflow_scripts.core.cli import run
from workflow_scripts.core.report.aggregate import over_seeds, sort_runs
from workflow_scripts.core.report.selection import (REPORTED_SPLIT, SELECTION_SPLIT, mark_selected, select_best,
                                                    split_rows)
from workflow_scripts.core.report.style import SFT_COLOR, VARIANT_COLORS, line_style
from workflow_scripts.core.report.tables import (VARIANT_ORDER, fmt_hparam, fmt_variant, save_figure,
                                                 variant_sort_key, write_table)
from workflow_scripts.core.report.training import add_training_curves_args, load_histories, plot_training_curves

log = logging.getLogger("workflow_scripts.armorm.report")

REQUIRED_COLUMNS = ("variant", "radius", "hp", "seed", "pair", "split", "objective", "value")
RUN_KEYS = ["split", "pair", "variant", "radius", "hp", "seed"]
CELL_KEYS = ["pair", "variant", "radius", "hp"]
#: What the figures show, said under them (as the title of their common legend).
SPIDER_CAPTION = ("mean z-score w.r.t. the base policy's completions on the training prompts (black ring: 0, their "
                  "mean); test prompts; each variant at the radius and η/β chosen on the VALIDATION prompts (highest "
                  "mean over the axes, averaged over seeds); (unseen): not an objective of the training pair")
ALPHA_SWEEP_CAPTION = ("r*(α) = α z₁ + (1 − α) z₂ of the training pair's objectives (z-scores w.r.t. the base "
                       "policy's training completions), test prompts; radius and η/β per variant chosen on "
                       "validation, as in the spider plot; bands: ±1 std over seeds")


# ----------------------------------------------------------------------------- loading
def load_inputs(paths: Sequence[str | Path]) -> pd.DataFrame:
    if not paths:
        raise ValueError("no evaluation CSVs given.")
    frames = []
    for path in paths:
        df = pd.read_csv(path, dtype={"variant": str, "radius": str, "hp": str, "pair": str, "split": str},
                         keep_default_na=False)
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}.")
        unknown = sorted(set(df["variant"]) - set(VARIANT_ORDER))
        if unknown:
            raise ValueError(f"{path}: unknown variant(s) {unknown}.")
        df["value"] = pd.to_numeric(df["value"], errors="coerce")
        if df["value"].isna().any():
            raise ValueError(f"{path}: non-numeric values.")
        frames.append(df[list(REQUIRED_COLUMNS)])
    data = pd.concat(frames, ignore_index=True)
    bad = sorted(set(data["split"]) - {SELECTION_SPLIT, REPORTED_SPLIT})
    if bad:
        raise ValueError(f"unknown evaluation split(s) {bad}; expected {SELECTION_SPLIT} and {REPORTED_SPLIT}.")
    dup = data.duplicated(subset=RUN_KEYS + ["objective"])
    if dup.any():
        raise ValueError(f"duplicate evaluation rows, e.g. {data[dup].iloc[0][RUN_KEYS].to_dict()}.")
    return data


def to_zscores(data: pd.DataFrame, stats: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Wide frame, one row per run, one column per objective, in z-units of the training scores."""
    wide = data.pivot_table(index=RUN_KEYS, columns="objective", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    for objective, s in stats.items():
        if objective in wide.columns:
            wide[objective] = (wide[objective] - s["mean"]) / s["std"] if s["std"] > 0 else 0.0
    return wide


def runs_for_pair(wide: pd.DataFrame, pair: str) -> pd.DataFrame:
    """The pair's runs plus the base policy's (``pair`` empty)."""
    runs = wide[(wide["pair"] == pair) | ((wide["variant"] == "sft") & (wide["pair"] == ""))].copy()
    runs["pair"] = pair
    return runs


# ----------------------------------------------------------------------------- table
def objectives_table(wide: pd.DataFrame, pairs: Sequence[dict], axes: Sequence[str]) -> pd.DataFrame:
    rows = []
    for spec in pairs:
        runs = runs_for_pair(wide, spec["name"])
        o1, o2 = spec["objectives"]
        w1, w2 = spec["weights"]
        unseen = [a for a in axes if a not in (o1, o2)]
        runs["trained_mix"] = w1 * runs[o1] + w2 * runs[o2]
        runs["worst_unseen"] = runs[unseen].min(axis=1) if unseen else np.nan
        rows.append(sort_runs(over_seeds(runs, CELL_KEYS, [*axes, "trained_mix", "worst_unseen"])))
    return pd.concat(rows, ignore_index=True)


def selection_scores(table: pd.DataFrame, axes: Sequence[str]) -> pd.Series:
    """The selection criterion: the mean over the evaluation axes of the seed means."""
    return table[[f"{a}_mean" for a in axes]].mean(axis=1)


def select_configs(validation_table: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """Per (pair, variant), the (radius, hp) with the highest :func:`selection_scores` on VALIDATION."""
    return select_best(validation_table.assign(score=selection_scores(validation_table, axes)), ["pair", "variant"])


# ----------------------------------------------------------------------------- figures
def _pair_title(spec: dict) -> str:
    (o1, o2), (w1, w2) = spec["objectives"], spec["weights"]
    how = "online runner on" if spec.get("regime") == "online" else "trained on"
    return f"{how} {w1:g}·{o1}\n+ {w2:g}·{o2}"


def fmt_pair(name: str) -> str:
    """``"o1 + o2"``, and ``"o1 + o2 (online)"`` for the online runner's runs."""
    return name.replace("+", " + ").replace("@online", " (online)")


def _legend_label(variant: str, best: dict) -> str:
    """``"KL-DPO (ρ=0.05, β=0.01)"`` when the variant has the same selection in every panel, else the name."""
    picks = {rh for (_, v), rh in best.items() if v == variant}
    if len(picks) != 1:
        return fmt_variant(variant)
    radius, hp = picks.pop()
    robust = "" if variant in ("rebel", "dpo") else f"ρ={radius}, "
    return f"{fmt_variant(variant)} ({robust}{fmt_hparam(hp)})"


def _legend_title(text: str, n_panels: int) -> str:
    return "\n".join(textwrap.fill(part, width=max(80, 70 * n_panels)) for part in text.split("\n"))


def _legend_below_and_save(fig, handles: list[Line2D], top: float, caption: str, n_panels: int,
                           stem) -> dict[str, Path]:
    """Lay the panels out, put one legend for all of them below (its top at height ``top`` of the figure),
    titled by the figure's ``caption`` wrapped to the figure's width, and save the figure."""
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, top), ncol=min(5, len(handles)),
               frameon=False, fontsize="small", title_fontsize="small", title=_legend_title(caption, n_panels))
    return save_figure(fig, stem)


def _variants_in(table: pd.DataFrame, pair: str) -> list[str]:
    present = table.loc[(table["pair"] == pair) & (table["variant"] != "sft"), "variant"].unique()
    return sorted(present, key=variant_sort_key)


def plot_spider(table: pd.DataFrame, pairs: Sequence[dict], axes: Sequence[str], best: dict, stem) -> dict[str, Path]:
    n = len(pairs)
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    values = table[[f"{a}_mean" for a in axes]].to_numpy(dtype=float)
    lo, hi = np.nanmin(values), np.nanmax(values)
    pad = 0.15 * max(hi - lo, 1e-6)
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.0):
        fig = plt.figure(figsize=(5.2 * n, 5.6))
        try:
            handles: dict[str, Line2D] = {}
            for k, spec in enumerate(pairs):
                ax = fig.add_subplot(1, n, k + 1, projection="polar")
                ax.set_theta_offset(np.pi / 2)
                ax.set_theta_direction(-1)
                ax.set_ylim(min(lo, 0.0) - pad, max(hi, 0.0) + pad)
                ring = np.linspace(0, 2 * np.pi, 200)
                ax.plot(ring, np.zeros_like(ring), color="black", lw=0.8, zorder=1.5)
                rows = table[table["pair"] == spec["name"]]
                sft = rows[rows["variant"] == "sft"]
                if not sft.empty:
                    v = sft[[f"{a}_mean" for a in axes]].to_numpy(dtype=float)[0]
                    ax.plot(closed, np.concatenate([v, v[:1]]), color=SFT_COLOR, ls="--", lw=1.5, zorder=2)
                    handles["sft"] = Line2D([], [], color=SFT_COLOR, ls="--", lw=1.5, label="SFT (base policy)")
                for variant in _variants_in(table, spec["name"]):
                    radius, hp = best[(spec["name"], variant)]
                    row = rows[(rows["variant"] == variant) & (rows["radius"] == radius) & (rows["hp"] == hp)]
                    v = row[[f"{a}_mean" for a in axes]].to_numpy(dtype=float)[0]
                    color = VARIANT_COLORS.get(variant, "black")
                    ls = line_style(variant)
                    ax.plot(closed, np.concatenate([v, v[:1]]), color=color, ls=ls, lw=1.6, marker="o", ms=3, zorder=3)
                    ax.fill(closed, np.concatenate([v, v[:1]]), color=color, alpha=0.04, zorder=1)
                    handles.setdefault(variant, Line2D([], [], color=color, ls=ls, lw=1.6, marker="o", ms=3,
                                                       label=_legend_label(variant, best)))
                seen = set(spec["objectives"])
                labels = [textwrap.fill(a.replace("-", "- ", 1), 14).replace("- ", "-") +
                          ("" if a in seen else "\n(unseen)") for a in axes]
                ax.set_xticks(angles)
                ax.set_xticklabels(labels, fontsize=8)
                for tick, a in zip(ax.get_xticklabels(), axes):
                    tick.set_color("black" if a in seen else "0.35")
                    tick.set_fontstyle("normal" if a in seen else "italic")
                ax.tick_params(axis="x", pad=10)
                # radial labels in the gap between the first two axes, on a white box: never on a polygon's edge
                ax.set_rlabel_position(float(np.degrees(angles[1] / 2)))
                ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
                ax.tick_params(axis="y", labelsize=6, colors="0.35")
                for label in ax.get_yticklabels():
                    label.set_bbox({"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})
                ax.set_title(_pair_title(spec), fontsize=9, pad=26)
            order = sorted(handles, key=variant_sort_key)
            return _legend_below_and_save(fig, [handles[v] for v in order], 0.02, SPIDER_CAPTION, n, stem)
        finally:
            plt.close(fig)


def alpha_curves(wide: pd.DataFrame, spec: dict, alphas: Sequence[float]) -> pd.DataFrame:
    """Per (variant, radius, hp, alpha): r*(alpha) = alpha z1 + (1 - alpha) z2 of the pair's objectives,
    mean / std / n over seeds."""
    runs = runs_for_pair(wide, spec["name"])
    o1, o2 = spec["objectives"]
    long = pd.concat([runs.assign(alpha=float(a), value=a * runs[o1] + (1 - a) * runs[o2]) for a in alphas])
    curves = over_seeds(long, ["variant", "radius", "hp", "alpha"], ["value"])
    return curves.rename(columns={"value_mean": "mean", "value_std": "std", "n_seeds": "n"})


def plot_alpha_sweep(wide: pd.DataFrame, table: pd.DataFrame, pairs: Sequence[dict], alphas: Sequence[float],
                     best: dict, stem) -> dict[str, Path]:
    n = len(pairs)
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.05):
        fig, axs = plt.subplots(1, n, figsize=(5.0 * n, 4.0), squeeze=False)
        try:
            handles: dict[str, Line2D] = {}
            for ax, spec in zip(axs[0], pairs):
                curves = alpha_curves(wide, spec, alphas)
                (o1, o2), (w1, w2) = spec["objectives"], spec["weights"]
                alpha0 = w1 / (w1 + w2)
                sft = curves[curves["variant"] == "sft"]
                if not sft.empty:
                    ax.plot(sft["alpha"], sft["mean"], color=SFT_COLOR, ls="--", lw=1.5, zorder=2)
                    handles["sft"] = Line2D([], [], color=SFT_COLOR, ls="--", lw=1.5, label="SFT (base policy)")
                for variant in _variants_in(table, spec["name"]):
                    radius, hp = best[(spec["name"], variant)]
                    c = curves[(curves["variant"] == variant) & (curves["radius"] == radius) & (curves["hp"] == hp)]
                    color = VARIANT_COLORS.get(variant, "black")
                    ls = line_style(variant)
                    ax.plot(c["alpha"], c["mean"], color=color, ls=ls, lw=1.6, marker="o", ms=3.5, zorder=3)
                    if (c["n"] > 1).any():
                        ax.fill_between(c["alpha"], c["mean"] - c["std"], c["mean"] + c["std"], color=color,
                                        alpha=0.15, lw=0)
                    handles.setdefault(variant, Line2D([], [], color=color, ls=ls, lw=1.6, marker="o", ms=3.5,
                                                       label=_legend_label(variant, best)))
                ax.axvline(alpha0, color="black", ls=":", lw=1.3, zorder=1)
                handles["alpha0"] = Line2D([], [], color="black", ls=":", lw=1.3, label="α₀ (training weight)")
                ax.set_xticks(list(alphas))
                ax.set_xlabel(f"α: weight on {o1}\n(1 − α on {o2})", fontsize=8)
                ax.set_ylabel("mean r*(α) (z-score)")
                ax.set_title(_pair_title(spec), fontsize=9)
            order = sorted((k for k in handles if k != "alpha0"), key=variant_sort_key) + ["alpha0"]
            return _legend_below_and_save(fig, [handles[k] for k in order], 0.0, ALPHA_SWEEP_CAPTION, n, stem)
        finally:
            plt.close(fig)


# ----------------------------------------------------------------------------- CLI
def table_columns(axes: Sequence[str]) -> dict[str, str]:
    return {"pair": "Training pair", "variant": "Variant", "radius": "Radius", "hp": "η / β", "n_seeds": "Seeds (n)",
            **{a: a for a in axes}, "trained_mix": "Trained mix", "worst_unseen": "Worst unseen",
            "validation_score": "Validation (selection)", "selected": "Selected"}


def build_report(inputs, scores_path, pairs, axes, alphas, spider, alpha_sweep, table_stem, histories=(),
                 training=None):
    from workflow_scripts.core.zscores import zscore_stats

    data = load_inputs(inputs)
    scores = pd.read_parquet(scores_path)
    objectives = sorted(set(axes) | {o for p in pairs for o in p["objectives"]})
    stats = zscore_stats(scores, objectives)
    wide = to_zscores(data, stats)
    missing = [o for o in objectives if o not in wide.columns]
    if missing:
        raise ValueError(f"evaluation CSVs lack objective(s) {missing}.")
    validation = objectives_table(split_rows(wide, SELECTION_SPLIT), pairs, axes)
    chosen = select_configs(validation, axes)
    best = {(row.pair, row.variant): (row.radius, row.hp) for row in chosen.itertuples()}
    test = split_rows(wide, REPORTED_SPLIT)
    table = objectives_table(test, pairs, axes)
    table = table.merge(validation.assign(validation_score=selection_scores(validation, axes))[
        CELL_KEYS + ["validation_score"]], on=CELL_KEYS, how="left")
    table["selected"] = mark_selected(table, chosen, ["pair", "variant"])
    write_table(table, table_stem, columns=table_columns(axes),
                formatters={"variant": fmt_variant, "pair": fmt_pair, "hp": fmt_hparam,
                            "selected": lambda x: "✓" if x else ""},
                count_column="n_seeds", precision=3)
    plot_spider(table, pairs, axes, best, spider)
    plot_alpha_sweep(test, table, pairs, alphas, best, alpha_sweep)
    if training is not None:
        plot_training_curves(load_histories(histories, group="pair"), chosen, training, group="pair",
                             title="ArmoRM: training curves of each variant at its selected radius / η, β, "
                                   "per training pair")
    log.info("armorm report: %d test runs, %d table rows; selected on validation: %s", len(test), len(table),
             ", ".join(f"{p}/{v}={r}/{h}" for (p, v), (r, h) in best.items()))
    return table, best


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m workflow_scripts.armorm.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inputs", nargs="+", required=True, help="evaluation CSVs")
    p.add_argument("--scores", required=True, help="training split scores (z-score statistics)")
    p.add_argument("--pairs-json", required=True, help='[{"name": ..., "objectives": [o1, o2], "weights": [w1, w2]}]')
    p.add_argument("--axes", nargs="+", required=True, help="evaluation objectives (spider axes, table columns)")
    p.add_argument("--alphas", nargs="+", type=float, required=True)
    p.add_argument("--spider", required=True, help="figure stem (.pdf, .png)")
    p.add_argument("--alpha-sweep", required=True, help="figure stem (.pdf, .png)")
    p.add_argument("--table", required=True, help="table stem (.csv, .md, .tex)")
    add_training_curves_args(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    build_report(a.inputs, a.scores, json.loads(a.pairs_json), a.axes, a.alphas, a.spider, a.alpha_sweep, a.table,
                 a.histories, a.training)
    return 0


if __name__ == "__main__":
    run(main)
