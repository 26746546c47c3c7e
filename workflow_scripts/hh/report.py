"""HH-Alignment report: Pareto front, alpha sweep, data scale, table (SPEC 5.3).

Inputs are the evaluation jobs' scored samples (every run and the SFT policy, validation and test
prompts), the training completions of each policy (their statistics put the two objectives on one
scale: z-scores w.r.t. the SFT policy's own responses to the training prompts) and the preference
summaries (the number of training pairs of each data scale).

Per run: the mean z_helpful and z_harmless of its responses; for each alpha of the grid the mean
``r(alpha) = alpha z_helpful + (1 - alpha) z_harmless``, its worst case over alpha, and the **win
rate against SFT** under alpha (per prompt, the policy's mean r(alpha) against the SFT policy's on
the same prompt and seed; a tie counts one half). Selection (SPEC 5.5): per policy, aggregation,
data scale and variant, the radius and eta/beta with the best worst case over alpha on the
**validation** prompts; everything reported is on the **test** prompts, mean +- std over seeds.

Outputs: ``{table}.csv|md|tex``; figures ``{pareto}``, ``{alpha_sweep}``, ``{scale}`` (.pdf, .png).
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workflow_scripts.core.cli import run
from workflow_scripts.core.report.aggregate import over_seeds, sort_runs
from workflow_scripts.core.report.selection import (REPORTED_SPLIT, SELECTION_SPLIT, mark_selected, select_best,
                                                    split_rows)
from workflow_scripts.core.report.style import SFT_COLOR, VARIANT_COLORS, line_style
from workflow_scripts.core.report.tables import fmt_hparam, fmt_variant, save_figure, write_table
from workflow_scripts.core.report.training import add_training_curves_args, load_histories, plot_training_curves
from workflow_scripts.core.zscores import zscore_stats

log = logging.getLogger("workflow_scripts.hh.report")

OBJECTIVES = ("helpful", "harmless")
RUN = ["split", "policy", "aggregation", "scale", "variant", "radius", "hp", "seed"]
CELL = ["policy", "aggregation", "scale", "variant", "radius", "hp"]
GROUP = ["policy", "aggregation", "scale", "variant"]
#: How each aggregation is named in tables and figures. "cvar" is set by :func:`name_cvar_level` (the report's
#: --cvar-q): CVaR is meaningless without its level (CVaR_0.75 of two objectives is 2/3 min + 1/3 max; AT-PRMD's
#: CVaR_0.1 is the minimum).
AGGREGATION_NAMES = {"mixture": "mixture", "hard_min": "hard-min", "cvar": "CVaR₀.₇₅", "": ""}
MARKERS = {"mixture": "o", "hard_min": "s", "cvar": "^"}
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def name_cvar_level(q: float) -> str:
    """``CVaR₀.₇₅`` for q = 0.75: the name the cvar aggregation carries in this report."""
    AGGREGATION_NAMES["cvar"] = "CVaR" + f"{q:g}".translate(_SUBSCRIPT)
    return AGGREGATION_NAMES["cvar"]


def fmt_run(variant: str, aggregation: str) -> str:
    """``"DPO · hard-min"``: a variant and the aggregation of the preference data it trained on."""
    return fmt_variant(variant) if not aggregation else f"{fmt_variant(variant)} · {AGGREGATION_NAMES[aggregation]}"


def scale_key(scale: str) -> float:
    return float("inf") if str(scale) in ("all", "0", "") else float(scale)


# ----------------------------------------------------------------------------- per-run numbers
def load_samples(paths: Sequence[str | Path], training: dict[str, str]) -> pd.DataFrame:
    """Scored samples of every run, each objective as a z-score w.r.t. its policy's training completions."""
    frames = [pd.read_parquet(p) for p in paths]
    if not frames:
        raise ValueError("no evaluation samples given.")
    data = pd.concat(frames, ignore_index=True)
    for column in ("variant", "radius", "hp", "policy", "aggregation", "scale", "split"):
        data[column] = data[column].astype(str)
    return add_zscores(data, training)


def add_zscores(data: pd.DataFrame, training: dict[str, str]) -> pd.DataFrame:
    """``z_<objective>`` columns: each row's raw rewards as z-scores w.r.t. its policy's training completions
    (a column ``policy``; ``training`` maps policy -> its completions parquet). Samples or per-run means alike."""
    missing = sorted(set(data["policy"]) - set(training))
    if missing:
        raise ValueError(f"no training completions for policy(ies) {missing} (the z-score scale).")
    for policy, path in training.items():
        stats = zscore_stats(pd.read_parquet(path), OBJECTIVES)
        rows = data["policy"] == policy
        for o in OBJECTIVES:
            s = stats[o]
            data.loc[rows, f"z_{o}"] = 0.0 if s["std"] <= 0 else (data.loc[rows, o] - s["mean"]) / s["std"]
    return data


