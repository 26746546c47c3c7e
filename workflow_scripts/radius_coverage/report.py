r"""Radius-coverage report: the figure, the fitted-rate table and a per-n summary.

Inputs are the per-(set, base) CSVs of :mod:`.simulate` (one row per schedule x n x repetition).

Outputs (parent directories are created; every file is written atomically):

``{figure}.pdf|.png`` (png at dpi 150)
    One row per ambiguity set; for each base two panels: the estimation error
    ``||theta_hat - theta*||`` against n on log-log axes (mean over repetitions with 95% error
    bars, one line per schedule, the fitted slope and its 95% bootstrap CI in the legend; dotted:
    the population bias of the same schedule, the estimator fitted on P* itself), and the coverage
    ``P(D(P* || P_n) <= rho_n)`` against n (dashed: its exact limit for chi2/KL at kappa = 1,
    ``P(chi2_{C-1} <= 2 c n_ref)``, since ``2 n D(P* || P_n) -> chi2_{C-1}`` over C cells).

``{table}.csv|.md|.tex``
    One row per (set, base, schedule). Numeric CSV columns: ``set, base, schedule, kappa,
    slope, tail_slope, tail_lo, tail_hi`` (OLS slope of log mean error on log n over ``n >= fit_from``, with
    its 95% percentile bootstrap CI, repetitions resampled at each n), ``slope`` (the same over
    the whole grid), ``predicted`` (the asymptotic slope if the error is ``max(n^{-1/2},
    bias(rho_n))`` with ``bias ~ sqrt(rho)`` for chi2/KL and ``~ rho`` for Wasserstein: the
    SPEC 5.4 expectation), ``bias_slope`` (the slope of the population bias over the tail; empty
    where the bias is below 1e-6, i.e. the estimator is unbiased), ``coverage_first,
    coverage_last`` (at the smallest and largest n), ``coverage_limit`` (n -> infinity: 1, 0, or
    the chi2 limit; empty where the limit is a constant without closed form).

``{summary}`` (CSV)
    One row per (set, base, schedule, n): rho, reps, error mean / sd / standard error /
    10%, 50%, 90% quantiles, population bias, coverage and its standard error, the median
    divergence, and the number of fits that did not converge.

Usage::

    python -m workflow_scripts.radius_coverage.report --inputs a.csv b.csv ... \\
        --figure results/x/figures/radius_coverage --table results/x/tables/radius_coverage_rates \\
        --summary results/x/radius_coverage/summary.csv --fit-from 1000
"""
from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import chi2 as chi2_law

from workflow_scripts.core.cli import run
from workflow_scripts.core.report.tables import atomic_path, save_figure, write_table
from workflow_scripts.radius_coverage.model import BASES, SETS

log = logging.getLogger("workflow_scripts.radius_coverage.report")

REQUIRED_COLUMNS = ("set", "base", "schedule", "kappa", "n", "rep", "rho", "error", "bias", "divergence",
                    "covered", "converged", "n_cells", "c", "n_ref")
SET_NAMES = {"chi2": "χ²", "kl": "KL", "wasserstein": "Wasserstein (W₂)"}
BASE_NAMES = {"dpo": "DPO", "rebel": "REBEL"}
#: The bias of the robust estimator is O(sqrt(rho)) for the f-divergence balls, O(rho) for W.
BIAS_EXPONENT = {"chi2": 0.5, "kl": 0.5, "wasserstein": 1.0}
#: D(P*, P_n) shrinks like n^(-1) for chi2 and KL (2 n D -> chi2_{C-1}) and like n^(-1/4) for W_2
#: on a finite support (W_2^2 is of the order of the total variation, n^(-1/2)): the kappa at which
#: the coverage of rho_n = c (n / n_ref)^(-kappa) tends to a constant in (0, 1).
CRITICAL_KAPPA = {"chi2": 1.0, "kl": 1.0, "wasserstein": 0.25}
BIAS_FLOOR = 1e-6


# --------------------------------------------------------------------------- theory
def predicted_slope(set_name: str, kappa: float) -> float:
    """Asymptotic slope of the error if it is ``max(n^{-1/2}, bias(rho_n))``, ``bias ~ rho^a``."""
    if kappa is None or (isinstance(kappa, float) and math.isnan(kappa)):
        return -0.5
    return 0.0 - min(0.5, BIAS_EXPONENT[set_name] * kappa)   # 0.0 - 0 is +0.0, never "-0.000"


