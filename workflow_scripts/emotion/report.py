"""Emotion-alignment report: robustness table, alpha-sweep figure and training curves.

Inputs are the per-run evaluation CSVs (one per split x variant x radius x hp x seed, plus the
SFT baseline with ``variant="sft"``, ``radius="0"``, ``hp="sft"``), each with columns
``variant, radius, hp, seed, split, mixture, alpha, reward`` and one row per ``(mixture, alpha)``;
``reward`` is the mean r*(alpha) of the policy's generations on the split's held-out prompts.

Selection (SPEC 5.5): each variant's radius and base hyperparameter (REBEL's eta, DPO's beta) are
chosen on the **validation** rows only (``--selection worst``: the highest worst case over alpha,
averaged over seeds and both mixtures; ``mean``: the mean over alpha; ties: smallest radius, then
smallest hyperparameter). The table and figures report the **test** rows.

Outputs (nothing else is written; parent directories are created):

``{table}.csv|.md|.tex``
    One row per ``(variant, radius, hp)`` on the test split (SFT first). For every run the
    reward is summarised over the alpha grid by its **mean** and its **worst case** (min); these
    per-seed numbers are then aggregated over seeds as mean and sample std (``ddof=1``; ``0.0``
    with a single seed): ``<mixture>_<mean|worst>_<mean|std>``. ``validation_score`` is the
    selection criterion on validation and ``selected`` marks the chosen row of each variant.

``{figure}.pdf|.png``
    Two panels (convex, geometric): x = alpha, y = mean r*(alpha) on the test prompts, averaged
    over seeds with a +-1 std band; one curve per variant at its selected radius / hp, SFT dashed
    grey, a dotted line at the training weight alpha0.

``{training}.pdf|.png`` (optional)
    The selected runs' training curves (:mod:`.training`).

``{verdict}.csv|.md|.tex`` (optional)
    Per robust / base pair (W-REBEL vs REBEL, ..., chi2-DPO vs DPO) and mixture, each variant at its selected
    radius / hp: the difference in worst-case-over-alpha test reward, paired by seed (same preference data
    and evaluation prompts per seed): n, mean, sd, 95% t-interval, paired-t p-value, Holm's correction over
    all the table's comparisons, the simultaneous (Bonferroni) interval, the minimum detectable effect at
    80% power, and the verdict of the corrected test: ``better`` / ``worse`` (Holm p < 0.05, by the sign),
    ``same`` (not rejected), ``n/a`` with one seed (:mod:`workflow_scripts.core.report.stats`).

``{tilt}.csv|.md|.tex`` (optional)
    On the VALIDATION split, per (variant, radius, hp) and mixture: r*(alpha0), the worst case over alpha, and
    the tilt = r*(alpha0) - worst case (per seed, mean +- std): how far a policy leans towards its
    training mixture, i.e. whether there is anything to be robust against.

Usage::

    python -m workflow_scripts.emotion.report --inputs a.csv b.csv ... --alpha0 0.1 \
        --figure results/x/figures/emotion_alpha_sweep --table results/x/tables/emotion_robustness \
        [--histories align/*/*/*/*/history.csv --training results/x/figures/emotion_training]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from workflow_scripts.core.cli import run
from workflow_scripts.core.report import stats
from workflow_scripts.core.report.aggregate import over_seeds, sort_runs
from workflow_scripts.core.report.selection import (REPORTED_SPLIT, SELECTION_SPLIT, mark_selected, select_best,
                                                    split_rows)
from workflow_scripts.core.report.style import SFT_COLOR, VARIANT_COLORS, line_style
from workflow_scripts.core.report.tables import VARIANT_ORDER, fmt_hparam, fmt_variant, save_figure, write_table
from workflow_scripts.core.report.training import add_training_curves_args, load_histories, plot_training_curves

log = logging.getLogger("workflow_scripts.emotion.report")

REQUIRED_COLUMNS: tuple[str, ...] = ("variant", "radius", "hp", "seed", "split", "mixture", "alpha", "reward")
MIXTURES: tuple[str, ...] = ("convex", "geometric")
STATS: tuple[str, ...] = ("mean", "worst")
SELECTIONS: tuple[str, ...] = ("worst", "mean")
SPLITS: tuple[str, ...] = (SELECTION_SPLIT, REPORTED_SPLIT)
KNOWN_VARIANTS: frozenset[str] = frozenset(VARIANT_ORDER)
CELL_KEYS: list[str] = ["variant", "radius", "hp"]
RUN_KEYS: list[str] = CELL_KEYS + ["seed"]

TABLE_COLUMNS: dict[str, str] = {
    "variant": "Variant",
    "radius": "Radius",
    "hp": "η / β",
    "n_seeds": "Seeds (n)",
    "convex_mean": "Convex mean",
    "convex_worst": "Convex worst",
    "geometric_mean": "Geometric mean",
    "geometric_worst": "Geometric worst",
    "validation_score": "Validation (selection)",
    "selected": "Selected",
}


# --------------------------------------------------------------------------
# Loading / validation
# --------------------------------------------------------------------------
def _fail(path: object, msg: str) -> None:
    raise ValueError(f"{path}: {msg}")


def load_inputs(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read, validate and concatenate evaluation CSVs.

    Adds a ``source`` column (the file path).  Raises a one-line
    :class:`ValueError` naming the offending file when a column is missing,
    a required value is NaN/empty, or values are out of range; and when the
    concatenation has duplicate ``(variant, radius, seed, mixture, alpha)``
    rows, runs missing a mixture, or runs whose alpha grids differ.
    """
    if not paths:
        raise ValueError("no input CSVs given")
    frames = []
    for path in paths:
        try:
            df = pd.read_csv(
                path,
                dtype={"variant": str, "radius": str, "hp": str, "split": str, "mixture": str},
                keep_default_na=True,
            )
        except pd.errors.EmptyDataError:
            _fail(path, "file is empty (no header)")
        except FileNotFoundError:
            _fail(path, "file not found")
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            _fail(path, f"missing column(s) {', '.join(missing)} "
                        f"(have: {', '.join(map(str, df.columns))})")
        if df.empty:
            _fail(path, "no data rows")
        df = df[list(REQUIRED_COLUMNS)].copy()
        nan_cols = [c for c in REQUIRED_COLUMNS if df[c].isna().any()]
        if nan_cols:
            _fail(path, "NaN/empty value(s) in column(s) "
                        + ", ".join(f"{c} ({int(df[c].isna().sum())} rows)" for c in nan_cols))
        for c in ("variant", "radius", "hp", "split", "mixture"):
            df[c] = df[c].astype(str).str.strip()
        bad_split = sorted(set(df["split"]) - set(SPLITS))
        if bad_split:
            _fail(path, f"unknown split(s) {bad_split}; expected one of {list(SPLITS)}")
        unknown = sorted(set(df["variant"]) - KNOWN_VARIANTS)
        if unknown:
            _fail(path, f"unknown variant(s) {unknown}; expected one of {list(VARIANT_ORDER)}")
        bad_mix = sorted(set(df["mixture"]) - set(MIXTURES))
        if bad_mix:
            _fail(path, f"unknown mixture(s) {bad_mix}; expected one of {list(MIXTURES)}")
        radius_num = pd.to_numeric(df["radius"], errors="coerce")
        if radius_num.isna().any() or (radius_num < 0).any():
            bad = sorted(set(df.loc[radius_num.isna() | (radius_num < 0), "radius"]))
            _fail(path, f"radius must be a non-negative number, got {bad}")
        for c in ("seed", "alpha", "reward"):
            num = pd.to_numeric(df[c], errors="coerce")
            if num.isna().any() or not np.isfinite(num.to_numpy(dtype=float)).all():
                _fail(path, f"column {c} has non-numeric or non-finite value(s)")
            df[c] = num
        if not (df["seed"] == df["seed"].round()).all():
            _fail(path, "column seed has non-integer value(s)")
        df["seed"] = df["seed"].astype(int)
        if ((df["alpha"] < 0) | (df["alpha"] > 1)).any():
            _fail(path, "column alpha has value(s) outside [0, 1]")
        df["alpha"] = df["alpha"].astype(float)
        df["reward"] = df["reward"].astype(float)
        df["source"] = str(path)
        frames.append(df)

    data = pd.concat(frames, ignore_index=True)
    _check_consistency(data)
    return data


