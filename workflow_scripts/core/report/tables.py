"""Generic helpers for writing result tables (CSV + Markdown + LaTeX).

Used by every ``workflow_scripts.core.report.*`` script, so nothing here knows about
a particular experiment.

Conventions
-----------
* **One numeric DataFrame is the single source of truth.**  :func:`write_table`
  writes it unchanged to ``{stem}.csv`` (numbers stay numbers, so tests and
  other code can read them back) and renders the *same* frame for humans into
  ``{stem}.md`` (GitHub markdown) and ``{stem}.tex`` (booktabs ``tabular``).
* Columns named ``<metric>_mean`` and ``<metric>_std`` form a pair.  In the
  CSV they stay two numeric columns; in markdown/LaTeX they are merged into a
  single ``<metric>`` column showing ``"mean ± std"``.
* Spread over seeds is the **sample** standard deviation (``ddof=1``).  With a
  single seed the std is undefined; :func:`sample_std` returns ``0.0`` so the
  CSV stays numeric, and the human-readable tables print **only the mean**
  (e.g. ``"0.512"``, never a misleading ``"± 0.000"``).  Tables built with a
  count column (e.g. ``n_seeds`` rendered as "Seeds (n)") make ``n=1`` visible
  to the reader.
* Missing values are rendered as an en dash ("–", ``--`` in LaTeX).
* Every file is written atomically (temp file in the same directory, then
  :func:`os.replace`), so an interrupted run never leaves a half-written file.

The LaTeX is pandas' ``Styler.to_latex`` (booktabs rules) on cells escaped here:
LaTeX special characters are escaped and a few Unicode symbols ("±", "χ²", "α",
"ρ", subscript digits, ...) are mapped to math mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.core.io import atomic_path  # re-exported: one atomic writer for the project
from workflow_scripts.core.losses.registry import VARIANTS

__all__ = [
    "VARIANT_ORDER",
    "VARIANT_NAMES",
    "MISSING",
    "atomic_path",
    "save_figure",
    "display_frame",
    "fmt_variant",
    "fmt_hparam",
    "format_mean_std",
    "latex_escape",
    "mean_pm_std",
    "sample_std",
    "to_latex_booktabs",
    "variant_sort_key",
    "write_table",
]

#: Canonical order of variants in tables and legends: the SFT baseline, then the registry's order
#: (REBEL family, then DPO family).
VARIANT_ORDER: tuple[str, ...] = ("sft", *VARIANTS)

#: Display names (Unicode; LaTeX output maps "χ²" to ``$\chi^2$``).
VARIANT_NAMES: dict[str, str] = {"sft": "SFT", **{name: v.display for name, v in VARIANTS.items()}}

#: Placeholder for missing values in human-readable tables.
MISSING = "–"

# Unicode -> LaTeX, applied *after* escaping (longest keys first).
_UNICODE_TO_LATEX: tuple[tuple[str, str], ...] = (
    ("χ²", r"$\chi^2$"),
    ("±", r"$\pm$"),
    ("χ", r"$\chi$"),
    ("²", r"$^2$"),
    ("α₀", r"$\alpha_0$"),
    ("η", r"$\eta$"),
    ("Δ", r"$\Delta$"),
    ("β", r"$\beta$"),
    ("τ", r"$\tau$"),
    ("✓", r"$\checkmark$"),
    ("α", r"$\alpha$"),
    ("ρ", r"$\rho$"),
    ("—", "---"),
    ("–", "--"),
)

_LATEX_SPECIALS: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------
def fmt_variant(name: str, *, latex: bool = False) -> str:
    """Display name of a variant, e.g. ``"chi2-rebel" -> "χ²-REBEL"``.

    With ``latex=True`` the result is LaTeX-ready (``"$\\chi^2$-REBEL"``).
    Unknown names are returned unchanged (escaped when ``latex=True``).
    """
    display = VARIANT_NAMES.get(name, name)
    return latex_escape(display) if latex else display


def fmt_hparam(spelling: str) -> str:
    """Display of a canonical base-hyperparameter spelling: "eta10" -> "η=10", "beta0.1" -> "β=0.1"."""
    for prefix, symbol in (("beta", "β"), ("eta", "η")):
        if str(spelling).startswith(prefix):
            return f"{symbol}={spelling[len(prefix):]}"
    return MISSING


def variant_sort_key(name: str) -> tuple[int, str]:
    """Sort key placing variants in :data:`VARIANT_ORDER`, unknown ones last."""
    try:
        return (VARIANT_ORDER.index(name), name)
    except ValueError:
        return (len(VARIANT_ORDER), name)


# --------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------
def sample_std(values: Iterable[float]) -> float:
    """Sample standard deviation (``ddof=1``); ``0.0`` for a single value.

    Returns NaN for an empty input.
    """
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return float("nan")
    if arr.size == 1:
        return 0.0
    return float(np.std(arr, ddof=1))


def _is_missing(x: object) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def format_mean_std(
    mean: float, std: float, n: int | None = None, *, precision: int = 3
) -> str:
    """Format ``"0.512 ± 0.013"``.

    If ``n == 1`` (a single seed) only the mean is printed (``"0.512"``); a
    missing mean gives :data:`MISSING`; a missing std prints the mean alone.
    """
    if _is_missing(mean):
        return MISSING
    mean_s = f"{float(mean):.{precision}f}"
    if (n is not None and not _is_missing(n) and int(n) <= 1) or _is_missing(std):
        return mean_s
    return f"{mean_s} ± {float(std):.{precision}f}"


def mean_pm_std(values: Iterable[float], *, precision: int = 3) -> str:
    """``"mean ± std"`` of ``values`` (e.g. one number per seed).

    std is the sample std (``ddof=1``).  With one value only the mean is
    printed (``"0.512"``) — a std over one seed is meaningless, and printing
    ``"± 0.000"`` would suggest zero variance.  NaNs are ignored; no (non-NaN)
    values gives :data:`MISSING`.
    """
    arr = np.asarray(list(values), dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return MISSING
    return format_mean_std(
        float(arr.mean()), sample_std(arr), int(arr.size), precision=precision
    )


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
_SUBSCRIPTS = re.compile("[₀-₉]+(?:\\.[₀-₉]+)?")
_FROM_SUBSCRIPT = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map known Unicode symbols to math mode (subscript digits, e.g. the level of
    ``CVaR₀.₇₅``, become ``$_{0.75}$``)."""
    out = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))
    for uni, tex in _UNICODE_TO_LATEX:
        out = out.replace(uni, tex)
    return _SUBSCRIPTS.sub(lambda m: "$_{" + m.group(0).translate(_FROM_SUBSCRIPT) + "}$", out)


