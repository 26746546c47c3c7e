"""Input validation shared by the loss functions.

Every check raises ``ValueError`` with one sentence that names the argument, so a
bad hyperparameter or a shape mix-up fails at the first step, not hours later as NaN.
"""
from __future__ import annotations

import math

import torch


def _number(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None


def positive(name: str, value: float) -> float:
    value = _number(name, value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return value


def non_negative(name: str, value: float) -> float:
    value = _number(name, value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (a radius cannot be negative), got {value!r}.")
    return value


def pair_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 2) tensor (column 0 = y1/chosen, column 1 = y2/rejected), got {shape}.")
    return x


def same_shape(*named: tuple[str, torch.Tensor]) -> None:
    first_name, first = named[0]
    for name, x in named[1:]:
        if x.shape != first.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but {first_name} has shape {tuple(first.shape)}; they must match.")


def per_sample_losses(losses: torch.Tensor) -> torch.Tensor:
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1 or losses.numel() == 0:
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"losses must be a non-empty 1-D tensor of per-sample losses, got {shape}.")
    if not torch.isfinite(losses.detach()).all():
        raise ValueError("losses contain NaN or infinite values; robust weights are undefined (check the learning rate and the inputs).")
    return losses