def _check_consistency(data: pd.DataFrame) -> None:
    key = ["split"] + RUN_KEYS + ["mixture", "alpha"]
    dup = data.duplicated(subset=key, keep=False)
    if dup.any():
        first = data[dup].iloc[0]
        files = sorted(set(data.loc[dup & (data[key] == first[key]).all(axis=1), "source"]))
        _fail(" & ".join(files),
              "duplicate row(s) for " + ", ".join(f"{k}={first[k]}" for k in key))
    present = sorted(set(data["mixture"]), key=MIXTURES.index)
    grids: dict[str, tuple[float, ...] | None] = {m: None for m in present}
    for run, g in data.groupby(["split"] + RUN_KEYS, sort=True):
        src = ", ".join(sorted(set(g["source"])))
        have = set(g["mixture"])
        lacking = [m for m in present if m not in have]
        if lacking:
            _fail(src, f"run split={run[0]} variant={run[1]} radius={run[2]} hp={run[3]} seed={run[4]} "
                       f"lacks mixture(s) {lacking} present in other inputs")
        for m in present:
            grid = tuple(np.round(np.sort(g.loc[g["mixture"] == m, "alpha"].to_numpy()), 9))
            if grids[m] is None:
                grids[m] = grid
            elif grid != grids[m]:
                _fail(src, f"alpha grid for mixture={m} {list(grid)} differs from "
                           f"other runs' {list(grids[m])}")


