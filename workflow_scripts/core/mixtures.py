"""Reward mixtures and Bradley-Terry preference labels (SPEC section 5.1).

r*(alpha) mixes two objective rewards r1, r2 in (0, 1):
- convex:    alpha * r1 + (1 - alpha) * r2
- geometric: r1 ** alpha * r2 ** (1 - alpha)
"""
from __future__ import annotations

import numpy as np

MIXTURES = ("convex", "geometric")


def mix(r1, r2, alpha: float, kind: str = "convex") -> np.ndarray:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}.")
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    if kind == "convex":
        return alpha * r1 + (1.0 - alpha) * r2
    if kind == "geometric":
        if (r1 < 0).any() or (r2 < 0).any():
            raise ValueError("the geometric mixture needs non-negative rewards.")
        return np.power(r1, alpha) * np.power(r2, 1.0 - alpha)
    raise ValueError(f"unknown mixture {kind!r}; choose one of {MIXTURES}.")


def preference_probability(r_a, r_b, scale: float = 1.0) -> np.ndarray:
    """Bradley-Terry: ``P(a > b) = sigmoid(scale * (r_a - r_b))``."""
    z = scale * (np.asarray(r_a, dtype=np.float64) - np.asarray(r_b, dtype=np.float64))
    return 0.5 * (1.0 + np.tanh(0.5 * z))     # = sigmoid(z), without overflow


def bradley_terry_labels(r_a, r_b, scale: float, rng: np.random.Generator | None = None, *,
                         uniforms=None) -> np.ndarray:
    """Sample labels: 1 where completion a is preferred, 0 where b is. The uniforms are drawn from ``rng``,
    or given (``uniforms``, one per pair: a job that labels a slice of a batch passes the slice of the batch's
    uniforms, so a pair's label does not depend on how the batch was split)."""
    p = preference_probability(r_a, r_b, scale)
    u = rng.random(p.shape) if uniforms is None else np.asarray(uniforms, dtype=np.float64)
    if u.shape != p.shape:
        raise ValueError(f"{u.shape} uniforms for {p.shape} pairs.")
    return (u < p).astype(np.int64)