def run_table(samples: pd.DataFrame, alphas: Sequence[float], alpha0: float) -> pd.DataFrame:
    """One row per run (split, policy, aggregation, scale, variant, radius, hp, seed): mean z-scores,
    r(alpha) for each alpha, mean and worst over alpha, win rates against SFT (at alpha0 and the worst)."""
    per_prompt = (samples.groupby(RUN + ["prompt_idx"], sort=False)[["z_helpful", "z_harmless"]].mean()
                  .reset_index())
    sft = per_prompt[per_prompt["variant"] == "sft"].set_index(["split", "policy", "seed", "prompt_idx"])
    rows = []
    for key, g in per_prompt.groupby(RUN, sort=False):
        row = dict(zip(RUN, key))
        row["z_helpful"], row["z_harmless"] = float(g["z_helpful"].mean()), float(g["z_harmless"].mean())
        curve = [a * row["z_helpful"] + (1 - a) * row["z_harmless"] for a in alphas]
        row.update({f"r_{a:g}": r for a, r in zip(alphas, curve)})
        row["mean_alpha"], row["worst_alpha"] = float(np.mean(curve)), float(np.min(curve))
        base = sft.reindex(pd.MultiIndex.from_arrays([g["split"], g["policy"], g["seed"], g["prompt_idx"]]))
        wins = []
        for a in alphas:
            mine = a * g["z_helpful"].to_numpy() + (1 - a) * g["z_harmless"].to_numpy()
            theirs = a * base["z_helpful"].to_numpy() + (1 - a) * base["z_harmless"].to_numpy()
            wins.append(float(np.mean(np.where(mine > theirs, 1.0, np.where(mine == theirs, 0.5, 0.0)))))
        row["win_rate_alpha0"] = wins[int(np.argmin([abs(a - alpha0) for a in alphas]))]
        row["win_rate_worst"] = float(np.min(wins))
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds per (policy, aggregation, scale, variant, radius, hp), canonical order."""
    columns = ["z_helpful", "z_harmless", "mean_alpha", "worst_alpha", "win_rate_alpha0", "win_rate_worst"]
    table = over_seeds(runs, CELL, columns)
    table = table.assign(_a=table["aggregation"].map(lambda a: list(AGGREGATION_NAMES).index(a)),
                         _s=table["scale"].map(scale_key))
    return sort_runs(table, first=["policy", "_a", "_s"]).drop(columns=["_a", "_s"])


def select_configs(validation: pd.DataFrame) -> pd.DataFrame:
    """Per policy, aggregation, data scale and variant: the radius and eta/beta with the best worst case
    over alpha on VALIDATION (mean over seeds)."""
    return select_best(validation.assign(score=validation["worst_alpha_mean"]), GROUP)


# ----------------------------------------------------------------------------- figures
def _selected_rows(table: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    return table.merge(chosen[CELL], on=CELL, how="inner")


def pareto_front(points: np.ndarray) -> np.ndarray:
    """The non-dominated points (both coordinates maximised), sorted by the first coordinate: no other point is
    at least as good in both and better in one."""
    points = np.asarray(points, dtype=float)
    keep = [i for i, p in enumerate(points)
            if not any((q >= p).all() and (q > p).any() for j, q in enumerate(points) if j != i)]
    front = points[keep]
    return front[np.argsort(front[:, 0], kind="stable")]


def _panel_per_policy(policies: Sequence[str], height: float, draw_panel, stem, suptitle: str = "") -> dict:
    """One figure, a panel per policy side by side (5.6 x ``height`` inches each), drawn by
    ``draw_panel(ax, policy)``, under an optional ``suptitle``; saved as ``stem`` .pdf and .png."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.05):
        fig, axes = plt.subplots(1, len(policies), figsize=(5.6 * len(policies), height), squeeze=False)
        try:
            for ax, policy in zip(axes[0], policies):
                draw_panel(ax, policy)
            if suptitle:
                fig.suptitle(suptitle, fontsize=8)
            fig.tight_layout()
            return save_figure(fig, stem)
        finally:
            plt.close(fig)