# --------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------
def per_seed_summary(data: pd.DataFrame) -> pd.DataFrame:
    """Per ``(variant, radius, seed, mixture)``: mean and min of reward over alpha."""
    return (
        data.groupby(RUN_KEYS + ["mixture"], sort=True)["reward"]
        .agg(mean="mean", worst="min")
        .reset_index()
    )


def robustness_table(data: pd.DataFrame) -> pd.DataFrame:
    """Numeric robustness table of one split, one row per ``(variant, radius, hp)``.

    Columns: ``variant, radius, hp, n_seeds`` and, for mixture in (convex,
    geometric) and stat in (mean, worst), ``<mixture>_<stat>_mean`` /
    ``<mixture>_<stat>_std`` — the over-alpha statistic averaged over seeds
    and its sample std (``ddof=1``, ``0.0`` for one seed).  A mixture absent
    from all inputs gives NaN columns.
    """
    per_seed = per_seed_summary(data)
    wide = per_seed.pivot_table(
        index=RUN_KEYS, columns="mixture", values=list(STATS), aggfunc="first"
    )
    wide.columns = [f"{mix}_{stat}" for stat, mix in wide.columns]
    for mix in MIXTURES:
        for stat in STATS:
            if f"{mix}_{stat}" not in wide.columns:
                wide[f"{mix}_{stat}"] = np.nan
    wide = wide.reset_index()
    return sort_runs(over_seeds(wide, CELL_KEYS, [f"{mix}_{stat}" for mix in MIXTURES for stat in STATS]))


