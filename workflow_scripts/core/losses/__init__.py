"""The public loss API of the DRO-REBEL workflow: every alignment loss in the project.

Bases (per-sample): :func:`rebel_loss`, :func:`dpo_loss`.
Ambiguity sets: :func:`kl_weights` (and the optional :func:`kl_weights_clipped`),
:func:`chi2_dual` / :func:`chi2_weights`, :func:`wasserstein_penalty`.
Composition: :func:`robust_objective` (a variant name + hyperparameters -> the scalar to
backpropagate, distributed-aware; ``statistics`` / ``plan`` / ``surrogate`` split one global
batch over ranks and gradient-accumulation micro-steps exactly), :func:`get_variant`,
:data:`VARIANTS`.

The names resolve lazily (PEP 562): ``workflow_scripts.core.losses.registry`` (the variant list)
imports without torch, which keeps planning a grid fast; the first access to a tensor function
imports its module.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "workflow_scripts.core.losses.ambiguity": ("chi2_dual", "chi2_weights", "effective_sample_fraction", "kl_value",
                                               "kl_weights", "kl_weights_clipped", "per_sample_grad_sqnorm",
                                               "wasserstein_penalty"),
    "workflow_scripts.core.losses.bases": ("dpo_loss", "rebel_loss"),
    "workflow_scripts.core.losses.distributed": ("GlobalBatch", "gather_detached"),
    "workflow_scripts.core.losses.objective": ("AMBIGUITY_SETS", "BASES", "BatchPlan", "ObjectiveOutput",
                                               "RobustObjective", "SampleStats", "robust_objective"),
    "workflow_scripts.core.losses.registry": ("VARIANTS", "Variant", "get_variant"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