def plot_pareto(table: pd.DataFrame, chosen: pd.DataFrame, stem) -> dict:
    policies = list(dict.fromkeys(table["policy"]))
    largest = {p: max(table.loc[(table["policy"] == p) & (table["variant"] != "sft"), "scale"], key=scale_key)
               for p in policies}

    def draw_panel(ax, policy: str) -> None:
        rows = _selected_rows(table[table["policy"] == policy], chosen)
        rows = rows[rows["scale"] == largest[policy]]
        for _, r in rows.iterrows():
            ax.errorbar(r["z_helpful_mean"], r["z_harmless_mean"], xerr=r["z_helpful_std"],
                        yerr=r["z_harmless_std"], fmt=MARKERS.get(r["aggregation"], "o"), ms=7,
                        color=VARIANT_COLORS.get(r["variant"], "black"), capsize=2,
                        label=fmt_run(r["variant"], r["aggregation"]))
        sft = table[(table["policy"] == policy) & (table["variant"] == "sft")]
        if not sft.empty:
            s = sft.iloc[0]
            ax.errorbar(s["z_helpful_mean"], s["z_harmless_mean"], xerr=s["z_helpful_std"],
                        yerr=s["z_harmless_std"], fmt="*", ms=13, color=SFT_COLOR, label="SFT")
        points = pd.concat([rows, sft])[["z_helpful_mean", "z_harmless_mean"]].to_numpy(dtype=float)
        front = pareto_front(points)
        if len(front) > 1:
            ax.step(front[:, 0], front[:, 1], where="post", color="0.25", lw=1.0, ls=":", zorder=0,
                    label="Pareto front")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlabel("mean z helpful (test prompts)")
        ax.set_ylabel("mean z harmless")
        ax.set_title(f"{policy}: {largest[policy]} training pairs" if largest[policy] != "all"
                     else f"{policy}: all training pairs", fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="best")

    return _panel_per_policy(policies, 4.8, draw_panel, stem, suptitle=(
        "Helpfulness vs harmlessness (z-scores w.r.t. the SFT policy's training responses);\n"
        "radius and η/β chosen on validation; error bars ±1 std over seeds; dotted: the Pareto front of the "
        "points shown"))


def plot_alpha_sweep(table: pd.DataFrame, chosen: pd.DataFrame, alphas: Sequence[float], alpha0: float, stem) -> dict:
    def draw_panel(ax, policy: str) -> None:
        part = table[table["policy"] == policy]
        largest = max(part.loc[part["variant"] != "sft", "scale"], key=scale_key)
        rows = _selected_rows(part, chosen)
        rows = pd.concat([rows[rows["scale"] == largest], part[part["variant"] == "sft"]])
        for _, r in rows.iterrows():
            y = [a * r["z_helpful_mean"] + (1 - a) * r["z_harmless_mean"] for a in alphas]
            sft = r["variant"] == "sft"
            ax.plot(alphas, y, color=SFT_COLOR if sft else VARIANT_COLORS.get(r["variant"], "black"),
                    ls="--" if sft else line_style(r["variant"]), marker=None if sft else
                    MARKERS.get(r["aggregation"], "o"), ms=4, lw=1.5,
                    label="SFT" if sft else fmt_run(r["variant"], r["aggregation"]))
        ax.axvline(alpha0, color="black", ls=":", lw=1.2, label=f"α₀ = {alpha0:g}")
        ax.set_xlabel("α: weight on helpful (1 − α on harmless)")
        ax.set_ylabel("mean r(α) (test prompts)")
        ax.set_title(policy, fontsize=9)
        ax.legend(fontsize=7, frameon=False)

    return _panel_per_policy(list(dict.fromkeys(table["policy"])), 4.2, draw_panel, stem)


def plot_scale(table: pd.DataFrame, chosen: pd.DataFrame, n_pairs: dict, stem) -> dict:
    def draw_panel(ax, policy: str) -> None:
        rows = _selected_rows(table[table["policy"] == policy], chosen)
        for (variant, aggregation), g in rows.groupby(["variant", "aggregation"], sort=False):
            g = g.assign(n=g["scale"].map(lambda s: n_pairs.get(str(s), np.nan))).sort_values("n")
            ax.errorbar(g["n"], g["worst_alpha_mean"], yerr=g["worst_alpha_std"], capsize=2,
                        color=VARIANT_COLORS.get(variant, "black"), ls=line_style(variant),
                        marker=MARKERS.get(aggregation, "o"), label=fmt_run(variant, aggregation))
        sft = table[(table["policy"] == policy) & (table["variant"] == "sft")]
        if not sft.empty:
            ax.axhline(sft.iloc[0]["worst_alpha_mean"], color=SFT_COLOR, ls="--", label="SFT")
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_ylabel("worst case over α of mean r(α) (test)")
        ax.set_title(policy, fontsize=9)
        ax.legend(fontsize=7, frameon=False)

    return _panel_per_policy(list(dict.fromkeys(table["policy"])), 4.2, draw_panel, stem)


