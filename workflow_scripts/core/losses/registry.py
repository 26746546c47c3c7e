"""The variant registry, torch-free: bases x ambiguity sets, their names and display names.

This is the ONE place the variant list lives: the config schema, the grid, the reports and the
benchmarks read it from here. Importing it loads nothing heavy, so planning a grid with
Snakemake never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: Base losses and the name of their hyperparameter (REBEL's eta, DPO's beta), in display order.
BASE_HPARAM: dict[str, str] = {"rebel": "eta", "dpo": "beta"}
#: Ambiguity sets and the name of their radius (None: the non-robust base), in display order.
SET_RADIUS: dict[str, Optional[str]] = {"none": None, "wasserstein": "rho0", "kl": "tau", "chi2": "rho"}

_SET_PREFIX = {"none": "", "wasserstein": "w-", "kl": "kl-", "chi2": "chi2-"}
_SET_DISPLAY = {"none": "", "wasserstein": "W-", "kl": "KL-", "chi2": "χ²-"}
_PAPER_SPELLING = {"w-dpo": "wdpo"}          # the WDPO paper's name wins over the regular "w-dpo"
_PAPER_DISPLAY = {"wdpo": "WDPO"}


@dataclass(frozen=True)
class Variant:
    base: str
    ambiguity: str

    @property
    def name(self) -> str:
        regular = _SET_PREFIX[self.ambiguity] + self.base
        return _PAPER_SPELLING.get(regular, regular)

    @property
    def display(self) -> str:
        """``"χ²-REBEL"``, ``"WDPO"``: the name in tables and legends."""
        return _PAPER_DISPLAY.get(self.name, _SET_DISPLAY[self.ambiguity] + self.base.upper())

    @property
    def is_robust(self) -> bool:
        return self.ambiguity != "none"

    @property
    def radius_name(self) -> Optional[str]:
        return SET_RADIUS[self.ambiguity]

    @property
    def hyperparameter(self) -> str:
        return BASE_HPARAM[self.base]


#: Every variant, REBEL family first, each family base first: the order of tables and legends.
VARIANTS: dict[str, Variant] = {v.name: v for v in (Variant(b, s) for b in BASE_HPARAM for s in SET_RADIUS)}
_ALIASES = {regular: paper for regular, paper in _PAPER_SPELLING.items()}


def get_variant(name: str) -> Variant:
    """Look a variant up by name (``rebel``, ``w-rebel``, ..., ``chi2-dpo``; ``w-dpo`` is accepted for ``wdpo``)."""
    key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}.")
    return VARIANTS[key]


def family(base: str) -> list[str]:
    """The variants of one base, e.g. ``family("dpo") == ["dpo", "wdpo", "kl-dpo", "chi2-dpo"]``."""
    return [name for name, v in VARIANTS.items() if v.base == base]
