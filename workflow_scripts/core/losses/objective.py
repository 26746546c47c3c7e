"""Variants = a base loss composed with an ambiguity set, and the scalar to backpropagate.

    objective = robust_objective("chi2-rebel", radius=0.5, eta=1.0)
    losses = objective.per_sample(logp, logp_anchor, reward=reward)      # (B,)
    out = objective(losses)                                              # out.loss.backward()

No variant is written out by hand: the registry (:mod:`.registry`, torch-free) is the product of
the bases and the ambiguity sets; the only irregular name is the paper's "wdpo". This module
attaches the implementations to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from workflow_scripts.core.losses import _checks
from workflow_scripts.core.losses.ambiguity import (
    WASSERSTEIN_FORMS,
    chi2_dual,
    chi2_weights,
    kl_value,
    kl_weights,
    kl_weights_clipped,
    per_sample_grad_sqnorm,
    safe_sqrt,
)
from workflow_scripts.core.losses.bases import dpo_loss, rebel_loss
from workflow_scripts.core.losses.distributed import all_reduce_sum, gather_detached
from workflow_scripts.core.losses.registry import BASE_HPARAM, SET_RADIUS, VARIANTS, Variant, get_variant  # noqa: F401


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


@dataclass(frozen=True)
class SampleStats:
    """The detached per-sample quantities a set needs from the WHOLE global batch.

    ``losses`` (n,) always; ``sqnorm`` (n,) = ``||grad_{e_i} l_i||^2`` for Wasserstein sets.
    ``n`` is this rank's share of the global batch (all its micro-batches, in order).
    """

    losses: torch.Tensor
    sqnorm: Optional[torch.Tensor] = None

    @staticmethod
    def cat(parts: "list[SampleStats]") -> "SampleStats":
        sq = [p.sqnorm for p in parts]
        return SampleStats(torch.cat([p.losses for p in parts]),
                           None if any(s is None for s in sq) else torch.cat(sq))


@dataclass(frozen=True)
class BatchPlan:
    """The robust aggregate of one global batch, fixed before its gradient micro-steps.

    ``local_weights`` are this rank's slice of the global weights (weighted sets); ``root`` is
    ``sqrt(mean_i s_i)`` over the global batch (Wasserstein ``sqrt_mean``). ``size`` is the
    global batch size N, ``world_size`` the number of ranks whose gradients the engine averages.
    The rest describe the whole global batch, for logging.
    """

    size: int
    world_size: int
    value: torch.Tensor
    mean_loss: torch.Tensor
    local_weights: Optional[torch.Tensor] = None
    weights: Optional[torch.Tensor] = None
    root: Optional[torch.Tensor] = None
    penalty: Optional[torch.Tensor] = None


# --------------------------------------------------------------------------- ambiguity sets
class AmbiguitySet:
    """Turns per-sample losses into this rank's share of the global robust objective.

    Two steps, so that the objective is exact whatever the split of the global batch into
    ranks and micro-batches (gradient accumulation):

    1. :meth:`plan` sees the detached :class:`SampleStats` of the whole global batch (each
       rank passes its share; reductions stay inside ``group``) and fixes the weights /
       normaliser;
    2. :meth:`surrogate` turns one micro-batch's losses into a scalar whose gradient is that
       micro-batch's exact share of the global objective's gradient. Summed over this rank's
       micro-batches and averaged over ranks (the engine's data-parallel average), the
       gradients equal one process holding the whole batch.

    ``separable`` sets (the mean, Wasserstein ``pointwise``) need no plan before the gradient
    pass: their surrogate only depends on N.
    """

    name = ""
    radius_name: Optional[str] = None      # the config name of this set's radius
    needs_embeddings = False
    separable = False

    def plan(self, stats: SampleStats, group=None) -> BatchPlan:
        raise NotImplementedError

    def separable_plan(self, size: int, world_size: int) -> BatchPlan:
        """The plan of a separable set, known before any forward (logged values left empty)."""
        raise ValueError(f"the {self.name} set needs the whole batch's statistics first (it is not separable).")

    def surrogate(self, losses: torch.Tensor, sqnorm: Optional[torch.Tensor], plan: BatchPlan, start: int) -> torch.Tensor:
        """This micro-batch's scalar; its samples are ``[start, start + len(losses))`` of this rank's share."""
        raise NotImplementedError


class _WeightedSet(AmbiguitySet):
    """Sets whose objective is ``sum_i w_i l_i`` with detached global weights ``w``."""

    def weights_and_value(self, global_losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def plan(self, stats, group=None):
        batch = gather_detached(stats.losses, group)
        weights, value = self.weights_and_value(batch.values)
        return BatchPlan(batch.size, batch.world_size, value.detach(), batch.values.mean(),
                         local_weights=weights[batch.start:batch.stop], weights=weights)

    def surrogate(self, losses, sqnorm, plan, start):
        w = plan.local_weights[start:start + losses.numel()].to(losses.dtype)
        return plan.world_size * torch.sum(w * losses)


class NoAmbiguity(_WeightedSet):
    """The empirical distribution: the plain mean (the non-robust base)."""

    name = "none"
    separable = True

    def __init__(self, radius: float = 0.0):
        if float(radius) != 0.0:
            raise ValueError(f"the non-robust variants take no radius; use radius 0, got {radius!r}.")

    def weights_and_value(self, global_losses):
        n = global_losses.numel()
        return torch.full_like(global_losses, 1.0 / n), global_losses.mean()

    def separable_plan(self, size, world_size):
        nan = torch.tensor(float("nan"))
        return BatchPlan(size, world_size, nan, nan)

    def surrogate(self, losses, sqnorm, plan, start):
        return plan.world_size * torch.sum(losses) / plan.size


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
    with ``s_i = ||grad_{e_i} l_i||^2`` and both means over the GLOBAL batch. For ``sqrt_mean``
    the surrogate ``sum_micro l_i / N + rho0 * sum_micro s_i / (2 N sqrt(mean s))``, with the
    global ``sqrt(mean s)`` fixed by the plan, has the exact gradient of the objective on the
    micro-batch's samples (chain rule through the square root). ``pointwise`` is separable.
    """

    name = "wasserstein"
    radius_name = "rho0"
    needs_embeddings = True

    def __init__(self, radius: float, form: str = "sqrt_mean"):
        self.rho0 = _checks.non_negative("rho0 (the Wasserstein radius)", radius)
        if form not in WASSERSTEIN_FORMS:
            raise ValueError(f"wasserstein form must be one of {WASSERSTEIN_FORMS}, got {form!r}.")
        self.form = form
        self.separable = form == "pointwise"

    def plan(self, stats, group=None):
        if stats.sqnorm is None:
            raise ValueError("Wasserstein plans need the per-sample embedding-gradient norms (SampleStats.sqnorm).")
        batch = gather_detached(stats.losses, group)
        n = batch.size
        sq_mean = all_reduce_sum(stats.sqnorm.detach().sum(), group) / n
        mean_loss = batch.values.mean()
        if self.form == "pointwise":
            penalty, root = self.rho0 * sq_mean, None
        else:
            root = safe_sqrt(sq_mean)
            penalty = self.rho0 * root
        return BatchPlan(n, batch.world_size, (mean_loss + penalty).detach(), mean_loss, root=root,
                         penalty=penalty.detach())

    def separable_plan(self, size, world_size):
        if not self.separable:
            return super().separable_plan(size, world_size)
        nan = torch.tensor(float("nan"))
        return BatchPlan(size, world_size, nan, nan)

    def surrogate(self, losses, sqnorm, plan, start):
        if sqnorm is None:
            raise ValueError("Wasserstein variants need the input embeddings (the embedding layer's output) of the batch.")
        n = plan.size
        if self.form == "pointwise":
            local = torch.sum(losses + self.rho0 * sqnorm) / n
        else:
            local = torch.sum(losses) / n + self.rho0 * torch.sum(sqnorm) / (2.0 * n * plan.root.to(sqnorm.dtype))
        return plan.world_size * local


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
    "rebel": Base("rebel", BASE_HPARAM["rebel"],
                  lambda logp, logp_anchor, reward, h: rebel_loss(logp, logp_anchor, reward, h)),
    "dpo": Base("dpo", BASE_HPARAM["dpo"], lambda logp, logp_anchor, reward, h: dpo_loss(logp, logp_anchor, h)),
}
assert set(AMBIGUITY_SETS) == set(SET_RADIUS) and all(AMBIGUITY_SETS[s].radius_name == r for s, r in SET_RADIUS.items())


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

    @property
    def separable(self) -> bool:
        """True when no whole-batch statistic is needed before the gradient pass (mean, W pointwise)."""
        return self.set.separable

    def sample_sqnorm(self, losses: torch.Tensor, embeddings: Optional[torch.Tensor],
                      create_graph: bool = True) -> Optional[torch.Tensor]:
        """``||grad_{e_i} l_i||^2`` per sample for Wasserstein sets (None for the others).

        ``create_graph=True`` keeps it differentiable (the gradient pass); ``False`` is the
        cheaper statistics-only pass.
        """
        if not self.needs_embeddings:
            return None
        if embeddings is None:
            raise ValueError("Wasserstein variants need the input embeddings (the embedding layer's output) of the batch.")
        return per_sample_grad_sqnorm(losses, embeddings, create_graph=create_graph)

    def statistics(self, losses: torch.Tensor, sqnorm: Optional[torch.Tensor] = None) -> SampleStats:
        losses = _checks.per_sample_losses(losses)
        return SampleStats(losses.detach(), None if sqnorm is None else sqnorm.detach())

    def plan(self, stats: SampleStats) -> BatchPlan:
        """The global batch's weights / normaliser from every rank's detached statistics."""
        _checks.per_sample_losses(stats.losses)
        return self.set.plan(stats, self.group)

    def separable_plan(self, size: int, world_size: int) -> BatchPlan:
        return self.set.separable_plan(size, world_size)

    def surrogate(self, losses: torch.Tensor, sqnorm: Optional[torch.Tensor], plan: BatchPlan, start: int = 0) -> torch.Tensor:
        """One micro-batch's scalar to backpropagate (see :class:`AmbiguitySet`)."""
        losses = _checks.per_sample_losses(losses)
        return self.set.surrogate(losses, sqnorm, plan, start)

    def __call__(self, losses: torch.Tensor, embeddings: Optional[torch.Tensor] = None) -> ObjectiveOutput:
        """The whole (global) batch in one pass: statistics, plan and surrogate at once."""
        losses = _checks.per_sample_losses(losses)
        sqnorm = self.sample_sqnorm(losses, embeddings)
        plan = self.plan(self.statistics(losses, sqnorm))
        loss = self.surrogate(losses, sqnorm, plan)
        return ObjectiveOutput(loss, plan.value, plan.mean_loss, plan.weights, plan.penalty)


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
