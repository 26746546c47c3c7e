"""Every bad input to the loss API raises ValueError with a message that names the problem."""
from __future__ import annotations

import math

import pytest
import torch

from workflow_scripts.core.losses import (
    chi2_dual,
    chi2_weights,
    dpo_loss,
    get_variant,
    kl_value,
    kl_weights,
    kl_weights_clipped,
    per_sample_grad_sqnorm,
    rebel_loss,
    robust_objective,
    wasserstein_penalty,
)

F64 = torch.float64
BAD_POSITIVE = [0.0, -1.0, -1e-12, math.nan, math.inf, -math.inf]
BAD_RADIUS = [-1e-9, -1.0, math.nan, math.inf, -math.inf]


def pair(b=3, seed=0):
    return torch.randn(b, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))


LOSSES = torch.tensor([0.1, 0.5, 0.2], dtype=F64)


# --------------------------------------------------------------------------- variants
@pytest.mark.parametrize("name", ["sppo", "kl_rebel", "wrebel", "chi-rebel", "", "w-dpo-2"])
def test_unknown_variant(name):
    with pytest.raises(ValueError, match=r"unknown variant .*choose one of: .*chi2-dpo"):
        robust_objective(name, 0.1)
    with pytest.raises(ValueError, match="unknown variant"):
        get_variant(name)


# --------------------------------------------------------------------------- base hyperparameters
@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_eta(bad):
    with pytest.raises(ValueError, match=r"eta must be a finite number > 0"):
        rebel_loss(pair(), pair(seed=1), pair(seed=2), eta=bad)
    for variant, radius in [("rebel", 0.0), ("kl-rebel", 1.0), ("chi2-rebel", 0.5), ("w-rebel", 0.1)]:
        with pytest.raises(ValueError, match=r"eta must be a finite number > 0"):
            robust_objective(variant, radius, eta=bad)


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_beta(bad):
    with pytest.raises(ValueError, match=r"beta must be a finite number > 0"):
        dpo_loss(pair(), pair(seed=1), beta=bad)
    for variant, radius in [("dpo", 0.0), ("kl-dpo", 1.0), ("chi2-dpo", 0.5), ("wdpo", 0.1)]:
        with pytest.raises(ValueError, match=r"beta must be a finite number > 0"):
            robust_objective(variant, radius, beta=bad)


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_tau(bad):
    with pytest.raises(ValueError, match=r"tau .*must be a finite number > 0"):
        robust_objective("kl-rebel", bad)
    with pytest.raises(ValueError, match=r"tau .*must be a finite number > 0"):
        robust_objective("kl-dpo", bad, kl_form="clipped")
    for fn in (kl_weights, kl_value, kl_weights_clipped):
        with pytest.raises(ValueError, match=r"tau must be a finite number > 0"):
            fn(LOSSES, bad)


# --------------------------------------------------------------------------- radii
@pytest.mark.parametrize("bad", BAD_RADIUS)
def test_bad_rho(bad):
    with pytest.raises(ValueError, match=r"rho .*must be a finite number >= 0"):
        robust_objective("chi2-rebel", bad)
    with pytest.raises(ValueError, match=r"rho must be a finite number >= 0"):
        chi2_dual(LOSSES, bad)
    with pytest.raises(ValueError, match=r"rho must be a finite number >= 0"):
        chi2_weights(LOSSES, bad)


@pytest.mark.parametrize("bad", BAD_RADIUS)
def test_bad_rho0(bad):
    for variant in ("w-rebel", "wdpo"):
        with pytest.raises(ValueError, match=r"rho0 .*must be a finite number >= 0"):
            robust_objective(variant, bad)
    e = torch.randn(6, 2, dtype=F64, requires_grad=True)
    losses = e.sum(1).view(2, 3).sum(0) ** 2
    with pytest.raises(ValueError, match=r"rho0 must be a finite number >= 0"):
        wasserstein_penalty(losses, e, bad)


@pytest.mark.parametrize("radius", [0.1, -0.1, 1.0, math.nan])
@pytest.mark.parametrize("variant", ["rebel", "dpo"])
def test_radius_for_non_robust_variant(variant, radius):
    with pytest.raises(ValueError, match=r"non-robust variants take no radius"):
        robust_objective(variant, radius)


# --------------------------------------------------------------------------- shapes
def test_mismatched_pair_shapes():
    with pytest.raises(ValueError, match=r"logp_anchor has shape \(4, 2\) but logp has shape \(3, 2\)"):
        rebel_loss(pair(3), pair(4), pair(3), eta=1.0)
    with pytest.raises(ValueError, match=r"reward has shape \(2, 2\) but logp has shape \(3, 2\)"):
        rebel_loss(pair(3), pair(3), pair(2), eta=1.0)
    with pytest.raises(ValueError, match=r"logp_ref has shape \(5, 2\) but logp has shape \(3, 2\)"):
        dpo_loss(pair(3), pair(5), beta=0.1)
    obj = robust_objective("chi2-dpo", 0.5)
    with pytest.raises(ValueError, match=r"has shape .* must match"):
        obj.per_sample(pair(3), pair(2))


