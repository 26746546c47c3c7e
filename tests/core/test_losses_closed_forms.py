"""Closed forms of the base losses, KL weights and the variant registry.

Every expected number is computed independently of the library: by hand (written out as
literals in the comments) or with the :mod:`math` module, never by calling the function
under test a second time.
"""
from __future__ import annotations

import math

import pytest
import torch

from workflow_scripts.core.losses import (
    AMBIGUITY_SETS,
    BASES,
    VARIANTS,
    dpo_loss,
    get_variant,
    kl_value,
    kl_weights,
    kl_weights_clipped,
    rebel_loss,
    robust_objective,
)

F64 = torch.float64


def t(x):
    return torch.tensor(x, dtype=F64)


# --------------------------------------------------------------------------- REBEL
def test_rebel_hand_computed():
    # eta = 0.5
    # row 0: log ratios (-1 - -1.5, -2 - -1) = (0.5, -1.0); relative 1.5; / eta = 3.0;
    #        relative reward 1.0 - 0.5 = 0.5;  loss (3.0 - 0.5)^2 = 6.25
    # row 1: log ratios (-3 - -2, -3 - -4) = (-1, 1); relative -2; / eta = -4;
    #        relative reward 0 - 2 = -2;       loss (-4 - -2)^2 = 4.0
    # row 2: everything equal -> 0
    logp = t([[-1.0, -2.0], [-3.0, -3.0], [-0.7, -0.7]])
    anchor = t([[-1.5, -1.0], [-2.0, -4.0], [-0.7, -0.7]])
    reward = t([[1.0, 0.5], [0.0, 2.0], [0.3, 0.3]])
    out = rebel_loss(logp, anchor, reward, eta=0.5)
    assert out.shape == (3,)
    assert out.dtype == F64
    torch.testing.assert_close(out, t([6.25, 4.0, 0.0]), rtol=0, atol=1e-14)


def test_rebel_eta_scales_log_ratio_only():
    # relative log ratio 1.5, relative reward 0.5:  eta=2 -> (0.75 - 0.5)^2 = 0.0625
    #                                               eta=0.01 -> (150 - 0.5)^2 = 22350.25
    logp = t([[-1.0, -2.0]])
    anchor = t([[-1.5, -1.0]])
    reward = t([[1.0, 0.5]])
    assert rebel_loss(logp, anchor, reward, eta=2.0).item() == pytest.approx(0.0625, rel=1e-14)
    assert rebel_loss(logp, anchor, reward, eta=0.01).item() == pytest.approx(22350.25, rel=1e-12)


def test_rebel_gradient_hand_computed():
    # l = (x/eta - r)^2 with x = (logp_0 - a_0) - (logp_1 - a_1):
    # dl/dlogp_0 = 2 (x/eta - r) / eta = 2 * 2.5 / 0.5 = 10;  dl/dlogp_1 = -10
    logp = t([[-1.0, -2.0]]).requires_grad_(True)
    anchor = t([[-1.5, -1.0]])
    reward = t([[1.0, 0.5]])
    rebel_loss(logp, anchor, reward, eta=0.5).sum().backward()
    torch.testing.assert_close(logp.grad, t([[10.0, -10.0]]), rtol=0, atol=1e-13)


def test_rebel_reward_dtype_follows_logp():
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float32)
    anchor = torch.tensor([[-1.5, -1.0]], dtype=torch.float32)
    reward = t([[1.0, 0.5]])
    out = rebel_loss(logp, anchor, reward, eta=0.5)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(6.25, rel=1e-6)


# --------------------------------------------------------------------------- DPO
def _dpo_reference(h: float, beta: float) -> float:
    """-log(sigmoid(beta h)) with the math module, in a numerically safe form."""
    z = beta * h
    if z >= 0:
        return math.log1p(math.exp(-z))
    return -z + math.log1p(math.exp(z))


