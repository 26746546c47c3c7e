"""Variants = a base loss composed with an ambiguity set, and the scalar to backpropagate.

    objective = robust_objective("chi2-rebel", radius=0.5, eta=1.0)
    losses = objective.per_sample(logp, logp_anchor, reward=reward)      # (B,)
    out = objective(losses)                                              # out.loss.backward()

No variant is written out by hand: the registry is the product of ``BASES`` and
``AMBIGUITY_SETS``; the only irregular name is the paper's "wdpo".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from . import _checks
from .ambiguity import (
    WASSERSTEIN_FORMS,
    chi2_dual,
    chi2_weights,
    kl_value,
    kl_weights,
    kl_weights_clipped,
    per_sample_grad_sqnorm,
    safe_sqrt,
)
from .bases import dpo_loss, rebel_loss
from .distributed import GlobalBatch, all_reduce_sum, gather_detached


@dataclass(frozen=True)
class ObjectiveOutput:
    """What one robust step produces.

    ``loss`` is this rank's scalar to backpropagate (its gradient, averaged over ranks by the
    engine, equals the gradient of the global robust objective). ``value`` is the robust
    objective on the global batch, ``weights`` the global worst-case weights (``None`` for
    Wasserstein, which keeps the empirical distribution), all detached.
    """

    loss: torch.Tensor
    value: torch.Tensor
    mean_loss: torch.Tensor
    weights: Optional[torch.Tensor] = None
    penalty: Optional[torch.Tensor] = None


# --------------------------------------------------------------------------- ambiguity sets
class AmbiguitySet:
    """Turns this rank's per-sample losses into its share of the global robust objective."""

    name = ""
    radius_name: Optional[str] = None      # the config name of this set's radius
    needs_embeddings = False

    def aggregate(self, losses: torch.Tensor, batch: GlobalBatch, embeddings, group=None) -> ObjectiveOutput:
        """``group``: the process group sharing the global batch (reductions must stay inside it)."""
        raise NotImplementedError


class _WeightedSet(AmbiguitySet):
    """Sets whose objective is ``sum_i w_i l_i`` with detached global weights ``w``."""

    def weights_and_value(self, global_losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def aggregate(self, losses, batch, embeddings, group=None):
        weights, value = self.weights_and_value(batch.values)
        local_weights = weights[batch.start:batch.stop].to(losses.dtype)
        loss = batch.grad_scale * torch.sum(local_weights * losses)
        return ObjectiveOutput(loss, value.detach(), batch.values.mean(), weights)


class NoAmbiguity(_WeightedSet):
    """The empirical distribution: the plain mean (the non-robust base)."""

    name = "none"

    def __init__(self, radius: float = 0.0):
        if float(radius) != 0.0:
            raise ValueError(f"the non-robust variants take no radius; use radius 0, got {radius!r}.")

    def weights_and_value(self, global_losses):
        n = global_losses.numel()
        return torch.full_like(global_losses, 1.0 / n), global_losses.mean()


class KLSet(_WeightedSet):
    """KL-penalised set, temperature ``tau``: weights ``softmax(l / tau)`` (``form="softmax"``),
    or the WDPO repository's unnormalised ``min(exp((l - mean)/tau), 10) / B`` (``form="clipped"``)."""

    name = "kl"
    radius_name = "tau"
    FORMS = ("softmax", "clipped")

    def __init__(self, radius: float, form: str = "softmax"):
        self.tau = _checks.positive("tau (the KL radius)", radius)
        if form not in self.FORMS:
            raise ValueError(f"kl form must be one of {self.FORMS}, got {form!r}.")
        self.form = form

    def weights_and_value(self, global_losses):
        if self.form == "clipped":
            weights = kl_weights_clipped(global_losses, self.tau) / global_losses.numel()
            return weights, torch.sum(weights * global_losses)
        return kl_weights(global_losses, self.tau), kl_value(global_losses, self.tau)


class Chi2Set(_WeightedSet):
    """Chi-squared ball of radius ``rho``, solved exactly (see :func:`chi2_dual`)."""

    name = "chi2"
    radius_name = "rho"

    def __init__(self, radius: float):
        self.rho = _checks.non_negative("rho (the chi2 radius)", radius)

    def weights_and_value(self, global_losses):
        _, value = chi2_dual(global_losses, self.rho)
        return chi2_weights(global_losses, self.rho), value


class WassersteinSet(AmbiguitySet):
    """Type-2 Wasserstein ball, radius ``rho0``, in its gradient-regularisation form.

    ``sqrt_mean``: ``mean l + rho0 sqrt(mean_i s_i)``; ``pointwise``: ``mean_i (l_i + rho0 s_i)``,
    with ``s_i = ||grad_{e_i} l_i||^2``. Under data parallelism the mean of ``s`` is global;
    the surrogate ``rho0 * sum_local s_i / (2 B sqrt(mean s))`` has the exact gradient of
    ``rho0 sqrt(mean s)`` on this rank's slice (chain rule with the global mean detached).
    """

    name = "wasserstein"
    radius_name = "rho0"
    needs_embeddings = True

    def __init__(self, radius: float, form: str = "sqrt_mean"):
        self.rho0 = _checks.non_negative("rho0 (the Wasserstein radius)", radius)
        if form not in WASSERSTEIN_FORMS:
            raise ValueError(f"wasserstein form must be one of {WASSERSTEIN_FORMS}, got {form!r}.")
        self.form = form

    def aggregate(self, losses, batch, embeddings, group=None):
        if embeddings is None:
            raise ValueError("Wasserstein variants need the input embeddings (the embedding layer's output) of the batch.")
        sqnorm = per_sample_grad_sqnorm(losses, embeddings)
        n = batch.size
        global_sqnorm_mean = all_reduce_sum(sqnorm.sum(), group) / n
        mean_loss = batch.values.mean()
        if self.form == "pointwise":
            penalty = self.rho0 * global_sqnorm_mean
            local = torch.sum(losses + self.rho0 * sqnorm) / n
        else:
            root = safe_sqrt(global_sqnorm_mean)
            penalty = self.rho0 * root
            local = torch.sum(losses) / n + self.rho0 * torch.sum(sqnorm) / (2.0 * n * root)
        return ObjectiveOutput(batch.grad_scale * local, (mean_loss + penalty).detach(), mean_loss, None, penalty.detach())


AMBIGUITY_SETS: dict[str, type[AmbiguitySet]] = {
    "none": NoAmbiguity,
    "wasserstein": WassersteinSet,
    "kl": KLSet,
    "chi2": Chi2Set,
}


# --------------------------------------------------------------------------- bases and variants
@dataclass(frozen=True)
class Base:
    name: str
    hyperparameter: str          # "eta" for REBEL, "beta" for DPO
    fn: Callable[..., torch.Tensor]


BASES: dict[str, Base] = {
    "rebel": Base("rebel", "eta", lambda logp, logp_anchor, reward, h: rebel_loss(logp, logp_anchor, reward, h)),
    "dpo": Base("dpo", "beta", lambda logp, logp_anchor, reward, h: dpo_loss(logp, logp_anchor, h)),
}

_SET_PREFIX = {"none": "", "wasserstein": "w-", "kl": "kl-", "chi2": "chi2-"}
_PAPER_SPELLING = {"w-dpo": "wdpo"}   # the WDPO paper's name wins over the regular "w-dpo"


@dataclass(frozen=True)
class Variant:
    base: str
    ambiguity: str

    @property
    def name(self) -> str:
        regular = _SET_PREFIX[self.ambiguity] + self.base
        return _PAPER_SPELLING.get(regular, regular)

    @property
    def is_robust(self) -> bool:
        return self.ambiguity != "none"

    @property
    def radius_name(self) -> Optional[str]:
        return AMBIGUITY_SETS[self.ambiguity].radius_name


VARIANTS: dict[str, Variant] = {
    v.name: v for v in (Variant(b, s) for b in BASES for s in AMBIGUITY_SETS)
}
_ALIASES = {regular: paper for regular, paper in _PAPER_SPELLING.items()}


def get_variant(name: str) -> Variant:
    """Look a variant up by name (``rebel``, ``w-rebel``, ..., ``chi2-dpo``; ``w-dpo`` is accepted for ``wdpo``)."""
    key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}.")
    return VARIANTS[key]


