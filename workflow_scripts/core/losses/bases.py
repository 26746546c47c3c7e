"""Per-sample base losses (SPEC section 3).

Pair tensors are ``(B, 2)``: column 0 is y1 (the chosen completion for DPO), column 1 is
y2 (rejected). ``logp`` are sums of response-token log-probabilities (prompt and padding
masked out). Anchor / reference log-probs are detached here: they are data, not parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from workflow_scripts.core.losses import _checks


def rebel_loss(logp: torch.Tensor, logp_anchor: torch.Tensor, reward: torch.Tensor, eta: float) -> torch.Tensor:
    r"""REBEL's squared regression of relative log-ratios onto relative rewards.

    .. math::
        \ell_i = \Big( \tfrac{1}{\eta}\big[(\log\pi(y_1) - \log\pi_a(y_1)) - (\log\pi(y_2) - \log\pi_a(y_2))\big]
                 - (r(y_1) - r(y_2)) \Big)^2

    ``logp_anchor`` is the anchor policy (pi_t for ``anchor: iterate``, pi_ref for
    ``anchor: reference``); it and ``reward`` are detached. Returns per-sample losses ``(B,)``.
    """
    eta = _checks.positive("eta", eta)
    _checks.pair_tensor("logp", logp)
    _checks.pair_tensor("logp_anchor", logp_anchor)
    _checks.pair_tensor("reward", reward)
    _checks.same_shape(("logp", logp), ("logp_anchor", logp_anchor), ("reward", reward))
    log_ratio = logp - logp_anchor.detach()
    relative_log_ratio = log_ratio[:, 0] - log_ratio[:, 1]
    reward = reward.detach()   # rewards are regression targets, never trained through
    relative_reward = (reward[:, 0] - reward[:, 1]).to(logp.dtype)
    return (relative_log_ratio / eta - relative_reward) ** 2


def dpo_loss(logp: torch.Tensor, logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    r"""DPO's logistic loss on the implicit reward margin.

    .. math::
        h_i = (\log\pi(y_w) - \log\pi_{ref}(y_w)) - (\log\pi(y_l) - \log\pi_{ref}(y_l)),\qquad
        \ell_i = -\log\sigma(\beta h_i)

    Column 0 must hold the chosen completion y_w. Returns ``(B,)``.
    """
    beta = _checks.positive("beta", beta)
    _checks.pair_tensor("logp", logp)
    _checks.pair_tensor("logp_ref", logp_ref)
    _checks.same_shape(("logp", logp), ("logp_ref", logp_ref))
    log_ratio = logp - logp_ref.detach()
    margin = log_ratio[:, 0] - log_ratio[:, 1]
    # logsigmoid is the numerically stable form of -log(1 + exp(-x)).
    return -F.logsigmoid(beta * margin)
