"""The effective sample size logged for every robust variant is Kish's (sum w)^2 / (n sum w^2), checked against
its meaning by simulation: the variance of the weighted mean of n iid unit-variance values is 1 / ESS. The
unnormalised ``clipped`` KL weights (sum w != 1) are where the old formula 1 / (n sum w^2) was wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from workflow_scripts.core.losses import effective_sample_fraction, robust_objective
from workflow_scripts.core.losses.objective import SampleStats


def simulated_ess_fraction(w: np.ndarray, draws: int = 400_000) -> float:
    """n_eff such that Var(sum w X / sum w) = 1 / n_eff for iid X ~ N(0, 1), estimated by simulation."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((draws, w.size))
    means = x @ (w / w.sum())
    return 1.0 / means.var() / w.size


CASES = [("rebel", 0.0, {}), ("kl-rebel", 0.5, {"kl_form": "softmax"}), ("kl-rebel", 0.5, {"kl_form": "clipped"}),
         ("chi2-rebel", 0.5, {}), ("dpo", 0.0, {}), ("kl-dpo", 0.25, {"kl_form": "softmax"}),
         ("kl-dpo", 0.25, {"kl_form": "clipped"}), ("chi2-dpo", 1.0, {})]


@pytest.mark.parametrize("variant, radius, forms", CASES)
def test_ess_fraction_matches_its_meaning_for_every_weighted_variant(variant, radius, forms):
    torch.manual_seed(0)
    losses = torch.rand(32, dtype=torch.float64) * 2
    objective = robust_objective(variant, radius, eta=1.0, beta=0.1, **forms)
    plan = objective.plan(SampleStats(losses))
    weights = (plan.weights if plan.weights is not None else torch.full_like(losses, 1 / losses.numel())).numpy()
    got = float(effective_sample_fraction(torch.as_tensor(weights)))
    assert got == pytest.approx(simulated_ess_fraction(weights), rel=0.01)
    assert got == pytest.approx(float(effective_sample_fraction(torch.as_tensor(weights * 7.0))), rel=1e-12)


def test_clipped_weights_do_not_sum_to_one_and_the_old_formula_was_wrong():
    losses = torch.linspace(0, 3, 32, dtype=torch.float64)
    w = robust_objective("kl-rebel", 0.5, eta=1.0, kl_form="clipped").plan(SampleStats(losses)).weights
    assert abs(float(w.sum()) - 1) > 0.1
    old = 1.0 / float(w.pow(2).sum() * w.numel())
    assert float(effective_sample_fraction(w)) == pytest.approx(simulated_ess_fraction(w.numpy()), rel=0.01)
    assert abs(old - float(effective_sample_fraction(w))) > 0.05