def coverage_limit(set_name: str, kappa: float, c: float, n_ref: float, n_cells: int) -> float:
    """``lim_n P(D(P* || P_n) <= c (n / n_ref)^(-kappa))``; NaN where it has no closed form."""
    if kappa is None or (isinstance(kappa, float) and math.isnan(kappa)):
        return 0.0
    critical = CRITICAL_KAPPA[set_name]
    if kappa < critical:
        return 1.0
    if kappa > critical:
        return 0.0
    if set_name in ("chi2", "kl"):
        return float(chi2_law.cdf(2.0 * c * n_ref, n_cells - 1))
    return math.nan


# --------------------------------------------------------------------------- statistics
def load(paths: Sequence[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    if not frames:
        raise ValueError("no input CSVs given.")
    data = pd.concat(frames, ignore_index=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"input CSVs lack the columns {missing}.")
    return data


def _schedule_order(schedules) -> list[str]:
    robust = sorted((s for s in schedules if s != "non-robust"), key=lambda s: float(s.split("=")[1]))
    return (["non-robust"] if "non-robust" in schedules else []) + robust


def summarise(data: pd.DataFrame) -> pd.DataFrame:
    def stats(g: pd.DataFrame) -> pd.Series:
        e = g["error"].to_numpy()
        cov = g["covered"].astype(float).to_numpy()
        return pd.Series({
            "rho": g["rho"].iloc[0], "reps": len(g),
            "error_mean": e.mean(), "error_sd": e.std(ddof=1), "error_se": e.std(ddof=1) / math.sqrt(len(e)),
            "error_q10": np.quantile(e, 0.1), "error_median": np.median(e), "error_q90": np.quantile(e, 0.9),
            "bias": g["bias"].iloc[0], "coverage": cov.mean(),
            "coverage_se": math.sqrt(cov.mean() * (1 - cov.mean()) / len(cov)),
            "divergence_median": float(np.median(g["divergence"])),
            "unconverged": int((~g["converged"].astype(bool)).sum()),
        })

    keys = ["set", "base", "schedule", "kappa", "n"]
    out = data.groupby(keys, dropna=False, sort=False)[list(data.columns.difference(keys))].apply(stats).reset_index()
    out["reps"] = out["reps"].astype(int)
    out["unconverged"] = out["unconverged"].astype(int)
    return out


def _ols_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slopes of y (..., N) on x (N,) by least squares, vectorised over leading axes."""
    xc = x - x.mean()
    return ((y - y.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / (xc * xc).sum()


def fit_slope(ns: np.ndarray, errors: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
              n_boot: int) -> tuple[float, float, float]:
    """OLS slope of log(mean error) on log(n) over ``mask`` with a 95% percentile bootstrap CI
    (repetitions resampled with replacement at each n). ``errors`` is (N, R)."""
    if mask.sum() < 2:
        return math.nan, math.nan, math.nan
    x = np.log(ns[mask].astype(float))
    e = errors[mask]
    slope = float(_ols_slopes(x, np.log(e.mean(axis=1))))
    n_pts, reps = e.shape
    idx = rng.integers(0, reps, size=(n_boot, n_pts, reps))
    boot_means = np.take_along_axis(np.broadcast_to(e, (n_boot, n_pts, reps)), idx, axis=2).mean(axis=2)
    boot = _ols_slopes(x, np.log(boot_means))
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return slope, float(lo), float(hi)


def rates(data: pd.DataFrame, summary: pd.DataFrame, fit_from: int, n_boot: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for set_name in [s for s in SETS if s in set(data["set"])]:
        for base in [b for b in BASES if b in set(data["base"])]:
            block = data[(data["set"] == set_name) & (data["base"] == base)]
            if block.empty:
                continue
            c, n_ref, n_cells = block["c"].iloc[0], block["n_ref"].iloc[0], int(block["n_cells"].iloc[0])
            for schedule in _schedule_order(set(block["schedule"])):
                g = block[block["schedule"] == schedule]
                wide = g.pivot(index="n", columns="rep", values="error").sort_index()
                if wide.isna().any().any():
                    raise ValueError(f"{set_name}-{base} {schedule}: unequal repetitions across n.")
                ns, errors = wide.index.to_numpy(), wide.to_numpy()
                kappa = g["kappa"].iloc[0]
                kappa = None if pd.isna(kappa) else float(kappa)
                slope = fit_slope(ns, errors, np.ones(len(ns), bool), rng, n_boot)
                tail_mask = ns >= fit_from
                tail = fit_slope(ns, errors, tail_mask, rng, n_boot)
                s = summary[(summary["set"] == set_name) & (summary["base"] == base)
                            & (summary["schedule"] == schedule)].sort_values("n")
                bias = s["bias"].to_numpy()
                bias_ok = tail_mask & (bias > BIAS_FLOOR)
                bias_slope = (float(_ols_slopes(np.log(ns[bias_ok].astype(float)), np.log(bias[bias_ok])))
                              if bias_ok.sum() >= 2 and bias_ok.sum() == tail_mask.sum() else math.nan)
                rows.append({
                    "set": set_name, "base": base, "schedule": schedule,
                    "kappa": math.nan if kappa is None else kappa,
                    "tail_slope": tail[0], "tail_lo": tail[1], "tail_hi": tail[2], "slope": slope[0],
                    "predicted": predicted_slope(set_name, kappa), "bias_slope": bias_slope,
                    "coverage_first": float(s["coverage"].iloc[0]), "coverage_last": float(s["coverage"].iloc[-1]),
                    "coverage_limit": coverage_limit(set_name, kappa, c, n_ref, n_cells),
                })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- outputs
def _label(schedule: str) -> str:
    return schedule if schedule == "non-robust" else "κ = " + schedule.split("=", 1)[1]


def write_rates_table(table: pd.DataFrame, stem: str, fit_from: int) -> None:
    write_table(table, stem, precision=3, columns={
        "set": "Set", "base": "Base", "schedule": "Schedule", "kappa": "κ",
        "tail_slope": f"Slope (n ≥ {fit_from})", "tail_lo": "95% CI lo", "tail_hi": "95% CI hi",
        "slope": "Slope (all n)",
        "predicted": "Expected", "bias_slope": "Bias slope", "coverage_first": "Coverage (n min)",
        "coverage_last": "Coverage (n max)", "coverage_limit": "Coverage limit",
    }, formatters={
        "set": lambda v: SET_NAMES.get(v, v), "base": lambda v: BASE_NAMES.get(v, v),
        "schedule": _label, "kappa": lambda v: f"{v:g}",
        "coverage_first": lambda v: f"{v:.2f}", "coverage_last": lambda v: f"{v:.2f}",
        "coverage_limit": lambda v: f"{v:.2f}",
    })


def plot(summary: pd.DataFrame, table: pd.DataFrame, stem: str, fit_from: int) -> None:
    sets = [s for s in SETS if s in set(summary["set"])]
    bases = [b for b in BASES if b in set(summary["base"])]
    schedules = _schedule_order(set(summary["schedule"]))
    robust = [s for s in schedules if s != "non-robust"]
    palette = ["tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:red", "tab:brown", "tab:pink", "tab:olive"]
    colours = {s: palette[i % len(palette)] for i, s in enumerate(robust)}
    colours["non-robust"] = "black"
    markers = dict(zip(schedules, "osD^v<>ph*"))
    # Coverage curves of several schedules often coincide (all 1): draw the first ones wider.
    widths = {s: 1.0 + 1.6 * (len(schedules) - 1 - k) / max(1, len(schedules) - 1) for k, s in enumerate(schedules)}
    fig, axes = plt.subplots(len(sets), 2 * len(bases), figsize=(4.4 * 2 * len(bases), 3.6 * len(sets)),
                             squeeze=False)
    for i, set_name in enumerate(sets):
        for j, base in enumerate(bases):
            ax_err, ax_cov = axes[i, 2 * j], axes[i, 2 * j + 1]
            block = summary[(summary["set"] == set_name) & (summary["base"] == base)]
            if block.empty:
                ax_err.set_visible(False)
                ax_cov.set_visible(False)
                continue
            lows = []
            for schedule in schedules:
                s = block[block["schedule"] == schedule].sort_values("n")
                r = table[(table["set"] == set_name) & (table["base"] == base) & (table["schedule"] == schedule)].iloc[0]
                label = f"{_label(schedule)}: {r.tail_slope:+.2f} [{r.tail_lo:+.2f}, {r.tail_hi:+.2f}]"
                colour = colours[schedule]
                ax_err.errorbar(s["n"], s["error_mean"], yerr=1.96 * s["error_se"], color=colour,
                                marker=markers[schedule], markersize=3.5, linewidth=1.3, capsize=2, label=label)
                if schedule != "non-robust":
                    b = s[s["bias"] > BIAS_FLOOR]
                    if len(b):
                        ax_err.plot(b["n"], b["bias"], color=colour, linestyle=":", linewidth=1.1)
                lows.append(s["error_mean"].min())
                ax_cov.plot(s["n"], s["coverage"], color=colour, marker=markers[schedule], markersize=3.5,
                            linewidth=widths[schedule], label=_label(schedule))
                if schedule != "non-robust":
                    limit = r.coverage_limit
                    if 0 < limit < 1:
                        ax_cov.axhline(limit, color=colour, linestyle="--", linewidth=0.9)
            top = block["error_mean"].max()
            ax_err.set_ylim(min(lows) / 1.6, top * 1.6)
            ax_err.set_xscale("log")
            ax_err.set_yscale("log")
            ax_err.axvline(fit_from, color="grey", linestyle=":", linewidth=0.8)
            ax_err.set_title(f"{SET_NAMES[set_name]} · {BASE_NAMES[base]}: error ‖θ̂ − θ*‖", fontsize=10)
            ax_err.legend(fontsize=6.5, title=f"slope for n ≥ {fit_from} [95% CI]", title_fontsize=6.5,
                          loc="lower left", framealpha=0.8)
            ax_cov.set_xscale("log")
            ax_cov.set_ylim(-0.03, 1.03)
            ax_cov.set_title(f"{SET_NAMES[set_name]} · {BASE_NAMES[base]}: coverage P(D(P*, Pₙ) ≤ ρₙ)", fontsize=10)
            for ax in (ax_err, ax_cov):
                ax.grid(True, which="major", alpha=0.3)
                if i == len(sets) - 1:
                    ax.set_xlabel("n (samples)")
    constants = summary.groupby(["set", "base"])["c"].first()
    c_text = "; ".join(f"{SET_NAMES[s]}-{BASE_NAMES[b]} {c:g}" for (s, b), c in constants.items())
    n_ref = float(summary["n_ref"].iloc[0]) if "n_ref" in summary.columns else math.nan
    fig.suptitle(f"Radius–coverage study: ρₙ = c (n / {n_ref:g})^(−κ), c = {c_text}\n"
                 "error bars: 95% CI of the mean over repetitions; dotted: population bias (the estimator fitted "
                 "on P*); dashed: exact coverage limit", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.955))
    save_figure(fig, stem)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--inputs", nargs="+", required=True, help="per-(set, base) simulation CSVs")
    parser.add_argument("--figure", required=True, help="figure path without extension (.pdf and .png are written)")
    parser.add_argument("--table", required=True, help="table path without extension (.csv, .md, .tex)")
    parser.add_argument("--summary", required=True, help="per-n summary CSV path")
    parser.add_argument("--fit-from", type=int, default=1, help="the tail slope uses n >= this")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the slope CIs")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.bootstrap < 10:
        parser.error(f"--bootstrap must be >= 10, got {args.bootstrap}.")
    data = load(args.inputs)
    log.info("read %d rows from %d files", len(data), len(args.inputs))
    summary = summarise(data)
    summary = summary.merge(data.groupby(["set", "base"])[["c", "n_ref"]].first().reset_index(), on=["set", "base"])
    with atomic_path(args.summary) as tmp:
        summary.to_csv(tmp, index=False)
    table = rates(data, summary, args.fit_from, args.bootstrap, args.seed)
    write_rates_table(table, args.table, args.fit_from)
    plot(summary, table, args.figure, args.fit_from)
    for r in table.itertuples():
        log.info("%-11s %-5s %-11s slope (n >= %d) %+.3f [%+.3f, %+.3f]  all n %+.3f  expected %+.3f  coverage %.2f",
                 r.set, r.base, r.schedule, args.fit_from, r.tail_slope, r.tail_lo, r.tail_hi, r.slope,
                 r.predicted, r.coverage_last)
    unconverged = int(summary["unconverged"].sum())
    if unconverged:
        log.warning("%d fits did not converge (see the summary's 'unconverged' column)", unconverged)
    log.info("wrote %s.{pdf,png}, %s.{csv,md,tex}, %s", args.figure, args.table, args.summary)
    return 0


if __name__ == "__main__":
    run(main)
