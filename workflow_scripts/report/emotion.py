"""Emotion-alignment report: robustness table and alpha-sweep figure.

Inputs are the per-run evaluation CSVs (one per variant × radius × seed, plus
the SFT baseline with ``variant="sft"``, ``radius="0"``), each with columns
``variant, radius, seed, mixture, alpha, reward`` and one row per
``(mixture, alpha)``; ``reward`` is the mean r*(alpha) of the policy's
generations on held-out prompts.

Outputs (nothing else is written; parent directories are created):

``{table}.csv|.md|.tex``
    One row per ``(variant, radius)`` (SFT included).  For every
    ``(variant, radius, seed, mixture)`` the reward is summarised over the
    alpha grid by its **mean** and its **worst case** (min); these per-seed
    numbers are then aggregated over seeds as mean and sample std
    (``ddof=1``; ``0.0`` when there is a single seed).  The CSV is numeric:

    ``variant, radius, n_seeds,
    convex_mean_mean, convex_mean_std, convex_worst_mean, convex_worst_std,
    geometric_mean_mean, geometric_mean_std,
    geometric_worst_mean, geometric_worst_std``

    (``<mixture>_<mean|worst>`` = statistic over alpha, then ``_mean``/``_std``
    over seeds).  Markdown/LaTeX show Variant, Radius, Seeds (n), Convex mean,
    Convex worst, Geometric mean, Geometric worst as ``"mean ± std"`` (mean
    only when n=1).

``{figure}.pdf|.png`` (png at dpi 150)
    Two panels (convex, geometric mixture): x = alpha, y = mean r*(alpha)
    averaged over seeds, with a ±1 std band (``ddof=1``) when >1 seed.
    One curve per (non-SFT) variant at its **best radius**, SFT as a dashed
    grey baseline, a dotted vertical line at the training weight alpha0.

Best-radius rule (``--selection``):
    ``worst`` (default): for each variant pick the radius with the highest
    worst-case-over-alpha reward, averaged over seeds and over both mixtures
    (i.e. the mean of the table's ``convex_worst_mean`` and
    ``geometric_worst_mean``).  ``mean``: same with the mean over alpha.
    Ties go to the smallest radius.  The rule is repeated in the legend title.

Usage::

    python -m workflow_scripts.report.emotion --inputs a.csv b.csv ... \\
        --alpha0 0.1 --figure results/x/figures/emotion_alpha_sweep \\
        --table results/x/tables/emotion_robustness [--selection worst]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from workflow_scripts.report.tables import (  # noqa: E402
    VARIANT_ORDER,
    save_figure,
    fmt_variant,
    sample_std,
    variant_sort_key,
    write_table,
)

log = logging.getLogger("workflow_scripts.report.emotion")

REQUIRED_COLUMNS: tuple[str, ...] = ("variant", "radius", "seed", "mixture", "alpha", "reward")
MIXTURES: tuple[str, ...] = ("convex", "geometric")
STATS: tuple[str, ...] = ("mean", "worst")
SELECTIONS: tuple[str, ...] = ("worst", "mean")
REBEL_FAMILY: frozenset[str] = frozenset({"rebel", "w-rebel", "kl-rebel", "chi2-rebel"})
DPO_FAMILY: frozenset[str] = frozenset({"dpo", "wdpo", "kl-dpo", "chi2-dpo"})
KNOWN_VARIANTS: frozenset[str] = frozenset(VARIANT_ORDER)
RUN_KEYS: list[str] = ["variant", "radius", "seed"]

TABLE_COLUMNS: dict[str, str] = {
    "variant": "Variant",
    "radius": "Radius",
    "n_seeds": "Seeds (n)",
    "convex_mean": "Convex mean",
    "convex_worst": "Convex worst",
    "geometric_mean": "Geometric mean",
    "geometric_worst": "Geometric worst",
}

SFT_COLOR = "0.45"
# Fixed color per variant (independent of which variants are present) so the
# same variant has the same color in every panel and every figure.  tab10
# without its grey (reserved for SFT).
_TAB10 = sns.color_palette("tab10", 10)
VARIANT_COLORS: dict[str, tuple[float, float, float]] = {
    "rebel": _TAB10[0],
    "w-rebel": _TAB10[1],
    "kl-rebel": _TAB10[2],
    "chi2-rebel": _TAB10[3],
    "dpo": _TAB10[4],
    "wdpo": _TAB10[5],
    "kl-dpo": _TAB10[6],
    "chi2-dpo": _TAB10[8],
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
                dtype={"variant": str, "radius": str, "mixture": str},
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
        for c in ("variant", "radius", "mixture"):
            df[c] = df[c].astype(str).str.strip()
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
    key = RUN_KEYS + ["mixture", "alpha"]
    dup = data.duplicated(subset=key, keep=False)
    if dup.any():
        first = data[dup].iloc[0]
        files = sorted(set(data.loc[dup & (data[key] == first[key]).all(axis=1), "source"]))
        _fail(" & ".join(files),
              "duplicate row(s) for " + ", ".join(f"{k}={first[k]}" for k in key))
    present = sorted(set(data["mixture"]), key=MIXTURES.index)
    grids: dict[str, tuple[float, ...] | None] = {m: None for m in present}
    for run, g in data.groupby(RUN_KEYS, sort=True):
        src = ", ".join(sorted(set(g["source"])))
        have = set(g["mixture"])
        lacking = [m for m in present if m not in have]
        if lacking:
            _fail(src, f"run variant={run[0]} radius={run[1]} seed={run[2]} "
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
def _sort_cells(df: pd.DataFrame) -> pd.DataFrame:
    order = df["variant"].map(lambda v: variant_sort_key(v)[0])
    radius = pd.to_numeric(df["radius"])
    return (
        df.assign(_o=order, _r=radius)
        .sort_values(["_o", "_r"], kind="stable")
        .drop(columns=["_o", "_r"])
        .reset_index(drop=True)
    )


def per_seed_summary(data: pd.DataFrame) -> pd.DataFrame:
    """Per ``(variant, radius, seed, mixture)``: mean and min of reward over alpha."""
    return (
        data.groupby(RUN_KEYS + ["mixture"], sort=True)["reward"]
        .agg(mean="mean", worst="min")
        .reset_index()
    )


def robustness_table(data: pd.DataFrame) -> pd.DataFrame:
    """Numeric robustness table, one row per ``(variant, radius)``.

    Columns: ``variant, radius, n_seeds`` and, for mixture in (convex,
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

    rows = []
    for (variant, radius), g in wide.groupby(["variant", "radius"], sort=False):
        row: dict[str, object] = {
            "variant": variant,
            "radius": radius,
            "n_seeds": int(g["seed"].nunique()),
        }
        for mix in MIXTURES:
            for stat in STATS:
                vals = g[f"{mix}_{stat}"].dropna().to_numpy(dtype=float)
                row[f"{mix}_{stat}_mean"] = float(vals.mean()) if vals.size else np.nan
                row[f"{mix}_{stat}_std"] = sample_std(vals)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["n_seeds"] = table["n_seeds"].astype(int)
    return _sort_cells(table)


def selection_scores(table: pd.DataFrame, selection: str = "worst") -> pd.Series:
    """Score of each table row for best-radius selection.

    Mean over the mixtures present of ``<mixture>_<selection>_mean``, i.e. the
    over-alpha statistic averaged over seeds and both mixtures.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    cols = [f"{mix}_{selection}_mean" for mix in MIXTURES]
    return table[cols].mean(axis=1, skipna=True)


def select_best_radius(table: pd.DataFrame, selection: str = "worst") -> dict[str, str]:
    """``{variant: radius}`` maximising :func:`selection_scores` (SFT excluded).

    Ties are broken towards the smallest radius.
    """
    scored = table.assign(
        _score=selection_scores(table, selection), _r=pd.to_numeric(table["radius"])
    )
    scored = scored[(scored["variant"] != "sft") & scored["_score"].notna()]
    best: dict[str, str] = {}
    for variant, g in scored.groupby("variant", sort=False):
        g = g.sort_values(["_score", "_r"], ascending=[False, True], kind="stable")
        best[variant] = str(g.iloc[0]["radius"])
    return dict(sorted(best.items(), key=lambda kv: variant_sort_key(kv[0])))


def alpha_curves(data: pd.DataFrame) -> pd.DataFrame:
    """Per ``(variant, radius, mixture, alpha)``: mean/std (ddof=1) over seeds."""
    g = data.groupby(["variant", "radius", "mixture", "alpha"], sort=True)["reward"]
    out = g.agg(mean="mean", n="count").reset_index()
    out["std"] = g.agg(sample_std).to_numpy()
    return out


# --------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------
def _selection_rule_text(selection: str) -> str:
    what = "worst-case (min over α)" if selection == "worst" else "mean over α"
    return (
        f"each variant at its best radius ρ = highest {what} reward,\n"
        "averaged over seeds and both mixtures; bands: ±1 std over seeds"
    )


def plot_alpha_sweep(
    data: pd.DataFrame,
    best: dict[str, str],
    alpha0: float,
    stem: str | os.PathLike[str],
    selection: str = "worst",
) -> dict[str, Path]:
    """Draw the two-panel alpha sweep and write ``{stem}.pdf`` and ``{stem}.png``.

    One curve per variant in ``best`` at radius ``best[variant]`` (mean over
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
                for variant, radius in best.items():
                    c = cm[(cm["variant"] == variant) & (cm["radius"] == radius)]
                    if c.empty:
                        continue
                    color = VARIANT_COLORS.get(variant, "black")
                    ls = "--" if variant in DPO_FAMILY else "-"
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
            for variant, radius in best.items():
                if not ((curves["variant"] == variant) & (curves["radius"] == radius)).any():
                    continue
                handles.append(Line2D(
                    [], [], color=VARIANT_COLORS.get(variant, "black"),
                    ls="--" if variant in DPO_FAMILY else "-", lw=1.8, marker="o", ms=3.5,
                    label=f"{fmt_variant(variant)} (ρ={radius})",
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
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Load ``inputs``, write the table and the figure; return (table, best radii)."""
    if not (0.0 <= alpha0 <= 1.0):
        raise ValueError(f"--alpha0 must be in [0, 1], got {alpha0}")
    if selection not in SELECTIONS:
        raise ValueError(f"--selection must be one of {SELECTIONS}, got {selection!r}")
    data = load_inputs(inputs)
    tab = robustness_table(data)
    best = select_best_radius(tab, selection)
    write_table(
        tab,
        table,
        columns=TABLE_COLUMNS,
        formatters={"variant": fmt_variant},
        count_column="n_seeds",
        precision=3,
    )
    plot_alpha_sweep(data, best, alpha0, figure, selection)
    n_runs = data[RUN_KEYS].drop_duplicates().shape[0]
    log.info(
        "emotion report: %d runs, %d (variant, radius) rows, seeds %s; best radius (%s) %s; "
        "table -> %s.{csv,md,tex}; figure -> %s.{pdf,png}",
        n_runs, len(tab), sorted(set(data["seed"])), selection,
        ", ".join(f"{fmt_variant(v)}={r}" for v, r in best.items()) or "none",
        table, figure,
    )
    return tab, best


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m workflow_scripts.report.emotion",
        description="Emotion alignment: robustness table and alpha-sweep figure.",
    )
    p.add_argument("--inputs", nargs="+", required=True, help="per-run evaluation CSVs")
    p.add_argument("--alpha0", type=float, required=True, help="training mixture weight")
    p.add_argument("--figure", required=True, help="figure stem (writes .pdf and .png)")
    p.add_argument("--table", required=True, help="table stem (writes .csv, .md, .tex)")
    p.add_argument("--selection", choices=SELECTIONS, default="worst",
                   help="best-radius criterion: over-alpha worst case (default) or mean")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    build_report(args.inputs, args.alpha0, args.figure, args.table, args.selection)
    return 0


if __name__ == "__main__":
    sys.exit(main())
