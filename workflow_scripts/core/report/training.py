"""Training curves of the alignment runs (every experiment): what each job's ``history.csv`` logged.

One column of panels per logged metric (robust objective, mean per-sample loss, effective sample
size, largest weight's share, Wasserstein penalty, learning rate, and the online regime's mean
reward), one line per variant at its selected radius / hyperparameter, the mean over seeds with a
band of +-1 std; one row of panels per group (e.g. ArmoRM training pair), each row with its own
legend (groups may select different radii). A panel whose positive values span more than a factor
20 gets a log axis. Runs are identified by their path:
``.../align/[<group>/]<variant>/<radius>/<hp>/<seed>/history.csv``.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from workflow_scripts.core.report.style import DPO_FAMILY, VARIANT_COLORS
from workflow_scripts.core.report.tables import fmt_variant, save_figure

#: The metrics drawn, in panel order, with their axis labels; absent columns are skipped.
METRICS = {
    "objective": "robust objective",
    "mean_loss": "mean per-sample loss",
    "ess_fraction": "effective sample size / n",
    "max_weight": "largest weight (share)",
    "penalty": "Wasserstein penalty",
    "lr": "learning rate",
    "mean_reward": "mean reward (online samples)",
}


def add_training_curves_args(parser: argparse.ArgumentParser, figure_flag: str = "--training") -> None:
    """A report's flags for its optional training-curves figure: the runs' ``history.csv`` files and the
    figure's stem (``figure_flag``: the HH report's ``--training`` names its training completions)."""
    parser.add_argument("--histories", nargs="*", default=[], help="the alignment runs' history.csv files")
    parser.add_argument(figure_flag, help="training-curves figure stem (writes .pdf and .png)")


def load_histories(paths: Sequence[str | Path], group: str | None = None, label=None) -> pd.DataFrame:
    """Concatenate history CSVs, adding variant, radius, hp, seed (and ``group``) from each path. The group's
    value is the directory above the variant, or ``label(parts)`` of the path's parts."""
    frames = []
    for path in paths:
        parts = Path(path).parts
        frame = pd.read_csv(path)
        if frame.empty:
            raise ValueError(f"{path}: empty training history.")
        variant, radius, hp, seed = parts[-5:-1]
        frame = frame.assign(variant=variant, radius=radius, hp=hp, seed=int(seed))
        if group:
            frame[group] = label(parts) if label else parts[-6]
        frames.append(frame)
    if not frames:
        raise ValueError("no training histories given.")
    return pd.concat(frames, ignore_index=True)


def _label(variant: str, radius: str, hp: str) -> str:
    name, value = ("η", hp[3:]) if hp.startswith("eta") else ("β", hp[4:])
    robust = "" if variant in ("rebel", "dpo") else f"ρ={radius}, "
    return f"{fmt_variant(variant)} ({robust}{name}={value})"


def _spans_decades(ax, ratio: float = 20.0) -> bool:
    """Whether the panel's curves are all positive and their values span more than ``ratio`` (the smaller ones would
    look flat on a linear axis)."""
    import numpy as np

    values = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.array([])]).astype(float)
    values = values[np.isfinite(values)]
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > ratio


def plot_training_curves(histories: pd.DataFrame, selected: pd.DataFrame, stem, group: str | None = None,
                         title: str = "") -> dict:
    """Draw the curves of the ``selected`` runs (columns [group,] variant, radius, hp) to ``stem``.{pdf,png}."""
    metrics = [m for m in METRICS if m in histories.columns and histories[m].notna().any()]
    groups = list(dict.fromkeys(selected[group])) if group else [None]
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.0):
        fig, axes = plt.subplots(len(groups), len(metrics), figsize=(2.9 * len(metrics), 2.5 * len(groups) + 0.9),
                                 squeeze=False)
        try:
            handles = {}
            for row, g in enumerate(groups):
                chosen = selected if g is None else selected[selected[group] == g]
                for _, pick in chosen.iterrows():
                    runs = histories[(histories["variant"] == pick["variant"]) & (histories["radius"] == pick["radius"])
                                     & (histories["hp"] == pick["hp"])]
                    if g is not None:
                        runs = runs[runs[group] == g]
                    if runs.empty:
                        continue
                    color = VARIANT_COLORS.get(pick["variant"], "black")
                    style = "--" if pick["variant"] in DPO_FAMILY else "-"
                    for col, metric in enumerate(metrics):
                        curve = runs.groupby("step")[metric].agg(["mean", "std", "count"]).dropna(subset=["mean"])
                        if curve.empty:
                            continue
                        ax = axes[row, col]
                        line, = ax.plot(curve.index, curve["mean"], color=color, ls=style, lw=1.4)
                        if (curve["count"] > 1).any():
                            band = curve["std"].fillna(0.0).to_numpy()
                            ax.fill_between(curve.index, curve["mean"] - band, curve["mean"] + band, color=color,
                                            alpha=0.15, lw=0)
                        # one entry per (group, variant): each group may have chosen another radius / hp
                        handles.setdefault((g, pick["variant"]),
                                           (line, _label(pick["variant"], pick["radius"], pick["hp"])))
                for col, metric in enumerate(metrics):
                    ax = axes[row, col]
                    ax.set_title(METRICS[metric] if row == 0 else "", fontsize="small")
                    ax.set_xlabel("optimizer step" if row == len(groups) - 1 else "")
                    if col == 0 and g is not None:
                        ax.set_ylabel(str(g), fontsize="x-small")
                    if metric == "lr":
                        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
                    elif _spans_decades(ax):
                        ax.set_yscale("log")          # one variant's scale would flatten the others' curves
                if g is not None:                     # this group's selections, beside its row
                    row_handles = [h for (hg, _), h in handles.items() if hg == g]
                    axes[row, -1].legend([h[0] for h in row_handles], [h[1] for h in row_handles],
                                         loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
                                         fontsize="x-small")
            fig.tight_layout(rect=(0, 0.08 if group is None else 0, 1, 0.97 if title else 1))
            if title:
                fig.suptitle(title, fontsize="small")
            if group is None:
                lines = [h[0] for h in handles.values()]
                fig.legend(lines, [h[1] for h in handles.values()], loc="lower center",
                           ncol=min(4, max(1, len(lines))), frameon=False, fontsize="small")
            return save_figure(fig, stem)
        finally:
            plt.close(fig)
