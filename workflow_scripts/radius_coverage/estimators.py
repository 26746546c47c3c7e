r"""Robust estimators of the radius-coverage study: the worst case over each ambiguity set,
minimised over theta, on weighted cells.

The empirical distribution is ``P_n = sum_c w_c delta_c`` (``w = counts / n``), so every
objective is a function of C-vectors. For a ball ``B(P_n, rho)`` the estimator is

    theta_hat = argmin_theta  sup_{P in B(P_n, rho)} E_P[ l(theta; cell) ]

- ``chi2`` (constrained ball ``(1/2) sum_c (P_c - w_c)^2 / w_c <= rho``): the exact dual
  ``min_eta eta + sqrt(1 + 2 rho) sqrt(sum_c w_c (l_c - eta)_+^2)`` (:func:`chi2_dual_weighted`,
  the loss library's sort-and-scan with weights);
- ``kl`` (constrained ball ``KL(P || P_n) <= rho``): the exact dual
  ``min_{lambda > 0} lambda rho + lambda log sum_c w_c exp(l_c / lambda)`` (:func:`kl_dual_weighted`);
- ``wasserstein``: the gradient-penalty form of the type-2 ball (SPEC 4),
  ``sum_c w_c l_c + rho sqrt(sum_c w_c ||grad_u l_c||^2)``, ``u`` the cell's point in the
  transport space (:mod:`.model`).

For chi2 and KL the value is computed exactly for each theta and its gradient is the
worst-case-weighted gradient ``sum_c P*_c grad l_c`` (envelope theorem; the worst case is unique
unless all active losses tie). The objectives are convex in theta (both bases' losses are convex)
and are minimised with L-BFGS from the non-robust estimate. ``rho = 0`` gives the non-robust
estimator for every set (exact Newton / least squares, :func:`fit_nonrobust`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

from workflow_scripts.radius_coverage.model import SETS, Problem, sigmoid


# --------------------------------------------------------------------------- per-cell losses
def base_losses(problem: Problem, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell losses ``l_c(theta)`` and their gradients ``(C,), (C, d)``."""
    f = problem.features
    t = f @ theta
    if problem.base == "dpo":
        s = sigmoid(-t)                                   # 1 - sigmoid(theta^T z)
        return np.logaddexp(0.0, -t), -s[:, None] * f
    e = t - problem.targets
    return e * e, 2.0 * e[:, None] * f


