"""The experiment grid: variant x radius x base hyperparameter x seed, and the canonical spellings.

Kept in Python (not in the Snakefile) so it is unit-tested and shared by rules and reports. It
imports nothing heavy (no torch, no pandas): every rule file uses it while Snakemake plans.
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple

from workflow_scripts.core.losses.registry import get_variant


class Run(NamedTuple):
    """One alignment job of the grid (radius and hp in their canonical spellings)."""

    variant: str
    radius: str
    hp: str
    seed: int

    @property
    def path(self) -> str:
        """``variant/radius/hp/seed``: where the run lives under an experiment's align/ or eval/<split>/."""
        return f"{self.variant}/{self.radius}/{self.hp}/{self.seed}"


def format_radius(x: float | int | str) -> str:
    """Canonical path spelling: 0.5 -> "0.5", 50.0 -> "50", 1e-4 -> "0.0001", 1e-6 -> "1e-06".

    One function decides it, so a radius never has two spellings (``50`` vs ``50.0``).
    """
    value = float(x)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a radius must be a finite number >= 0, got {x!r}.")
    return f"{value:g}"


def format_hparam(name: str, value: float | int | str) -> str:
    """Canonical path spelling of a base hyperparameter: ("eta", 10.0) -> "eta10", ("beta", 0.1) -> "beta0.1".

    The name is part of the spelling, so a path says which hyperparameter it is (REBEL's eta, DPO's beta).
    """
    if name not in ("eta", "beta"):
        raise ValueError(f"base hyperparameters are eta (REBEL) and beta (DPO), got {name!r}.")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return f"{name}{v:g}"


def parse_hparam(spelling: str) -> tuple[str, float]:
    """Inverse of :func:`format_hparam`: "eta10" -> ("eta", 10.0)."""
    for name in ("beta", "eta"):
        if spelling.startswith(name):
            value = float(spelling[len(name):])
            if format_hparam(name, value) != spelling:
                raise ValueError(f"{spelling!r} is not a canonical hyperparameter spelling ({format_hparam(name, value)!r}).")
            return name, value
    raise ValueError(f"{spelling!r} is not a hyperparameter spelling (eta<value> or beta<value>).")


def hparams_for(variant: str, hparams: dict) -> list[str]:
    """The base hyperparameters a variant runs at: REBEL's eta grid or DPO's beta grid, canonically spelled."""
    name = "eta" if get_variant(variant).base == "rebel" else "beta"
    return [format_hparam(name, h) for h in hparams[name]]


def radii_for(variant: str, radii: dict) -> list[str]:
    """The radii a variant runs at: the grid of its ambiguity set, or ["0"] for the non-robust bases."""
    v = get_variant(variant)
    if not v.is_robust:
        return ["0"]
    return [format_radius(r) for r in radii[v.ambiguity]]


def expand_grid(variants, radii: dict, hparams: dict, seeds) -> list[Run]:
    """One :class:`Run` per alignment job, in variant, radius, hp, seed order."""
    return [
        Run(get_variant(v).name, r, h, int(s))
        for v in variants
        for r, h, s in itertools.product(radii_for(v, radii), hparams_for(v, hparams), seeds)
    ]


def format_pair(objectives, weights=(0.5, 0.5), name: str | None = None) -> str:
    """Canonical, path-safe name of an ArmoRM training pair.

    ``name`` when configured (an ``id``); else ``"o1+o2"`` at the default weights 0.5/0.5 and
    ``"o1+o2_w0.3-0.7"`` otherwise, e.g. ``"ultrafeedback-truthfulness+helpsteer-complexity"``.
    """
    if name:
        return str(name)
    first, second = objectives
    w1, w2 = (float(w) for w in weights)
    base = f"{first}+{second}"
    return base if (w1, w2) == (0.5, 0.5) else f"{base}_w{w1:g}-{w2:g}"


def training_pairs(section: dict) -> list[dict]:
    """The configured ArmoRM training pairs as ``{name, objectives, weights}`` (weights default 0.5/0.5)."""
    pairs = []
    for spec in section["training_pairs"]:
        weights = [float(w) for w in spec.get("weights", (0.5, 0.5))]
        pairs.append({"name": format_pair(spec["objectives"], weights, spec.get("id")),
                      "objectives": list(spec["objectives"]), "weights": weights})
    return pairs