class RobustObjective:
    """A variant with its hyperparameters: per-sample base losses and the robust aggregate."""

    def __init__(self, variant: Variant, ambiguity_set: AmbiguitySet, base_hparam: float, group=None):
        self.variant = variant
        self.set = ambiguity_set
        self.base = BASES[variant.base]
        self.base_hparam = _checks.positive(self.base.hyperparameter, base_hparam)
        self.group = group

    @property
    def needs_embeddings(self) -> bool:
        return self.set.needs_embeddings

    def per_sample(self, logp, logp_anchor, reward=None) -> torch.Tensor:
        """Per-sample base losses ``(B,)``; ``reward`` (B, 2) is required by REBEL, ignored by DPO."""
        if self.variant.base == "rebel" and reward is None:
            raise ValueError(f"{self.variant.name} regresses on rewards: pass reward of shape (B, 2).")
        return self.base.fn(logp, logp_anchor, reward, self.base_hparam)

    def __call__(self, losses: torch.Tensor, embeddings: Optional[torch.Tensor] = None) -> ObjectiveOutput:
        losses = _checks.per_sample_losses(losses)
        batch = gather_detached(losses, self.group)
        return self.set.aggregate(losses, batch, embeddings, self.group)


def robust_objective(
    variant: str,
    radius: float = 0.0,
    *,
    eta: float = 0.01,
    beta: float = 0.1,
    kl_form: str = "softmax",
    wasserstein_form: str = "sqrt_mean",
    group=None,
) -> RobustObjective:
    """Build the objective of a named variant.

    ``radius`` is ``rho0`` (Wasserstein), ``tau`` (KL, a temperature: smaller is more robust),
    ``rho`` (chi2), or 0 for the non-robust ``rebel``/``dpo``. ``eta`` is used by the REBEL
    variants, ``beta`` by the DPO variants. ``group`` is the process group whose ranks share
    one global batch (default: the world).
    """
    v = get_variant(variant)
    options = {"kl": {"form": kl_form}, "wasserstein": {"form": wasserstein_form}}.get(v.ambiguity, {})
    ambiguity_set = AMBIGUITY_SETS[v.ambiguity](radius, **options)
    return RobustObjective(v, ambiguity_set, eta if v.base == "rebel" else beta, group)