def test_dpo_hand_computed():
    beta = 0.1
    # row 0: h = (-1 - -1.5) - (-2 - -1) = 0.5 + 1 = 1.5
    # row 1: h = (-3 - -2) - (-3 - -4) = -1 - 1 = -2
    # row 2: h = 0 -> loss = log 2
    logp = t([[-1.0, -2.0], [-3.0, -3.0], [-0.5, -0.5]])
    ref = t([[-1.5, -1.0], [-2.0, -4.0], [-0.5, -0.5]])
    expected = [
        -math.log(1.0 / (1.0 + math.exp(-0.15))),
        -math.log(1.0 / (1.0 + math.exp(0.2))),
        math.log(2.0),
    ]
    out = dpo_loss(logp, ref, beta=beta)
    assert out.shape == (3,)
    torch.testing.assert_close(out, t(expected), rtol=1e-14, atol=0)
    assert out[0].item() == pytest.approx(_dpo_reference(1.5, beta), rel=1e-14)


def test_dpo_extreme_margins_are_finite():
    # h = -1000, beta = 1: -log sigmoid(-1000) = 1000 + log1p(e^-1000) = 1000 exactly in float64
    # h = +1000: -log sigmoid(1000) = log1p(e^-1000) ~ e^-1000 (underflows to 0)
    logp = t([[0.0, 1000.0], [1000.0, 0.0]])
    ref = torch.zeros(2, 2, dtype=F64)
    out = dpo_loss(logp, ref, beta=1.0)
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(1000.0, rel=1e-15)
    assert 0.0 <= out[1].item() < 1e-300


def test_dpo_gradient_hand_computed():
    # d/dh [-log sigmoid(beta h)] = -beta (1 - sigmoid(beta h)) = -beta sigmoid(-beta h)
    beta, h = 0.1, 1.5
    g = -beta / (1.0 + math.exp(beta * h))
    logp = t([[-1.0, -2.0]]).requires_grad_(True)
    ref = t([[-1.5, -1.0]])
    dpo_loss(logp, ref, beta).sum().backward()
    torch.testing.assert_close(logp.grad, t([[g, -g]]), rtol=1e-14, atol=0)


# --------------------------------------------------------------------------- anchors
def test_rebel_anchor_is_detached():
    logp = t([[-1.0, -2.0], [-0.3, -0.9]]).requires_grad_(True)
    anchor = t([[-1.5, -1.0], [-0.2, -0.1]]).requires_grad_(True)
    reward = t([[1.0, 0.5], [0.2, 0.1]]).requires_grad_(True)
    rebel_loss(logp, anchor, reward, eta=0.5).sum().backward()
    assert logp.grad is not None and torch.count_nonzero(logp.grad) > 0
    assert anchor.grad is None


def test_dpo_reference_is_detached():
    logp = t([[-1.0, -2.0], [-0.3, -0.9]]).requires_grad_(True)
    ref = t([[-1.5, -1.0], [-0.2, -0.1]]).requires_grad_(True)
    dpo_loss(logp, ref, beta=0.1).sum().backward()
    assert logp.grad is not None and torch.count_nonzero(logp.grad) > 0
    assert ref.grad is None


@pytest.mark.parametrize("variant", ["rebel", "kl-rebel", "chi2-dpo", "dpo"])
def test_objective_per_sample_detaches_anchor(variant):
    radius = {"rebel": 0.0, "dpo": 0.0, "kl-rebel": 1.0, "chi2-dpo": 0.5}[variant]
    obj = robust_objective(variant, radius, eta=0.5, beta=0.1)
    logp = t([[-1.0, -2.0], [-0.3, -0.9]]).requires_grad_(True)
    anchor = t([[-1.5, -1.0], [-0.2, -0.1]]).requires_grad_(True)
    reward = t([[1.0, 0.5], [0.2, 0.1]])
    obj(obj.per_sample(logp, anchor, reward)).loss.backward()
    assert anchor.grad is None
    assert logp.grad is not None


# --------------------------------------------------------------------------- KL weights
LOSSES = t([0.3, 1.7, -0.4, 0.9, 1.2, 0.0])


def _check_probability_vector(w, like):
    assert w.shape == like.shape
    assert not w.requires_grad
    assert (w >= 0).all()
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_kl_weights_uniform_as_tau_grows():
    w = kl_weights(LOSSES.clone().requires_grad_(True), tau=1e6)
    _check_probability_vector(w, LOSSES)
    torch.testing.assert_close(w, torch.full_like(LOSSES, 1 / 6), rtol=1e-5, atol=0)


def test_kl_weights_one_hot_as_tau_shrinks():
    w = kl_weights(LOSSES.clone().requires_grad_(True), tau=1e-4)
    _check_probability_vector(w, LOSSES)
    expected = torch.zeros_like(LOSSES)
    expected[1] = 1.0           # 1.7 is the largest loss; the runner-up is 0.5 below
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)