def _default_cell(x: object, precision: int) -> str:
    if _is_missing(x):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.{precision}f}"
    return str(x)


def _looks_numeric(col: pd.Series) -> bool:
    """Numeric dtype, or strings that all parse as numbers (e.g. radii "0.1")."""
    if pd.api.types.is_bool_dtype(col):
        return False
    if pd.api.types.is_numeric_dtype(col):
        return True
    vals = col.dropna()
    return bool(len(vals)) and bool(pd.to_numeric(vals, errors="coerce").notna().all())


def display_frame(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    formatters: Mapping[str, Callable[[object], str]] | None = None,
    count_column: str | None = None,
    precision: int = 3,
    intervals: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Render a numeric frame into strings for markdown/LaTeX.

    * ``<m>_mean``/``<m>_std`` pairs become one column ``<m>`` with
      :func:`format_mean_std` (mean only where ``df[count_column] == 1``).
    * ``formatters[col]`` (keyed by the original column name) formats the
      non-missing cells of an unpaired column; other cells use a default
      format (``precision`` decimals for floats, ints as-is, NaN as
      :data:`MISSING`).
    * ``intervals`` maps a display column to a pair of numeric columns ``(low, high)``, rendered as one
      cell ``[low, high]`` (signed, ``precision`` decimals) in the place of ``low``; ``high`` is not shown.
    * ``columns`` renames (keyed by the original / merged name).

    Returns ``(display_df, align)`` where ``align`` holds ``"l"``/``"r"`` per
    column (``"r"`` for numeric, numeric-looking and merged columns).
    """
    columns = dict(columns or {})
    formatters = dict(formatters or {})
    cols = list(df.columns)
    paired = {
        c[: -len("_mean")]
        for c in cols
        if c.endswith("_mean") and f"{c[: -len('_mean')]}_std" in cols
    }
    counts = df[count_column] if count_column is not None else None
    intervals = dict(intervals or {})
    lows = {low: (name, high) for name, (low, high) in intervals.items()}
    highs = {high for _, high in intervals.values()}

    out: dict[str, list[str]] = {}
    align: list[str] = []
    for c in cols:
        if c.endswith("_std") and c[: -len("_std")] in paired:
            continue  # rendered together with its _mean
        if c in highs:
            continue  # rendered together with its low end
        if c in lows:
            name, high = lows[c]
            out[columns.get(name, name)] = [
                MISSING if _is_missing(lo) or _is_missing(hi) else f"[{lo:+.{precision}f}, {hi:+.{precision}f}]"
                for lo, hi in zip(df[c], df[high])]
            align.append("r")
            continue
        if c.endswith("_mean") and c[: -len("_mean")] in paired:
            base = c[: -len("_mean")]
            stds = df[f"{base}_std"]
            cells = [
                format_mean_std(
                    m, s, None if counts is None else counts.iloc[i], precision=precision
                )
                for i, (m, s) in enumerate(zip(df[c], stds))
            ]
            name = columns.get(base, base)
            align.append("r")
        else:
            fmt = formatters.get(c)
            if fmt is not None:
                cells = [MISSING if _is_missing(x) else fmt(x) for x in df[c]]
            else:
                cells = [_default_cell(x, precision) for x in df[c]]
            name = columns.get(c, c)
            align.append("r" if _looks_numeric(df[c]) else "l")
        if name in out:
            raise ValueError(f"duplicate display column name {name!r}")
        out[name] = cells
    return pd.DataFrame(out, index=range(len(df))), align


def to_latex_booktabs(display: pd.DataFrame, align: list[str] | None = None) -> str:
    """A booktabs ``tabular`` of an all-string frame: pandas' ``Styler.to_latex`` on cells escaped by
    :func:`latex_escape` (which also maps the Unicode symbols of our labels to math mode)."""
    align = align or ["l"] * display.shape[1]
    escaped = display.map(latex_escape)
    escaped.columns = [latex_escape(c) for c in display.columns]
    return escaped.style.hide(axis="index").to_latex(column_format="".join(align), hrules=True)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def save_figure(fig, stem: str | os.PathLike[str], dpi: int = 150) -> dict[str, Path]:
    """Write ``{stem}.pdf`` and ``{stem}.png`` atomically, without timestamps in the metadata,
    so reruns of a report produce identical files."""
    stem = Path(stem)
    written = {}
    for ext in ("pdf", "png"):
        path = stem.with_name(f"{stem.name}.{ext}")
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", metadata=meta)
        written[ext] = path
    return written


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(
    df: pd.DataFrame,
    stem: str | os.PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    formatters: Mapping[str, Callable[[object], str]] | None = None,
    count_column: str | None = None,
    precision: int = 3,
    intervals: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Path]:
    """Write ``{stem}.csv``, ``{stem}.md`` and ``{stem}.tex`` from ``df``.

    The CSV is ``df`` itself (numeric, no index).  Markdown and LaTeX show the
    rendering of :func:`display_frame` (see there for ``columns``,
    ``formatters``, ``count_column`` and ``precision``), so all three files
    always agree.  Parent directories are created; files are written
    atomically.  Returns ``{"csv": path, "md": path, "tex": path}``.
    """
    stem = Path(stem)
    display, align = display_frame(
        df,
        columns=columns,
        formatters=formatters,
        count_column=count_column,
        precision=precision,
        intervals=intervals,
    )
    paths = {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("csv", "md", "tex")}
    _write_text(paths["csv"], df.to_csv(index=False))
    colalign = ["right" if a == "r" else "left" for a in align]
    md = display.to_markdown(
        index=False, tablefmt="github", disable_numparse=True, colalign=colalign
    )
    _write_text(paths["md"], md + "\n")
    _write_text(paths["tex"], to_latex_booktabs(display, align))
    return paths
