"""The look shared by every figure: one colour per variant (the same in every panel and figure), the
REBEL family solid and the DPO family dashed, the SFT baseline grey."""
from __future__ import annotations

import seaborn as sns

from workflow_scripts.core.losses.registry import family

REBEL_FAMILY: frozenset[str] = frozenset(family("rebel"))
DPO_FAMILY: frozenset[str] = frozenset(family("dpo"))

SFT_COLOR = "0.45"
# tab10 without its grey (reserved for SFT), fixed per variant whatever the figure shows.
_TAB10 = sns.color_palette("tab10", 10)
VARIANT_COLORS: dict[str, tuple[float, float, float]] = {
    "rebel": _TAB10[0],
    "w-rebel": _TAB10[1],
    "kl-rebel": _TAB10[2],
    "chi2-rebel": _TAB10[3],
    "dpo": _TAB10[4],
    "wdpo": _TAB10[5],
    "kl-dpo": _TAB10[6],
    "chi2-dpo": _TAB10[8],
}


def line_style(variant: str) -> str:
    return "--" if variant in DPO_FAMILY else "-"