def selection_scores(table: pd.DataFrame, selection: str = "worst") -> pd.Series:
    """Score of each table row for best-radius selection.

    Mean over the mixtures present of ``<mixture>_<selection>_mean``, i.e. the
    over-alpha statistic averaged over seeds and both mixtures.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    cols = [f"{mix}_{selection}_mean" for mix in MIXTURES]
    return table[cols].mean(axis=1, skipna=True)


def select_configs(validation_table: pd.DataFrame, selection: str = "worst") -> pd.DataFrame:
    """Per variant, the ``(radius, hp)`` maximising :func:`selection_scores` on the VALIDATION table
    (SFT excluded; ties: smallest radius, then smallest hyperparameter). Columns variant, radius, hp, score."""
    scored = validation_table.assign(score=selection_scores(validation_table, selection))
    return select_best(scored, ["variant"])


def alpha_curves(data: pd.DataFrame) -> pd.DataFrame:
    """Per ``(variant, radius, hp, mixture, alpha)``: mean / std (ddof=1) / n of the reward over seeds."""
    curves = over_seeds(data.sort_values(CELL_KEYS + ["mixture", "alpha"]), CELL_KEYS + ["mixture", "alpha"], ["reward"])
    return curves.rename(columns={"reward_mean": "mean", "reward_std": "std", "n_seeds": "n"})


# --------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------
#: The robust variants and the base each is compared with.
ROBUST_VS_BASE: tuple[tuple[str, str], ...] = (
    ("w-rebel", "rebel"), ("kl-rebel", "rebel"), ("chi2-rebel", "rebel"),
    ("wdpo", "dpo"), ("kl-dpo", "dpo"), ("chi2-dpo", "dpo"),
)


def _run_worst(per_seed: pd.DataFrame, variant: str, config: tuple[str, str], mixture: str) -> pd.Series:
    radius, hp = config
    sel = per_seed[(per_seed["variant"] == variant) & (per_seed["radius"] == radius) & (per_seed["hp"] == hp)
                   & (per_seed["mixture"] == mixture)]
    return sel.set_index("seed")["worst"]


def verdict_table(test: pd.DataFrame, best: dict[str, tuple[str, str]], alpha: float = stats.ALPHA,
                  power: float = stats.POWER) -> pd.DataFrame:
    """Robust minus base worst case over alpha on the test split, paired by seed, at the validation-selected
    configs: one row per (pair, mixture) with n, the mean difference, its 95% t-interval, the two-sided p
    of a paired t-test, Holm's correction over every comparison in the table (6 pairs x 2 mixtures = 12 in
    the full grid), the simultaneous (Bonferroni) interval at family level ``alpha``, the verdict of the
    corrected test, and the minimum detectable effect: the smallest true difference the corrected test
    (its strictest Holm level, alpha / m) detects with probability ``power`` given n and the measured
    seed-to-seed spread of the differences."""
    per_seed = per_seed_summary(test)
    rows = []
    for robust, base in ROBUST_VS_BASE:
        if robust not in best or base not in best:
            continue
        for mix in MIXTURES:
            paired = pd.concat({v: _run_worst(per_seed, v, best[v], mix) for v in (robust, base)}, axis=1,
                               join="inner").dropna()
            if paired.empty:
                continue
            t = stats.paired_t((paired[robust] - paired[base]).to_numpy(), 1 - alpha)
            rows.append({"robust": robust, "base": base, "robust_radius": best[robust][0],
                         "robust_hp": best[robust][1], "base_hp": best[base][1], "mixture": mix,
                         "n_seeds": t["n"], "delta": t["mean"], "sd": t["sd"], "ci_low": t["ci_low"],
                         "ci_high": t["ci_high"], "p": t["p"]})
    table = pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))
    if table.empty:
        return table
    m = int(table["p"].notna().sum())
    table["p_holm"] = stats.holm(table["p"].to_numpy())
    sim = [_bonferroni_interval(row, alpha, m) for row in table.itertuples()]
    table["sim_low"] = [lo for lo, _ in sim]
    table["sim_high"] = [hi for _, hi in sim]
    table["mde"] = [stats.minimum_detectable_effect(int(row.n_seeds), row.sd, alpha / max(1, m), power)
                    for row in table.itertuples()]
    table["verdict"] = [stats.verdict(row.delta, row.p_holm, alpha) for row in table.itertuples()]
    return table[list(VERDICT_COLUMNS)]


def _bonferroni_interval(row, alpha: float, m: int) -> tuple[float, float]:
    """The t-interval at confidence 1 - alpha / m around the row's mean difference."""
    from scipy.stats import t

    if row.n_seeds < 2:
        return float("nan"), float("nan")
    half = t.ppf(1 - alpha / (2 * max(1, m)), row.n_seeds - 1) * row.sd / np.sqrt(row.n_seeds)
    return row.delta - half, row.delta + half