# ----------------------------------------------------------------------------- the report
TABLE_COLUMNS = {"policy": "Policy", "aggregation": "Preferences", "scale": "Pairs", "variant": "Variant",
                 "radius": "Radius", "hp": "η / β", "n_seeds": "Seeds (n)", "z_helpful": "z helpful",
                 "z_harmless": "z harmless", "mean_alpha": "Mean over α", "worst_alpha": "Worst over α",
                 "win_rate_alpha0": "Win rate vs SFT (α₀)", "win_rate_worst": "Worst win rate",
                 "validation_score": "Validation (selection)", "selected": "Selected"}


def run_group(policy, aggregation, scale) -> str:
    """The label of one (policy, preferences, data scale): a row of the training-curves figure."""
    return f"{policy} · {AGGREGATION_NAMES.get(aggregation, aggregation)} · {scale} pairs"


def plot_training(histories: Sequence[str | Path], chosen: pd.DataFrame, stem) -> dict:
    """The selected runs' training curves, one row per (policy, preferences, data scale). Paths are
    ``.../<policy>/align/<aggregation>/<scale>/<variant>/<radius>/<hp>/<seed>/history.csv``."""
    frames = load_histories(histories, group="group", label=lambda parts: run_group(parts[-9], parts[-7], parts[-6]))
    selected = chosen.assign(group=[run_group(r.policy, r.aggregation, r.scale) for r in chosen.itertuples()])
    return plot_training_curves(frames, selected, stem, group="group",
                                title="HH: training curves of each variant at its selected radius / η, β")


def build_report(samples, training, summaries, alphas, alpha0, table_stem, pareto, alpha_sweep, scale,
                 histories=(), training_figure=None, cvar_q: float = 0.75):
    name_cvar_level(cvar_q)
    data = load_samples(samples, training)
    runs = run_table(data, alphas, alpha0)
    validation = summary_table(split_rows(runs, SELECTION_SPLIT))
    chosen = select_configs(validation)
    table = summary_table(split_rows(runs, REPORTED_SPLIT))
    table = table.merge(validation.rename(columns={"worst_alpha_mean": "validation_score"})[CELL + ["validation_score"]],
                        on=CELL, how="left")
    table["selected"] = mark_selected(table, chosen, GROUP)
    write_table(table, table_stem, columns=TABLE_COLUMNS,
                formatters={"variant": fmt_variant, "hp": fmt_hparam, "aggregation": lambda a: AGGREGATION_NAMES[a],
                            "scale": str, "selected": lambda x: "✓" if x else ""},
                count_column="n_seeds", precision=3)
    n_pairs = {}
    for path in summaries:
        s = json.loads(Path(path).read_text())
        n_pairs[str(s["scale"] or "all")] = s["n_pairs"]
    plot_pareto(table, chosen, pareto)
    plot_alpha_sweep(table, chosen, alphas, alpha0, alpha_sweep)
    plot_scale(table, chosen, n_pairs, scale)
    if training_figure is not None:
        plot_training(histories, chosen, training_figure)
    log.info("hh report: %d runs, %d table rows; selected on validation: %s", len(runs), len(table),
             ", ".join(f"{fmt_run(r.variant, r.aggregation)}@{r.scale}={r.radius}/{r.hp}" for r in chosen.itertuples()))
    return table, chosen


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m workflow_scripts.hh.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", nargs="+", required=True, help="the evaluation jobs' scored samples (parquet)")
    p.add_argument("--training", nargs="+", required=True, metavar="POLICY=PARQUET",
                   help="each policy's training completions (the z-score scale)")
    p.add_argument("--summaries", nargs="+", required=True, help="preference summaries (pairs per data scale)")
    p.add_argument("--alphas", nargs="+", type=float, required=True)
    p.add_argument("--alpha0", type=float, required=True)
    p.add_argument("--cvar-q", type=float, default=0.75, help="the level of the cvar preferences (in every label)")
    p.add_argument("--table", required=True)
    p.add_argument("--pareto", required=True)
    p.add_argument("--alpha-sweep", required=True)
    p.add_argument("--scale", required=True)
    add_training_curves_args(p, "--training-figure")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    training = dict(item.split("=", 1) for item in a.training)
    build_report(a.samples, training, a.summaries, a.alphas, a.alpha0, a.table, a.pareto, a.alpha_sweep, a.scale,
                 a.histories, a.training_figure, a.cvar_q)
    return 0


if __name__ == "__main__":
    run(main)