@pytest.mark.parametrize("shape", [(3, 3), (3, 1), (6,), (3, 2, 1), (2, 3)])
def test_wrong_pair_shape(shape):
    bad = torch.zeros(shape, dtype=F64)
    with pytest.raises(ValueError, match=r"logp must be a \(B, 2\) tensor"):
        rebel_loss(bad, bad, bad, eta=1.0)
    with pytest.raises(ValueError, match=r"logp must be a \(B, 2\) tensor"):
        dpo_loss(bad, bad, beta=0.1)
    with pytest.raises(ValueError, match=r"logp_ref must be a \(B, 2\) tensor"):
        dpo_loss(pair(3), bad, beta=0.1)
    with pytest.raises(ValueError, match=r"reward must be a \(B, 2\) tensor"):
        rebel_loss(pair(3), pair(3), bad, eta=1.0)


def test_pair_not_a_tensor():
    with pytest.raises(ValueError, match=r"logp must be a \(B, 2\) tensor.*got list"):
        dpo_loss([[0.0, 1.0]], pair(1), beta=0.1)


# --------------------------------------------------------------------------- losses
@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_non_finite_losses(bad_value):
    losses = torch.tensor([0.1, bad_value, 0.3], dtype=F64)
    for variant, radius in [("rebel", 0.0), ("kl-rebel", 1.0), ("chi2-dpo", 0.5), ("dpo", 0.0)]:
        with pytest.raises(ValueError, match=r"losses contain NaN or infinite values"):
            robust_objective(variant, radius)(losses)
    for fn, arg in [(kl_weights, 1.0), (kl_value, 1.0), (chi2_dual, 0.5), (chi2_weights, 0.5)]:
        with pytest.raises(ValueError, match=r"losses contain NaN or infinite values"):
            fn(losses, arg)


def test_nan_losses_with_grad():
    x = torch.tensor([0.0, 1.0], dtype=F64, requires_grad=True)
    losses = torch.log(x - 0.5) * 1.0                          # log of a negative number: nan
    with pytest.raises(ValueError, match="NaN"):
        robust_objective("kl-dpo", 0.5)(losses)


@pytest.mark.parametrize("losses", [torch.zeros(0, dtype=F64), torch.zeros(3, 2, dtype=F64), torch.tensor(1.0, dtype=F64)])
def test_empty_or_not_1d_losses(losses):
    for variant, radius in [("rebel", 0.0), ("kl-rebel", 1.0), ("chi2-rebel", 0.5)]:
        with pytest.raises(ValueError, match=r"losses must be a non-empty 1-D tensor"):
            robust_objective(variant, radius)(losses)
    for fn, arg in [(kl_weights, 1.0), (chi2_dual, 0.5), (chi2_weights, 0.5)]:
        with pytest.raises(ValueError, match=r"losses must be a non-empty 1-D tensor"):
            fn(losses, arg)


# --------------------------------------------------------------------------- forms
@pytest.mark.parametrize("form", ["pointwize", "sqrt-mean", "", "SQRT_MEAN"])
def test_bad_wasserstein_form(form):
    with pytest.raises(ValueError, match=r"wasserstein form must be one of \('sqrt_mean', 'pointwise'\)"):
        robust_objective("w-rebel", 0.1, wasserstein_form=form)
    e = torch.randn(6, 2, dtype=F64, requires_grad=True)
    losses = e.sum(1).view(2, 3).sum(0) ** 2
    with pytest.raises(ValueError, match=r"form must be one of"):
        wasserstein_penalty(losses, e, 0.1, form=form)


@pytest.mark.parametrize("form", ["softmx", "clip", "", "exp"])
def test_bad_kl_form(form):
    with pytest.raises(ValueError, match=r"kl form must be one of \('softmax', 'clipped'\)"):
        robust_objective("kl-dpo", 0.5, kl_form=form)


# --------------------------------------------------------------------------- missing inputs
@pytest.mark.parametrize("variant,radius", [("rebel", 0.0), ("w-rebel", 0.1), ("kl-rebel", 1.0), ("chi2-rebel", 0.5)])
def test_missing_reward_for_rebel(variant, radius):
    obj = robust_objective(variant, radius)
    with pytest.raises(ValueError, match=r"regresses on rewards: pass reward of shape \(B, 2\)"):
        obj.per_sample(pair(), pair(seed=1))


def test_dpo_needs_no_reward():
    obj = robust_objective("chi2-dpo", 0.5)
    assert obj.per_sample(pair(), pair(seed=1)).shape == (3,)


@pytest.mark.parametrize("variant", ["w-rebel", "wdpo"])
def test_missing_embeddings_for_wasserstein(variant):
    obj = robust_objective(variant, 0.1)
    assert obj.needs_embeddings
    losses = torch.tensor([0.1, 0.2], dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match=r"Wasserstein variants need the input embeddings"):
        obj(losses)


def test_embeddings_layout_and_graph():
    e = torch.randn(6, 2, dtype=F64, requires_grad=True)
    losses = e.sum(1).view(3, 2).sum(0) ** 2                    # B = 2, k = 3
    with pytest.raises(ValueError, match=r"multiple of the batch size 4"):
        per_sample_grad_sqnorm(torch.cat([losses, losses]), e)  # 6 rows, B = 4
    with pytest.raises(ValueError, match=r"multiple of the batch size"):
        per_sample_grad_sqnorm(losses, torch.randn(6, dtype=F64, requires_grad=True))
    with pytest.raises(ValueError, match=r"embeddings must be part of the autograd graph"):
        per_sample_grad_sqnorm(losses, e.detach())
    with pytest.raises(ValueError, match=r"multiple of the batch size"):
        robust_objective("wdpo", 0.1)(torch.cat([losses, losses]), e)
