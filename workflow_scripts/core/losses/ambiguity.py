"""Ambiguity sets: how per-sample losses become a worst-case objective (SPEC section 4).

All weights are computed from *detached* losses: by the envelope theorem the gradient of
the worst-case expectation is the worst-case-weighted sum of per-sample gradients, so
``sum_i w_i * l_i`` with ``w`` detached has exactly the robust objective's gradient.
"""
from __future__ import annotations

import math

import torch

from workflow_scripts.core.losses import _checks

#: Cap of the WDPO repository's unnormalised KL weights.
KL_CLIP_MAX = 10.0


# --------------------------------------------------------------------------- KL
def kl_weights(losses: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Worst-case weights of the KL-penalised set: ``softmax(l / tau)``.

    They are the gradient of the dual value ``tau * log mean_i exp(l_i / tau)``
    (:func:`kl_value`). Smaller ``tau`` is more robust: ``tau -> 0`` puts all mass on the
    largest loss, ``tau -> inf`` gives the uniform (non-robust) average.
    Detached, non-negative, sums to 1.
    """
    tau = _checks.positive("tau", tau)
    losses = _checks.per_sample_losses(losses).detach()
    return torch.softmax(losses / tau, dim=0)


def kl_value(losses: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Dual value of the KL-penalised set, ``sup_P E_P[l] - tau KL(P || P_n) = tau log mean exp(l/tau)``."""
    tau = _checks.positive("tau", tau)
    losses = _checks.per_sample_losses(losses)
    return tau * (torch.logsumexp(losses / tau, dim=0) - math.log(losses.numel()))


def kl_weights_clipped(losses: torch.Tensor, tau: float, clip: float = KL_CLIP_MAX) -> torch.Tensor:
    r"""Optional: the WDPO repository's unnormalised form ``min(exp((l_i - mean l) / tau), clip)``.

    Not a probability vector (it does not sum to 1); the objective using it is
    ``mean_i w_i l_i``. Offered to reproduce that code, not as the default.
    """
    tau = _checks.positive("tau", tau)
    losses = _checks.per_sample_losses(losses).detach()
    return torch.exp((losses - losses.mean()) / tau).clamp(max=float(clip))


# --------------------------------------------------------------------------- chi-squared
def chi2_dual(losses: torch.Tensor, rho: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact solution of the chi-squared ball's dual, in O(n log n).

    The worst case over ``{P : (n/2) sum_i (p_i - 1/n)^2 <= rho}`` is

    .. math::
        \sup_P E_P[l] = \min_\eta\; \eta + \sqrt{1 + 2\rho}\,\sqrt{\tfrac1n \sum_i (l_i - \eta)_+^2}.

    The objective is convex and, between consecutive sorted losses, has a closed-form
    stationary point: with the k largest losses active (mean ``m_k``, population variance
    ``v_k``), ``eta = m_k - sqrt(n v_k / (k (1 + 2 rho) - n))``. We sort once, evaluate every
    clipped stationary point and every breakpoint with prefix sums, and keep the minimum.

    Returns ``(eta_star, value)`` as 0-d tensors (detached). For ``rho = 0`` the infimum is
    the plain mean and is approached as ``eta -> -inf``: we return ``eta_star = -inf``.
    When ``rho >= (n - 1) / 2`` the ball contains every vertex and ``value = max(l)``.
    """
    rho = _checks.non_negative("rho", rho)
    losses = _checks.per_sample_losses(losses).detach()
    out_dtype = losses.dtype
    l = losses.to(torch.float64).flatten()
    n = l.numel()
    if rho == 0.0:
        return (torch.tensor(-math.inf, dtype=out_dtype, device=l.device), l.mean().to(out_dtype))

    c2 = 1.0 + 2.0 * rho
    c = math.sqrt(c2)
    # Shift by the maximum so prefix sums stay well conditioned.
    top = l.max()
    s = torch.sort(l - top, descending=True).values                      # s_1 >= ... >= s_n, s_1 = 0
    k = torch.arange(1, n + 1, dtype=torch.float64, device=l.device)
    mean_k = torch.cumsum(s, 0) / k
    var_k = (torch.cumsum(s * s, 0) / k - mean_k ** 2).clamp_min(0.0)
    lower = torch.cat([s[1:], s.new_tensor([-math.inf])])               # piece k is [s_{k+1}, s_k]

    denom = k * c2 - n
    has_stationary = denom > 0
    d = torch.sqrt(n * var_k / torch.where(has_stationary, denom, torch.ones_like(denom)))
    stationary = torch.where(has_stationary, mean_k - d, s)             # no stationary point: use the breakpoint
    stationary = torch.minimum(torch.maximum(stationary, lower), s)     # clip into piece k

    def piece_value(eta: torch.Tensor) -> torch.Tensor:
        # sum_{i<=k} (s_i - eta)^2 = k (v_k + (m_k - eta)^2), valid for eta inside piece k.
        return eta + c * torch.sqrt(k * (var_k + (mean_k - eta) ** 2) / n)

    candidates = torch.cat([stationary, s])
    values = torch.cat([piece_value(stationary), piece_value(s)])
    best = torch.argmin(values)
    eta_star = candidates[best]
    # Re-evaluate the objective directly at eta* (exact, O(n)).
    value = eta_star + c * torch.sqrt(torch.mean(torch.clamp(s - eta_star, min=0.0) ** 2))
    return (eta_star + top).to(out_dtype), (value + top).to(out_dtype)


def chi2_weights(losses: torch.Tensor, rho: float) -> torch.Tensor:
    r"""Worst-case distribution of the chi-squared ball: ``p_i = (l_i - eta*)_+ / sum_j (l_j - eta*)_+``.

    Detached, sums to 1. Edge cases: ``rho = 0`` gives the uniform weights; when
    ``eta* = max(l)`` (large radius, or all losses equal) the mass is spread uniformly over
    the maximal losses, which is the worst case inside the ball.
    """
    eta_star, _ = chi2_dual(losses, rho)
    l = losses.detach()
    if math.isinf(float(eta_star)):
        return torch.full_like(l, 1.0 / l.numel())
    excess = torch.clamp(l.to(torch.float64) - eta_star.to(torch.float64), min=0.0)
    total = excess.sum()
    if total <= 0:
        excess = (l == l.max()).to(torch.float64)
        total = excess.sum()
    return (excess / total).to(l.dtype)


# --------------------------------------------------------------------------- Wasserstein
def effective_sample_fraction(weights: torch.Tensor) -> torch.Tensor:
    """Kish's effective sample size of a weighting, as a fraction of n: ``(sum w)^2 / (n sum w^2)``.

    1 for uniform weights, 1/n when one sample holds all the weight; invariant to the weights' scale,
    so it also reads the unnormalised ``clipped`` KL weights right (``1 / (n sum w^2)`` assumes sum w = 1).
    """
    w = weights.double()
    return w.sum().pow(2) / (w.numel() * w.pow(2).sum())


def per_sample_grad_sqnorm(losses: torch.Tensor, embeddings: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    r"""``||grad_{e_i} l_i||^2`` for every sample, from ONE ``autograd.grad`` call.

    Samples do not interact in the forward pass, so the gradient of ``sum_i l_i`` with
    respect to the batch's embedding tensor holds every per-sample gradient at once.
    ``embeddings`` is the embedding layer's output, its first dimension ``k * B`` in
    sample-minor order: row ``j * B + i`` belongs to sample ``i`` (e.g. ``k = 2`` for the
    chosen and rejected sequences concatenated). ``create_graph=True`` keeps the result
    differentiable with respect to the parameters (the penalty needs a double backward);
    ``False`` gives the values only (a statistics pass), at the cost of one plain backward.
    """
    losses = _checks.per_sample_losses(losses)
    batch = losses.numel()
    if embeddings.dim() < 2 or embeddings.shape[0] % batch != 0:
        raise ValueError(
            f"embeddings must have a first dimension that is a multiple of the batch size {batch} "
            f"(row j*B + i belongs to sample i), got shape {tuple(embeddings.shape)}."
        )
    if not embeddings.requires_grad:
        raise ValueError("embeddings must be part of the autograd graph (the embedding layer's output, requires_grad=True).")
    (grad,) = torch.autograd.grad(losses.sum(), embeddings, create_graph=create_graph)
    row_sqnorm = grad.pow(2).reshape(grad.shape[0], -1).sum(dim=1)
    return row_sqnorm.view(-1, batch).sum(dim=0)


WASSERSTEIN_FORMS = ("sqrt_mean", "pointwise")


def wasserstein_penalty(losses: torch.Tensor, embeddings: torch.Tensor, rho0: float, form: str = "sqrt_mean") -> torch.Tensor:
    r"""Gradient-regularisation form of the type-2 Wasserstein ball (radius ``rho0``).

    - ``form="sqrt_mean"`` (default, SPEC): ``rho0 * sqrt(mean_i ||grad_{e_i} l_i||^2)``;
    - ``form="pointwise"`` (optional, the WDPO repository): ``mean_i rho0 * ||grad_{e_i} l_i||^2``.

    The robust objective is ``mean_i l_i + penalty``. Differentiable in the parameters.
    """
    rho0 = _checks.non_negative("rho0", rho0)
    if form not in WASSERSTEIN_FORMS:
        raise ValueError(f"form must be one of {WASSERSTEIN_FORMS}, got {form!r}.")
    sqnorm = per_sample_grad_sqnorm(losses, embeddings)
    if form == "pointwise":
        return rho0 * sqnorm.mean()
    return rho0 * safe_sqrt(sqnorm.mean())


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt whose gradient stays finite at 0 (all embedding gradients zero): the clamp moves the value by < 1e-19."""
    return torch.sqrt(x.clamp_min(torch.finfo(x.dtype).tiny))
