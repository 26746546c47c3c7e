"""Paired comparisons over seeds: t-intervals, p-values, a multiplicity correction and the power of a run.

A verdict "robust is better than its base" rests on per-seed differences d_1..d_n (same preference data
and evaluation prompts within a seed). Everything here is the textbook paired t machinery:

- :func:`paired_t`: mean, sample std (ddof=1), the two-sided ``confidence`` t-interval, and the two-sided
  p-value of H0: E[d] = 0 (Student t with n - 1 degrees of freedom);
- :func:`holm`: Holm's step-down adjustment of m p-values (controls the family-wise error rate at alpha,
  uniformly more powerful than Bonferroni): sort ascending, p_(k) * (m - k + 1), running maximum, capped at 1;
- :func:`minimum_detectable_effect`: the smallest true mean difference the same test would detect with
  probability ``power``, given n and the measured spread: the root in delta of
  P(|T| > t_crit) = power with T ~ noncentral t(n - 1, delta sqrt(n) / sd).

Tested against independent computations (scipy.stats.ttest_rel, Holm by its definition, and a Monte-Carlo
simulation of the test at the reported effect).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Family-wise error rate of the verdicts.
ALPHA = 0.05
#: The power at which the minimum detectable effect is reported.
POWER = 0.8


def paired_t(differences: Sequence[float], confidence: float = 1 - ALPHA) -> dict:
    """``n, mean, sd, ci_low, ci_high, p`` of paired differences (NaN where n < 2; p = 1 / 0 when sd = 0)."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {"n": n, "mean": mean, "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "p": float("nan")}
    sd = float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * se)
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "p": p}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order (NaN entries stay NaN and are not counted in m)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, p[i] * (m - k)))
        out[i] = running
    return out


def minimum_detectable_effect(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest |E[d]| that a two-sided paired t-test at level ``alpha`` detects with probability ``power``,
    for ``n`` pairs whose differences have standard deviation ``sd`` (NaN for n < 2; 0 when sd = 0)."""
    from scipy import optimize, stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta: float) -> float:
        nc = delta * np.sqrt(n) / sd
        # P(T < -crit) written as P(T' > crit) with T' ~ nct(df, -nc): the same number, but scipy's nct.cdf
        # returns NaN far in its lower tail (df 2, nc 50), which a 3-seed grid with Holm's level reaches.
        return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc) - power

    high = sd
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12 * sd))


def verdict(mean: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """better / worse when the corrected test rejects (by the sign of the mean), same when it does not,
    n/a without a test (fewer than 2 seeds)."""
    if np.isnan(p_adjusted):
        return "n/a"
    if p_adjusted < alpha:
        return "better" if mean > 0 else "worse"
    return "same"