def input_grad_sqnorm(problem: Problem, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``g_c = ||grad_u l_c||^2`` (u the cell's transport point) and ``grad_theta g_c``.

    DPO: ``grad_z l = -sigmoid(-theta^T z) theta`` so ``g = s^2 ||theta||^2``.
    REBEL: ``grad_(x, r) l = 2 e (theta, -1)`` so ``g = 4 e^2 (||theta||^2 + 1)``.
    """
    f = problem.features
    t = f @ theta
    sq = float(theta @ theta)
    if problem.base == "dpo":
        s = sigmoid(-t)
        g = s * s * sq
        dg = (-2.0 * s * s * (1.0 - s) * sq)[:, None] * f + 2.0 * (s * s)[:, None] * theta[None, :]
        return g, dg
    e = t - problem.targets
    g = 4.0 * e * e * (sq + 1.0)
    dg = (8.0 * e * (sq + 1.0))[:, None] * f + 8.0 * (e * e)[:, None] * theta[None, :]
    return g, dg


# --------------------------------------------------------------------------- exact duals
def _check_weighted(losses, weights):
    l = np.asarray(losses, dtype=float).ravel()
    w = np.asarray(weights, dtype=float).ravel()
    if l.shape != w.shape or l.size == 0:
        raise ValueError(f"losses and weights must be non-empty and of equal length, got {l.size} and {w.size}.")
    if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero.")
    if not np.isfinite(l).all():
        raise ValueError("losses must be finite.")
    return l, w / w.sum()


def chi2_dual_weighted(losses, weights, rho: float) -> tuple[float, float, np.ndarray]:
    r"""Exact worst case over ``{P : (1/2) sum_c (P_c - w_c)^2 / w_c <= rho}``.

    Returns ``(eta*, value, P)`` with ``value = min_eta eta + sqrt(1 + 2 rho) sqrt(sum_c w_c
    (l_c - eta)_+^2) = sup_P E_P l`` and the worst case ``P_c = w_c (l_c - eta*)_+ / sum_j w_j
    (l_j - eta*)_+``. The loss library's :func:`~workflow_scripts.core.losses.chi2_dual` with weights:
    sort the losses decreasingly; with the top k active (total weight ``W_k``, weighted mean
    ``m_k``, weighted variance ``v_k``) the objective on the piece ``[s_{k+1}, s_k]`` is
    ``eta + c sqrt(W_k (v_k + (m_k - eta)^2))``, with stationary point ``eta = m_k - sqrt(v_k /
    (c^2 W_k - 1))`` when ``c^2 W_k > 1``; every clipped stationary point and breakpoint is
    evaluated with prefix sums and the minimum kept. For equal weights ``W_k = k/n`` and this is
    the library's formula. Cells with zero weight cannot carry mass in the ball and are ignored.
    ``rho = 0`` returns the mean (``eta* = -inf``); when ``eta* = max l`` the ball contains the
    point masses on the maximal losses and ``P`` is ``w`` restricted to them.
    """
    if not rho >= 0 or not math.isfinite(rho):
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}.")
    l, w = _check_weighted(losses, weights)
    if rho == 0.0:
        return -math.inf, float(w @ l), w.copy()
    active = w > 0
    c2 = 1.0 + 2.0 * rho
    c = math.sqrt(c2)
    la, wa = l[active], w[active]
    top = la.max()
    order = np.argsort(-la, kind="stable")
    s, ws = la[order] - top, wa[order]
    W = np.cumsum(ws)
    m = np.cumsum(ws * s) / W
    v = np.maximum(np.cumsum(ws * s * s) / W - m * m, 0.0)
    lower = np.append(s[1:], -math.inf)
    denom = c2 * W - 1.0
    has = denom > 0
    stat = np.where(has, m - np.sqrt(v / np.where(has, denom, 1.0)), s)
    stat = np.minimum(np.maximum(stat, lower), s)

    def piece(eta):
        return eta + c * np.sqrt(W * (v + (m - eta) ** 2))

    cand = np.concatenate([stat, s])
    vals = np.concatenate([piece(stat), piece(s)])
    eta = float(cand[np.argmin(vals)])
    excess = np.maximum(s - eta, 0.0)
    value = eta + c * math.sqrt(float(ws @ (excess * excess)))
    p_active = ws * excess
    if p_active.sum() <= 0:                        # eta* = max: the maximal losses take all the mass
        p_active = ws * (s >= 0)
    p = np.zeros_like(l)
    idx = np.flatnonzero(active)[order]
    p[idx] = p_active / p_active.sum()
    return eta + top, value + top, p


def _tilted(l, w, lam):
    """``p ∝ w exp(l / lam)``, ``log sum_c w_c exp(l_c / lam)`` and ``KL(p || w)``."""
    a = l / lam
    amax = a.max()
    e = w * np.exp(a - amax)
    z = e.sum()
    p = e / z
    log_mgf = math.log(z) + amax
    kl = float(p @ a) - log_mgf
    return p, log_mgf, max(kl, 0.0)


def kl_dual_weighted(losses, weights, rho: float, tol: float = 1e-13) -> tuple[float, float, np.ndarray]:
    r"""Exact worst case over ``{P : KL(P || P_n) <= rho}``, ``P_n = sum_c w_c delta_c``.

    Returns ``(lambda*, value, P)`` where ``value = min_{lambda > 0} lambda rho + lambda log
    sum_c w_c exp(l_c / lambda) = sup_P E_P l`` and ``P ∝ w exp(l / lambda*)``. The dual's
    derivative in lambda is ``rho - KL(P_lambda || w)``, and ``KL(P_lambda || w)`` decreases
    from ``-log W_max`` (``W_max`` the weight of the maximal losses) at ``lambda -> 0`` to 0 at
    ``lambda -> inf`` (``d KL / d lambda = -Var_P(l) / lambda^3``), so ``lambda*`` solves
    ``KL(P_lambda || w) = rho``: safeguarded Newton in ``log lambda`` to ``|KL - rho| <= tol``.
    Edge cases: ``rho = 0`` or equal losses give the mean (``lambda* = inf``); ``rho >= -log
    W_max`` gives ``max l`` (``lambda* = 0``, P = w restricted to the maximal losses).
    """
    if not rho >= 0 or not math.isfinite(rho):
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}.")
    l, w = _check_weighted(losses, weights)
    active = w > 0
    la, wa = l[active], w[active]
    mean = float(wa @ la)
    var = float(wa @ (la - mean) ** 2)
    spread = la.max() - la.min()
    if rho == 0.0 or var <= 0.0 or spread <= 1e-14 * max(1.0, abs(mean)):
        return math.inf, mean, w.copy()
    top = la >= la.max()
    w_max = float(wa[top].sum())
    if rho >= -math.log(w_max):
        p = np.zeros_like(l)
        p[np.flatnonzero(active)[top]] = wa[top] / w_max
        return 0.0, float(la.max()), p
    # lambda ~ sd / sqrt(2 rho) for small rho (KL(P_lambda || w) ~ Var / (2 lambda^2)).
    s = math.log(math.sqrt(var / (2.0 * rho)))
    lo, hi = -math.inf, math.inf           # KL > rho at s < lo side, KL < rho at s > hi side
    for _ in range(200):
        lam = math.exp(s)
        p, log_mgf, kl = _tilted(la, wa, lam)
        h = kl - rho
        if abs(h) <= tol * max(1.0, rho):
            break
        if h > 0:
            lo = s
        else:
            hi = s
        var_p = float(p @ (la - p @ la) ** 2)
        slope = -var_p / (lam * lam)                # d KL / d log(lambda)
        step = s - h / slope if slope < 0 else math.nan
        if math.isfinite(lo) and math.isfinite(hi):
            if not (lo < step < hi) or not math.isfinite(step):
                step = 0.5 * (lo + hi)
            if hi - lo < 1e-15:
                break
        elif not math.isfinite(step):
            step = s + (1.0 if h > 0 else -1.0)
        else:                                       # only one side bracketed: cap the step
            step = min(max(step, s - 2.0), s + 2.0)
        s = step
    lam = math.exp(s)
    p_active, log_mgf, _ = _tilted(la, wa, lam)
    p = np.zeros_like(l)
    p[np.flatnonzero(active)] = p_active
    return lam, lam * rho + lam * log_mgf, p


# --------------------------------------------------------------------------- objectives
def robust_value_and_grad(problem: Problem, weights: np.ndarray, set_name: str, rho: float,
                          theta: np.ndarray) -> tuple[float, np.ndarray]:
    """The robust objective of ``set_name`` at ``theta`` and its gradient."""
    l, dl = base_losses(problem, theta)
    if set_name == "chi2":
        _, value, p = chi2_dual_weighted(l, weights, rho)
        return value, p @ dl
    if set_name == "kl":
        _, value, p = kl_dual_weighted(l, weights, rho)
        return value, p @ dl
    if set_name == "wasserstein":
        w = np.asarray(weights, dtype=float) / np.sum(weights)
        value, grad = float(w @ l), w @ dl
        if rho > 0:
            g, dg = input_grad_sqnorm(problem, theta)
            root = math.sqrt(max(float(w @ g), 1e-300))
            value += rho * root
            grad = grad + rho * (w @ dg) / (2.0 * root)
        return value, grad
    raise ValueError(f"set must be one of {SETS}, got {set_name!r}.")


@dataclass
class Fit:
    theta: np.ndarray
    converged: bool
    iterations: int
    value: float


def fit_nonrobust(problem: Problem, weights: np.ndarray, max_iter: int = 100) -> Fit:
    """The non-robust estimator ``argmin sum_c w_c l_c``: weighted least squares (REBEL) or
    Newton's method with backtracking (DPO, logistic). ``converged`` is False when the DPO data
    are separable (no finite minimiser) or Newton does not reach a gradient of 1e-12."""
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    f = problem.features
    d = problem.dim
    if problem.base == "rebel":
        a = f.T @ (w[:, None] * f)
        theta = np.linalg.lstsq(a, f.T @ (w * problem.targets), rcond=None)[0]
        ok = np.linalg.matrix_rank(a) == d
        return Fit(theta, bool(ok), 1, float(w @ base_losses(problem, theta)[0]))
    theta = np.zeros(d)
    value = float(w @ base_losses(problem, theta)[0])
    for it in range(1, max_iter + 1):
        l, dl = base_losses(problem, theta)
        grad = w @ dl
        if np.max(np.abs(grad)) < 1e-12:
            # A vanishing gradient far out means the loss decays to 0 along a separating direction.
            ok = np.linalg.norm(theta) < 20.0 or not separable(f, w)
            return Fit(theta, bool(ok), it, value)
        s = sigmoid(f @ theta)
        hess = f.T @ ((w * s * (1.0 - s))[:, None] * f)
        try:
            step = np.linalg.solve(hess + 1e-300 * np.eye(d), grad)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        slack = 1e-14 * max(1.0, abs(value))        # rounding: near the optimum values tie to the last bits
        while t > 1e-10:
            cand = theta - t * step
            cand_value = float(w @ base_losses(problem, cand)[0])
            if cand_value <= value + 1e-4 * t * float(grad @ -step) + slack:
                break
            t *= 0.5
        theta, value = cand, cand_value
        if np.linalg.norm(theta) > 1e6:
            break
    l, dl = base_losses(problem, theta)
    return Fit(theta, bool(np.max(np.abs(w @ dl)) < 1e-9), max_iter, value)


def separable(features: np.ndarray, weights: np.ndarray) -> bool:
    """Whether the observed DPO cells admit ``theta != 0`` with ``theta^T z_c >= 0`` for all of
    them (quasi-complete separation, Albert & Anderson 1984): then the logistic loss has no
    finite minimiser. Decided exactly by the LP ``Z theta >= 0, sum_c theta^T z_c = 1``."""
    z = features[np.asarray(weights) > 0]
    d = z.shape[1]
    res = linprog(np.zeros(d), A_ub=-z, b_ub=np.zeros(len(z)), A_eq=z.sum(axis=0)[None, :], b_eq=[1.0],
                  bounds=[(None, None)] * d, method="highs")
    return res.status == 0


def fit(problem: Problem, weights: np.ndarray, set_name: str, rho: float,
        theta0: np.ndarray | None = None, gtol: float = 1e-10) -> Fit:
    """``theta_hat`` of ``set_name`` at radius ``rho`` on the weighted cells (L-BFGS from
    ``theta0``, by default the non-robust estimate; ``rho = 0`` is the non-robust estimator).

    ``converged`` is True when L-BFGS reports success or the gradient's largest entry is below
    1e-6 (L-BFGS may stop on a line-search failure once the objective's rounding, ~1e-16
    relative, hides further decrease; theta is then within ~1e-6 / curvature of the minimiser,
    three orders of magnitude below the smallest statistical error the study measures)."""
    if set_name not in SETS:
        raise ValueError(f"set must be one of {SETS}, got {set_name!r}.")
    if not rho >= 0 or not math.isfinite(rho):
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}.")
    if rho == 0.0:
        return fit_nonrobust(problem, weights)
    if theta0 is None:
        theta0 = fit_nonrobust(problem, weights).theta
    res = minimize(lambda th: robust_value_and_grad(problem, weights, set_name, rho, th), np.asarray(theta0, dtype=float),
                   jac=True, method="L-BFGS-B", options={"gtol": gtol, "ftol": 1e-15, "maxiter": 1000, "maxcor": 20})
    grad = robust_value_and_grad(problem, weights, set_name, rho, res.x)[1]
    converged = bool(res.success or np.max(np.abs(grad)) < 1e-6)
    return Fit(res.x, converged, int(res.nit), float(res.fun))