VERDICT_COLUMNS: dict[str, str] = {
    "robust": "Robust", "base": "Base", "robust_radius": "ρ", "robust_hp": "η / β (robust)",
    "base_hp": "η / β (base)", "mixture": "Mixture", "n_seeds": "Seeds (n)", "delta": "Δ worst", "sd": "sd(Δ)",
    "ci_low": "95% CI", "ci_high": "ci_high", "sim_low": "Simultaneous 95% CI (Bonferroni)", "sim_high": "sim_high",
    "p": "p", "p_holm": "p (Holm)", "mde": "MDE (80% power at 0.05/m)", "verdict": "Verdict (Holm)",
}
VERDICT_INTERVALS = {"ci_low": ("ci_low", "ci_high"), "sim_low": ("sim_low", "sim_high")}


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def tilt_table(validation: pd.DataFrame, alpha0: float) -> pd.DataFrame:
    """How far each run leans towards its training mixture, on the VALIDATION split: per (variant, radius, hp),
    for each mixture, the reward at alpha0, the worst case over alpha and their difference, the **tilt**
    (per seed, then mean / std over seeds). A base policy with tilt near 0 has nothing to be robust against."""
    grid = np.sort(validation["alpha"].unique())
    if not np.isclose(grid, alpha0, atol=1e-9).any():
        raise ValueError(f"alpha0 {alpha0:g} is not on the evaluation grid {list(grid)}: the tilt needs r*(alpha0).")
    at0 = validation[np.isclose(validation["alpha"], alpha0, atol=1e-9)]
    at0 = at0.groupby(RUN_KEYS + ["mixture"], sort=True)["reward"].first().rename("at_alpha0")
    per_seed = per_seed_summary(validation).set_index(RUN_KEYS + ["mixture"]).join(at0).reset_index()
    per_seed["tilt"] = per_seed["at_alpha0"] - per_seed["worst"]
    wide = per_seed.pivot_table(index=RUN_KEYS, columns="mixture", values=["at_alpha0", "worst", "tilt"],
                                aggfunc="first")
    wide.columns = [f"{mix}_{stat}" for stat, mix in wide.columns]
    columns = [f"{mix}_{stat}" for mix in MIXTURES for stat in ("at_alpha0", "worst", "tilt")
               if f"{mix}_{stat}" in wide.columns]
    return sort_runs(over_seeds(wide.reset_index(), CELL_KEYS, columns))


TILT_COLUMNS: dict[str, str] = {
    "variant": "Variant", "radius": "Radius", "hp": "η / β", "n_seeds": "Seeds (n)",
    "convex_at_alpha0": "Convex r*(α₀)", "convex_worst": "Convex worst", "convex_tilt": "Convex tilt",
    "geometric_at_alpha0": "Geometric r*(α₀)", "geometric_worst": "Geometric worst",
    "geometric_tilt": "Geometric tilt",
}


def _selection_rule_text(selection: str) -> str:
    what = "worst case (min over α)" if selection == "worst" else "mean over α"
    return (
        f"test prompts; each variant at the radius ρ and η/β chosen on the VALIDATION prompts\n"
        f"(highest {what}, mean over seeds and both mixtures); bands: ±1 std over seeds"
    )


def _config_label(variant: str, radius: str, hp: str) -> str:
    robust = "" if variant in ("rebel", "dpo") else f"ρ={radius}, "
    return f"{fmt_variant(variant)} ({robust}{fmt_hparam(hp)})"