def test_kl_weights_match_softmax_by_hand():
    tau = 0.7
    raw = [math.exp(x / tau) for x in LOSSES.tolist()]
    expected = t([r / sum(raw) for r in raw])
    w = kl_weights(LOSSES.clone().requires_grad_(True), tau)
    _check_probability_vector(w, LOSSES)
    torch.testing.assert_close(w, expected, rtol=1e-13, atol=0)


def test_kl_weights_large_losses_do_not_overflow():
    losses = t([1000.0, 1001.0, 999.0])
    w = kl_weights(losses, tau=0.01)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w, t([0.0, 1.0, 0.0]), rtol=0, atol=1e-40)


def test_kl_value_hand_computed():
    tau = 0.7
    xs = LOSSES.tolist()
    expected = tau * math.log(sum(math.exp(x / tau) for x in xs) / len(xs))
    assert kl_value(LOSSES, tau).item() == pytest.approx(expected, rel=1e-13)
    # limits: tau -> inf gives the mean, tau -> 0 the max
    assert kl_value(LOSSES, 1e7).item() == pytest.approx(sum(xs) / len(xs), abs=1e-6)
    assert kl_value(LOSSES, 1e-4).item() == pytest.approx(max(xs) - 1e-4 * math.log(len(xs)), abs=1e-9)


def test_kl_weights_clipped_repo_form():
    tau = 0.5
    xs = LOSSES.tolist()
    mean = sum(xs) / len(xs)
    expected = t([min(math.exp((x - mean) / tau), 10.0) for x in xs])
    w = kl_weights_clipped(LOSSES.clone().requires_grad_(True), tau)
    assert not w.requires_grad
    torch.testing.assert_close(w, expected, rtol=1e-13, atol=0)
    assert w.max().item() <= 10.0


# --------------------------------------------------------------------------- registry
EXPECTED_VARIANTS = {
    "rebel": ("rebel", "none"),
    "w-rebel": ("rebel", "wasserstein"),
    "kl-rebel": ("rebel", "kl"),
    "chi2-rebel": ("rebel", "chi2"),
    "dpo": ("dpo", "none"),
    "wdpo": ("dpo", "wasserstein"),
    "kl-dpo": ("dpo", "kl"),
    "chi2-dpo": ("dpo", "chi2"),
}


def test_registry_has_exactly_the_eight_variants():
    assert set(VARIANTS) == set(EXPECTED_VARIANTS)
    assert set(BASES) == {"rebel", "dpo"}
    assert set(AMBIGUITY_SETS) == {"none", "wasserstein", "kl", "chi2"}


@pytest.mark.parametrize("name", sorted(EXPECTED_VARIANTS))
def test_registry_maps_name_to_base_and_set(name):
    base, amb = EXPECTED_VARIANTS[name]
    v = get_variant(name)
    assert (v.base, v.ambiguity) == (base, amb)
    assert v.name == name
    assert v.is_robust == (amb != "none")
    assert v.radius_name == {"none": None, "wasserstein": "rho0", "kl": "tau", "chi2": "rho"}[amb]
    radius = {"none": 0.0, "wasserstein": 0.1, "kl": 1.0, "chi2": 0.5}[amb]
    obj = robust_objective(name, radius, eta=0.3, beta=0.2)
    assert obj.variant == v
    assert obj.set.name == amb
    assert obj.needs_embeddings == (amb == "wasserstein")
    assert obj.base_hparam == (0.3 if base == "rebel" else 0.2)


@pytest.mark.parametrize("alias", ["w-dpo", "W-DPO", " w-dpo ", "WDPO"])
def test_wdpo_alias(alias):
    assert get_variant(alias) == VARIANTS["wdpo"]
    assert get_variant(alias).name == "wdpo"
    assert robust_objective(alias, 0.1).variant.name == "wdpo"


@pytest.mark.parametrize("name", ["w-kl-dpo", "rebel2", "", "ppo", "kl", "chi2_rebel"])
def test_unknown_variant(name):
    with pytest.raises(ValueError, match="unknown variant"):
        get_variant(name)
    with pytest.raises(ValueError, match="unknown variant"):
        robust_objective(name, 0.1)
