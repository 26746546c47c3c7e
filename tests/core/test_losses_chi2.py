"""The chi-squared ball: the library's O(n log n) DUAL against independent PRIMAL solutions.

Primal problem (the definition of the ambiguity set, SPEC section 4):

    max_p  sum_i p_i l_i   s.t.  p >= 0,  sum_i p_i = 1,  (n/2) sum_i (p_i - 1/n)^2 <= rho.

Two independent primal solvers are used, neither of which touches the dual formula
``eta + sqrt(1 + 2 rho) sqrt(mean (l - eta)_+^2)``:

* ``primal_kkt`` - the KKT conditions of the primal give ``p_i = (l_i - nu)_+ / lambda``;
  ``lambda`` is fixed by ``sum p = 1`` and ``nu`` is found by bisection on the (monotone)
  constraint ``sum p^2 = (1 + 2 rho) / n``. When a distribution on the argmax set already
  fits in the ball the value is ``max(l)``.
* ``primal_slsqp`` - a general-purpose NLP solver (scipy SLSQP) on the primal, several starts.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from workflow_scripts.core.losses import chi2_dual, chi2_weights, robust_objective

F64 = torch.float64


# --------------------------------------------------------------------------- references
def primal_kkt(l: np.ndarray, rho: float) -> tuple[float, np.ndarray]:
    """Worst-case value and distribution from the primal KKT conditions (bisection on nu)."""
    l = np.asarray(l, dtype=np.float64)
    n = l.size
    if rho == 0.0:
        p = np.full(n, 1.0 / n)
        return float(p @ l), p
    budget = (1.0 + 2.0 * rho) / n            # the ball is  sum p^2 <= budget
    top = l.max()
    at_max = l == top
    m = int(at_max.sum())
    if 1.0 / m <= budget:                     # uniform on the argmax set is inside the ball
        p = at_max / m
        return float(top), p

    def sum_sq(nu):
        x = np.clip(l - nu, 0.0, None)
        return float((x @ x) / x.sum() ** 2), x

    # sum_sq(nu) increases from 1/n (nu -> -inf) to 1/m (nu -> max): bracket and bisect.
    hi = top
    width = max(top - l.min(), abs(top), 1.0)
    lo = top - width
    while sum_sq(lo)[0] >= budget:
        width *= 2.0
        lo = top - width
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if sum_sq(mid)[0] < budget:
            lo = mid
        else:
            hi = mid
    x = sum_sq(lo)[1]
    p = x / x.sum()
    return float(p @ l), p


def primal_slsqp(l: np.ndarray, rho: float, seed: int = 0) -> float:
    """Best feasible value of SLSQP on the primal from several starting points."""
    l = np.asarray(l, dtype=np.float64)
    n = l.size
    scale = max(np.abs(l).max(), 1e-300)
    ls = l / scale                              # rescale the objective for the solver
    rng = np.random.default_rng(seed)
    starts = [np.full(n, 1.0 / n), rng.dirichlet(np.ones(n))]
    constraints = [
        {"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones_like(p)},
        {"type": "ineq", "fun": lambda p: rho - 0.5 * n * np.sum((p - 1.0 / n) ** 2),
         "jac": lambda p: -n * (p - 1.0 / n)},
    ]
    best = -math.inf
    for p0 in starts:
        res = scipy.optimize.minimize(
            lambda p: -(p @ ls), p0, jac=lambda p: -ls, method="SLSQP",
            bounds=[(0.0, 1.0)] * n, constraints=constraints,
            options={"ftol": 1e-15, "maxiter": 500},
        )
        p = res.x
        if abs(p.sum() - 1.0) > 1e-6 or p.min() < -1e-6 or 0.5 * n * np.sum((p - 1.0 / n) ** 2) > rho * (1 + 1e-6):
            continue                                  # the solver did not converge from this start
        # Make it exactly feasible (the solver's tolerance would let the value overshoot):
        # clip and renormalise, then shrink towards uniform, which stays in the simplex.
        p = np.clip(p, 0.0, None)
        p = p / p.sum()
        div = 0.5 * n * np.sum((p - 1.0 / n) ** 2)
        if div > rho:
            p = 1.0 / n + math.sqrt(rho / div) * (1.0 - 1e-12) * (p - 1.0 / n)
        best = max(best, float(p @ l))
    return best


def random_loss_vectors(count: int, seed: int):
    """(losses, rho) pairs: assorted distributions, ties, n = 1, all-equal, log-spaced radii."""
    rng = np.random.default_rng(seed)
    radii = np.logspace(-4, 2, 13)
    cases = []
    for j in range(count):
        n = int(rng.integers(1, 51))
        kind = j % 6
        if kind == 0:
            l = rng.normal(size=n)
        elif kind == 1:
            l = rng.exponential(size=n) * 10.0 ** rng.uniform(-3, 3)
        elif kind == 2:                                   # many ties
            l = rng.integers(0, 4, size=n).astype(np.float64)
        elif kind == 3:                                   # tie at the maximum
            l = rng.normal(size=n)
            l[rng.integers(0, n, size=max(1, n // 3))] = l.max() + 1.0
        elif kind == 4:                                   # all equal
            l = np.full(n, rng.normal() * 5.0)
        else:                                             # offset, large magnitude
            l = 1e3 + rng.standard_t(3, size=n)
        rho = float(radii[j % len(radii)]) if rng.uniform() < 0.85 else float(10 ** rng.uniform(-4, 2))
        cases.append((l, rho))
    cases += [(np.array([2.5]), 1e-4), (np.array([2.5]), 100.0), (np.array([-1.0, -1.0]), 0.3),
              (np.array([0.0, 1.0]), 0.25), (np.array([0.0, 1.0]), 0.5 - 1e-12)]
    return cases


def _scale(l):
    return max(1.0, float(np.abs(l).max()))


def _divergence(w: np.ndarray) -> float:
    n = w.size
    return 0.5 * n * float(np.sum((w - 1.0 / n) ** 2))


# --------------------------------------------------------------------------- dual vs primal
CASES = random_loss_vectors(360, seed=1234)


def test_dual_value_equals_primal_kkt_on_hundreds_of_vectors():
    worst = 0.0
    for l, rho in CASES:
        eta, value = chi2_dual(torch.tensor(l, dtype=F64), rho)
        ref, _ = primal_kkt(l, rho)
        err = abs(value.item() - ref) / _scale(l)
        worst = max(worst, err)
        assert err < 1e-9, (l.tolist(), rho, value.item(), ref)
        assert value.dtype == F64 and eta.dtype == F64
    assert worst < 1e-9


def _ball_binds(l, rho):
    """True when the worst case is not simply max(l): the ball constraint is active."""
    return rho > 0 and (l == l.max()).sum() * (1 + 2 * rho) < l.size


# SLSQP wanders (iteration limit, "inequality constraints incompatible") when the ball is so
# large that the optimum is a vertex of the simplex; that regime is max(l), checked exactly
# below and by ``primal_kkt``. Here: the regime where the ball constraint binds, n <= 20
# (SLSQP's small LAPACK calls get slow under multithreaded BLAS on a busy machine).
SLSQP_CASES = [(l, rho) for l, rho in CASES + random_loss_vectors(600, seed=99) if _ball_binds(l, rho) and l.size <= 20][:60]


def test_dual_value_equals_primal_slsqp():
    assert len(SLSQP_CASES) == 60
    checked = 0
    for idx, (l, rho) in enumerate(SLSQP_CASES):
        ref = primal_slsqp(l, rho, seed=idx)
        assert ref > -math.inf, "SLSQP found no feasible point"
        _, value = chi2_dual(torch.tensor(l, dtype=F64), rho)
        # SLSQP's answer is feasible, so it can only be below the true supremum.
        assert ref <= value.item() + 1e-9 * _scale(l)
        assert value.item() - ref <= 1e-8 * _scale(l), (l.tolist(), rho, value.item(), ref)
        checked += 1
    assert checked == 60


def test_weights_are_primal_feasible_and_attain_the_value():
    for l, rho in CASES:
        lt = torch.tensor(l, dtype=F64)
        w = chi2_weights(lt, rho)
        _, value = chi2_dual(lt, rho)
        wn = w.numpy()
        assert w.dtype == F64 and not w.requires_grad
        assert wn.min() >= 0.0
        assert wn.sum() == pytest.approx(1.0, abs=1e-12)
        assert _divergence(wn) <= rho + 1e-9 * (1.0 + rho), (l.tolist(), rho)
        assert float(wn @ l) == pytest.approx(value.item(), abs=1e-9 * _scale(l))
        # and they are the primal maximiser (unique: strictly concave-in-p ball, linear objective)
        _, p_ref = primal_kkt(l, rho)
        if _ball_binds(l, rho):             # ball constraint active
            np.testing.assert_allclose(wn, p_ref, rtol=0, atol=1e-8)


def test_float32_input_matches_float64():
    rng = np.random.default_rng(7)
    for _ in range(20):
        l = rng.normal(size=int(rng.integers(2, 40)))
        rho = float(10 ** rng.uniform(-3, 1))
        eta32, v32 = chi2_dual(torch.tensor(l, dtype=torch.float32), rho)
        assert v32.dtype == torch.float32 and eta32.dtype == torch.float32
        ref, _ = primal_kkt(l.astype(np.float32).astype(np.float64), rho)
        assert v32.item() == pytest.approx(ref, abs=1e-5 * _scale(l))
        w32 = chi2_weights(torch.tensor(l, dtype=torch.float32), rho)
        assert w32.dtype == torch.float32
        assert w32.sum().item() == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("n", [1, 2, 3, 10, 41])
def test_large_radius_gives_max(n):
    rng = np.random.default_rng(n)
    l = rng.normal(size=n)
    for rho in [(n - 1) / 2, (n - 1) / 2 + 1e-3, 10.0 * n, 1e6]:
        if rho == 0:
            continue
        eta, value = chi2_dual(torch.tensor(l, dtype=F64), rho)
        assert value.item() == pytest.approx(l.max(), abs=1e-12)
        w = chi2_weights(torch.tensor(l, dtype=F64), rho).numpy()
        expected = np.zeros(n)
        expected[np.argmax(l)] = 1.0
        np.testing.assert_allclose(w, expected, atol=1e-12)


def test_large_radius_with_tied_maxima_spreads_mass():
    l = np.array([1.0, 3.0, 3.0, 0.0, 3.0, -2.0])
    for rho in [2.5, 50.0]:
        _, value = chi2_dual(torch.tensor(l, dtype=F64), rho)
        assert value.item() == pytest.approx(3.0, abs=1e-12)
        w = chi2_weights(torch.tensor(l, dtype=F64), rho).numpy()
        np.testing.assert_allclose(w, [0, 1 / 3, 1 / 3, 0, 1 / 3, 0], atol=1e-12)
        assert _divergence(w) <= rho


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_zero_radius_gives_mean_and_uniform_weights(n):
    rng = np.random.default_rng(100 + n)
    l = rng.normal(size=n) * 3.0
    eta, value = chi2_dual(torch.tensor(l, dtype=F64), 0.0)
    assert value.item() == pytest.approx(float(np.mean(l)), abs=1e-13)
    assert math.isinf(eta.item()) and eta.item() < 0
    w = chi2_weights(torch.tensor(l, dtype=F64), 0.0)
    torch.testing.assert_close(w, torch.full((n,), 1.0 / n, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("rho", [1e-4, 0.3, 7.0, 100.0])
def test_all_equal_losses(rho):
    l = torch.full((9,), -2.75, dtype=F64)
    _, value = chi2_dual(l, rho)
    assert value.item() == pytest.approx(-2.75, abs=1e-14)
    torch.testing.assert_close(chi2_weights(l, rho), torch.full((9,), 1 / 9, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("rho", [1e-4, 0.5, 3.0, 100.0])
def test_single_sample(rho):
    _, value = chi2_dual(torch.tensor([4.25], dtype=F64), rho)
    assert value.item() == 4.25
    assert chi2_weights(torch.tensor([4.25], dtype=F64), rho).tolist() == [1.0]


def test_all_active_closed_form():
    """p_i = (1/n)(1 + sqrt(2 rho)(l_i - mean)/std) and value = mean + sqrt(2 rho) std (population std)."""
    rng = np.random.default_rng(42)
    tested = 0
    for trial in range(60):
        n = int(rng.integers(2, 60))
        l = rng.normal(loc=rng.normal(), scale=10 ** rng.uniform(-2, 2), size=n)
        mean, std = l.mean(), l.std()
        # largest radius with every p_i > 0, then a fraction of it
        rho_max = 0.5 * (std / (mean - l.min())) ** 2
        rho = rho_max * float(rng.uniform(0.01, 0.95))
        p = (1.0 + math.sqrt(2 * rho) * (l - mean) / std) / n
        assert p.min() > 0
        _, value = chi2_dual(torch.tensor(l, dtype=F64), rho)
        assert value.item() == pytest.approx(mean + math.sqrt(2 * rho) * std, abs=1e-10 * _scale(l))
        w = chi2_weights(torch.tensor(l, dtype=F64), rho).numpy()
        np.testing.assert_allclose(w, p, rtol=1e-8, atol=1e-14)
        tested += 1
    assert tested == 60


def test_objective_uses_the_chi2_solution():
    rng = np.random.default_rng(3)
    l = rng.normal(size=17)
    for rho in [0.01, 0.4, 3.0]:
        obj = robust_objective("chi2-rebel", rho)
        out = obj(torch.tensor(l, dtype=F64))
        ref, p = primal_kkt(l, rho)
        assert out.value.item() == pytest.approx(ref, abs=1e-10)
        np.testing.assert_allclose(out.weights.numpy(), p, atol=1e-8)
        assert out.loss.item() == pytest.approx(ref, abs=1e-10)
        assert out.mean_loss.item() == pytest.approx(l.mean(), abs=1e-14)


def test_million_samples_no_grid_search():
    """O(n log n): n = 1e6 is solved directly (not timed; a grid/bisection over eta would crawl)."""
    rng = np.random.default_rng(0)
    l = rng.normal(size=1_000_000)
    lt = torch.tensor(l, dtype=F64)
    rho = 0.005                         # all-active regime: closed form available
    _, value = chi2_dual(lt, rho)
    assert value.item() == pytest.approx(l.mean() + math.sqrt(2 * rho) * l.std(), abs=1e-9)
    rho = 2.0                           # a sparse worst case
    _, value = chi2_dual(lt, rho)
    ref, _ = primal_kkt(l, rho)
    assert value.item() == pytest.approx(ref, abs=1e-8)
    w = chi2_weights(lt, rho)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-10)
    assert _divergence(w.numpy()) <= rho * (1 + 1e-9)
