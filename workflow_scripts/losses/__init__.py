"""The public loss API of the DRO-REBEL workflow: every alignment loss in the project.

Bases (per-sample): :func:`rebel_loss`, :func:`dpo_loss`.
Ambiguity sets: :func:`kl_weights` (and the optional :func:`kl_weights_clipped`),
:func:`chi2_dual` / :func:`chi2_weights`, :func:`wasserstein_penalty`.
Composition: :func:`robust_objective` (a variant name + hyperparameters -> the scalar to
backpropagate, distributed-aware; ``statistics`` / ``plan`` / ``surrogate`` split one global
batch over ranks and gradient-accumulation micro-steps exactly), :func:`get_variant`,
:data:`VARIANTS`.
"""
from .ambiguity import (
    chi2_dual,
    chi2_weights,
    kl_value,
    kl_weights,
    kl_weights_clipped,
    per_sample_grad_sqnorm,
    wasserstein_penalty,
)
from .bases import dpo_loss, rebel_loss
from .distributed import GlobalBatch, gather_detached
from .objective import (
    AMBIGUITY_SETS,
    BASES,
    VARIANTS,
    BatchPlan,
    ObjectiveOutput,
    RobustObjective,
    SampleStats,
    Variant,
    get_variant,
    robust_objective,
)

__all__ = [
    "rebel_loss", "dpo_loss",
    "kl_weights", "kl_value", "kl_weights_clipped", "chi2_dual", "chi2_weights",
    "per_sample_grad_sqnorm", "wasserstein_penalty",
    "robust_objective", "RobustObjective", "ObjectiveOutput", "SampleStats", "BatchPlan", "get_variant", "Variant",
    "VARIANTS", "BASES", "AMBIGUITY_SETS", "GlobalBatch", "gather_detached",
]