def plot_alpha_sweep(
    data: pd.DataFrame,
    best: dict[str, tuple[str, str]],
    alpha0: float,
    stem: str | os.PathLike[str],
    selection: str = "worst",
) -> dict[str, Path]:
    """Draw the two-panel alpha sweep and write ``{stem}.pdf`` and ``{stem}.png``.

    One curve per variant in ``best`` at its ``(radius, hp)`` (mean over
    seeds, ±1 std band when more than one seed), REBEL family solid, DPO
    family dashed, SFT (if present) dashed grey, dotted vertical line at
    ``alpha0``.  Files are written atomically.
    """
    curves = alpha_curves(data)
    stem = Path(stem)
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1):
        fig, axes = plt.subplots(1, len(MIXTURES), figsize=(10, 4.0), squeeze=False)
        axes = axes[0]
        try:
            for ax, mix in zip(axes, MIXTURES):
                cm = curves[curves["mixture"] == mix]
                ax.set_title(f"{mix.capitalize()} mixture")
                ax.set_xlabel("α (test mixture weight)")
                ax.set_ylabel("mean r*(α)")
                if cm.empty:
                    ax.text(0.5, 0.5, "no data", ha="center", va="center",
                            transform=ax.transAxes, color="0.4")
                for variant, (radius, hp) in best.items():
                    c = cm[(cm["variant"] == variant) & (cm["radius"] == radius) & (cm["hp"] == hp)]
                    if c.empty:
                        continue
                    color = VARIANT_COLORS.get(variant, "black")
                    ls = line_style(variant)
                    x = c["alpha"].to_numpy()
                    y = c["mean"].to_numpy()
                    ax.plot(x, y, color=color, ls=ls, lw=1.8, marker="o", ms=3.5, zorder=3)
                    if (c["n"] > 1).any():
                        s = c["std"].to_numpy()
                        ax.fill_between(x, y - s, y + s, color=color, alpha=0.15,
                                        lw=0, zorder=2)
                sft = cm[cm["variant"] == "sft"]
                if not sft.empty:
                    ax.plot(sft["alpha"], sft["mean"], color=SFT_COLOR, ls="--",
                            lw=1.5, zorder=2.5)
                ax.axvline(alpha0, color="black", ls=":", lw=1.3, zorder=1)
                if not cm.empty:
                    grid = np.sort(cm["alpha"].unique())
                    if len(grid) <= 11:
                        ax.set_xticks(grid)
                    ax.set_xlim(min(grid.min(), alpha0) - 0.03, max(grid.max(), alpha0) + 0.03)

            handles: list[Line2D] = []
            for variant, (radius, hp) in best.items():
                if not ((curves["variant"] == variant) & (curves["radius"] == radius) & (curves["hp"] == hp)).any():
                    continue
                handles.append(Line2D(
                    [], [], color=VARIANT_COLORS.get(variant, "black"),
                    ls=line_style(variant), lw=1.8, marker="o", ms=3.5,
                    label=_config_label(variant, radius, hp),
                ))
            if (curves["variant"] == "sft").any():
                handles.append(Line2D([], [], color=SFT_COLOR, ls="--", lw=1.5, label="SFT"))
            handles.append(Line2D([], [], color="black", ls=":", lw=1.3,
                                  label=f"α₀ (train) = {alpha0:g}"))
            fig.tight_layout()
            fig.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                ncol=min(5, len(handles)),
                frameon=False,
                handlelength=3.2,
                title=_selection_rule_text(selection),
                title_fontsize="small",
                fontsize="small",
            )
            written = save_figure(fig, stem)
        finally:
            plt.close(fig)
    return written


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def build_report(
    inputs: Sequence[str | os.PathLike[str]],
    alpha0: float,
    figure: str | os.PathLike[str],
    table: str | os.PathLike[str],
    selection: str = "worst",
    histories: Sequence[str | os.PathLike[str]] = (),
    training: str | os.PathLike[str] | None = None,
    verdict: str | os.PathLike[str] | None = None,
    tilt: str | os.PathLike[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Load ``inputs``; select on validation, write the test table and figures; return (table, selection)."""
    if not (0.0 <= alpha0 <= 1.0):
        raise ValueError(f"--alpha0 must be in [0, 1], got {alpha0}")
    if selection not in SELECTIONS:
        raise ValueError(f"--selection must be one of {SELECTIONS}, got {selection!r}")
    data = load_inputs(inputs)
    validation_rows = split_rows(data, SELECTION_SPLIT)
    chosen = select_configs(robustness_table(validation_rows), selection)
    best = {row.variant: (row.radius, row.hp) for row in chosen.itertuples()}
    test = split_rows(data, REPORTED_SPLIT)
    tab = robustness_table(test)
    validation = robustness_table(split_rows(data, SELECTION_SPLIT))
    scores = validation.assign(validation_score=selection_scores(validation, selection))[CELL_KEYS + ["validation_score"]]
    tab = tab.merge(scores, on=CELL_KEYS, how="left")
    tab["selected"] = mark_selected(tab, chosen, ["variant"])
    write_table(
        tab,
        table,
        columns=TABLE_COLUMNS,
        formatters={"variant": fmt_variant, "hp": fmt_hparam, "selected": lambda x: "✓" if x else ""},
        count_column="n_seeds",
        precision=3,
    )
    plot_alpha_sweep(test, best, alpha0, figure, selection)
    if verdict is not None:
        verdicts = verdict_table(test, best)
        write_table(verdicts, verdict, columns=VERDICT_COLUMNS, intervals=VERDICT_INTERVALS,
                    formatters={"robust": fmt_variant, "base": fmt_variant, "robust_hp": fmt_hparam,
                                "base_hp": fmt_hparam, "delta": lambda x: f"{x:+.3f}", "p": _fmt_p,
                                "p_holm": _fmt_p}, precision=3)
        for row in verdicts.itertuples():
            log.info("verdict %s vs %s, %s: worst-case difference %+.4f, 95%% CI [%+.4f, %+.4f], p %.3g, Holm %.3g "
                     "(%d comparisons), MDE %.4f (n=%d) -> %s", row.robust, row.base, row.mixture, row.delta,
                     row.ci_low, row.ci_high, row.p, row.p_holm, len(verdicts), row.mde, row.n_seeds, row.verdict)
    if tilt is not None:
        tilts = tilt_table(validation_rows, alpha0)
        write_table(tilts, tilt, columns=TILT_COLUMNS, formatters={"variant": fmt_variant, "hp": fmt_hparam},
                    count_column="n_seeds", precision=3)
        for row in tilts[tilts["variant"].isin(["sft", "rebel", "dpo"])].itertuples():
            log.info("tilt (validation) %s %s: convex %.4f +- %.4f, geometric %.4f +- %.4f", row.variant, row.hp,
                     row.convex_tilt_mean, row.convex_tilt_std, row.geometric_tilt_mean, row.geometric_tilt_std)
    if training is not None:
        plot_training_curves(load_histories(histories), chosen, training,
                             title="Emotion: training curves of each variant at its selected radius / η, β")
    n_runs = test[RUN_KEYS].drop_duplicates().shape[0]
    log.info(
        "emotion report: %d test runs, %d (variant, radius, hp) rows, seeds %s; selected on validation (%s) %s; "
        "table -> %s.{csv,md,tex}; figure -> %s.{pdf,png}",
        n_runs, len(tab), sorted(set(test["seed"])), selection,
        ", ".join(f"{fmt_variant(v)}={r}/{h}" for v, (r, h) in best.items()) or "none",
        table, figure,
    )
    return tab, best


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m workflow_scripts.emotion.report",
        description="Emotion alignment: robustness table and alpha-sweep figure.",
    )
    p.add_argument("--inputs", nargs="+", required=True, help="per-run evaluation CSVs")
    p.add_argument("--alpha0", type=float, required=True, help="training mixture weight")
    p.add_argument("--figure", required=True, help="figure stem (writes .pdf and .png)")
    p.add_argument("--table", required=True, help="table stem (writes .csv, .md, .tex)")
    p.add_argument("--selection", choices=SELECTIONS, default="worst",
                   help="selection criterion on validation: over-alpha worst case (default) or mean")
    add_training_curves_args(p)
    p.add_argument("--verdict", help="robust-vs-base verdict table stem (writes .csv, .md, .tex)")
    p.add_argument("--tilt", help="validation tilt table stem (writes .csv, .md, .tex): r*(alpha0) minus the worst case")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    build_report(args.inputs, args.alpha0, args.figure, args.table, args.selection, args.histories, args.training,
                 args.verdict, args.tilt)
    return 0


if __name__ == "__main__":
    run(main)
