"""The verdict statistics against independent computations: scipy's paired t-test, Holm by its definition,
and a Monte-Carlo simulation of the test at the reported minimum detectable effect."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from workflow_scripts.core.report import stats


def test_paired_t_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.05, 10), rng.normal(0.28, 0.05, 10)
    got = stats.paired_t(a - b)
    ref = sps.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert got["n"] == 10 and got["mean"] == pytest.approx(np.mean(a - b), abs=1e-15)
    assert got["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    one = stats.paired_t([0.1])
    assert one["n"] == 1 and np.isnan(one["p"]) and np.isnan(one["ci_low"])


def _holm_by_definition(p):
    """Holm's procedure as a set of decisions at every level, read back as adjusted p-values: the adjusted
    p of H_i is the smallest alpha at which the step-down procedure rejects H_i."""
    m = len(p)
    candidates = sorted(set(min(1.0, x * k) for x in p for k in range(1, m + 1)))
    adjusted = []
    for i in range(m):
        for level in candidates:
            order = sorted(range(m), key=lambda j: p[j])
            rejected = set()
            for k, j in enumerate(order):
                if p[j] * (m - k) <= level * (1 + 1e-12):
                    rejected.add(j)
                else:
                    break
            if i in rejected:
                adjusted.append(level)
                break
        else:
            adjusted.append(1.0)
    return adjusted


def test_holm_matches_its_definition():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = list(rng.uniform(0, 0.2, 6))
        assert stats.holm(p) == pytest.approx(_holm_by_definition(p), abs=1e-12)
    # NaN entries are not comparisons
    assert np.isnan(stats.holm([0.01, np.nan, 0.04])[1])
    assert list(stats.holm([0.01, np.nan, 0.04])[[0, 2]]) == pytest.approx([0.02, 0.04])


# (3, 0.05 / 12): 3 seeds at a corrected level (the decisive preset's online grid), where scipy's nct.cdf gave NaN
@pytest.mark.parametrize("n, alpha", [(10, 0.05 / 12), (3, 0.05), (5, 0.01), (3, 0.05 / 12)])
def test_minimum_detectable_effect_has_the_stated_power(n, alpha):
    """Simulate the two-sided paired t-test with normal differences of the MDE's size: it rejects 80 %."""
    sd = 0.04
    mde = stats.minimum_detectable_effect(n, sd, alpha, 0.8)
    rng = np.random.default_rng(2)
    d = rng.normal(mde, sd, size=(200_000, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / np.sqrt(n))
    power = np.mean(np.abs(t) > sps.t.ppf(1 - alpha / 2, n - 1))
    assert power == pytest.approx(0.8, abs=0.005)
    assert stats.minimum_detectable_effect(1, sd) != stats.minimum_detectable_effect(1, sd)   # NaN for n < 2


def test_verdict_reads_the_corrected_test():
    assert stats.verdict(0.02, 0.01) == "better" and stats.verdict(-0.02, 0.01) == "worse"
    assert stats.verdict(0.02, 0.2) == "same" and stats.verdict(0.02, float("nan")) == "n/a"
    assert all(stats.verdict(m, 0.049) != "same" for m in itertools.chain([-1.0], [1.0]))
