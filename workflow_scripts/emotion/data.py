"""Loading and writing the emotion classification splits.

Every later stage (tokenizer, reward model, policy training, evaluation) reads
the emotion data through :func:`load_emotion_split`, so the same validated
``text``/``label`` frame comes back whether the source is the Hugging Face hub
dataset ``dair-ai/emotion`` (full presets) or a local directory written by the
mini generator (CI / mini preset).  Validation happens here, once, so a bad
file fails early with a message that names the file instead of surfacing as a
shape error deep inside training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

#: Label names by id, following the hub schema of ``dair-ai/emotion``.
EMOTION_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")

SPLITS = ("train", "validation", "test")
FORMATS = ("jsonl", "csv", "parquet")


def is_local_source(source: str | Path) -> bool:
    """True when ``source`` names an existing local directory (else it is a hub id)."""
    return Path(source).expanduser().is_dir()


def _find_split_file(directory: Path, split: str) -> Path:
    candidates = [directory / f"{split}.{fmt}" for fmt in FORMATS]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise ValueError(
            f"{directory}: no file for split '{split}' "
            f"(expected one of {', '.join(p.name for p in candidates)})."
        )
    if len(found) > 1:
        raise ValueError(
            f"{directory}: several files for split '{split}' "
            f"({', '.join(p.name for p in found)}), keep exactly one."
        )
    return found[0]


def _read_file(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        from workflow_scripts.core.io import read_jsonl

        return read_jsonl(path)          # file:line on a malformed line; types are checked below
    if path.suffix == ".csv":
        # keep_default_na=False so that a literal text like "null" stays text;
        # genuinely empty cells become "" and are caught as empty texts.
        return pd.read_csv(path, keep_default_na=False, na_values=[])
    return pd.read_parquet(path)


def _validate(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Return ``df[['text', 'label']]`` with clean dtypes or raise a one-sentence ValueError."""
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {missing} (found {list(df.columns)})."
        )
    df = df[["text", "label"]]
    if len(df) == 0:
        raise ValueError(f"{where}: the split has no rows.")

    text, label = df["text"], df["label"]
    if text.isna().any():
        rows = list(text.index[text.isna()][:5])
        raise ValueError(f"{where}: column 'text' has missing values at rows {rows}.")
    if not text.map(lambda t: isinstance(t, str)).all():
        rows = list(text.index[~text.map(lambda t: isinstance(t, str))][:5])
        raise ValueError(f"{where}: column 'text' has non-string values at rows {rows}.")
    empty = text.str.strip() == ""
    if empty.any():
        rows = list(text.index[empty][:5])
        raise ValueError(f"{where}: column 'text' has empty texts at rows {rows}.")

    if label.isna().any():
        rows = list(label.index[label.isna()][:5])
        raise ValueError(f"{where}: column 'label' has missing values at rows {rows}.")
    numeric = pd.to_numeric(label, errors="coerce")
    not_int = numeric.isna() | (numeric != numeric.round())
    if not_int.any():
        bad = sorted({str(v) for v in label[not_int]})[:5]
        raise ValueError(f"{where}: column 'label' has non-integer values: {bad}.")
    numeric = numeric.astype("int64")
    out_of_range = (numeric < 0) | (numeric >= len(EMOTION_LABELS))
    if out_of_range.any():
        bad = sorted(set(numeric[out_of_range].tolist()))[:5]
        raise ValueError(
            f"{where}: column 'label' has values outside 0..{len(EMOTION_LABELS) - 1}: {bad}."
        )
    return pd.DataFrame({"text": text.astype(str).to_numpy(), "label": numeric.to_numpy()})


def load_emotion_split(source: str, split: str) -> pd.DataFrame:
    """Load one split as a DataFrame with columns ``text`` (str) and ``label`` (int 0..5).

    ``source`` is either a local directory holding exactly one of
    ``{split}.jsonl``, ``{split}.csv`` or ``{split}.parquet``, or a hub dataset
    id passed to :func:`datasets.load_dataset`.
    """
    if split not in SPLITS:
        raise ValueError(f"{source}: unknown split '{split}' (expected one of {SPLITS}).")
    if is_local_source(source):
        path = _find_split_file(Path(source).expanduser(), split)
        try:
            raw = _read_file(path)
        except Exception as exc:  # parser errors: re-raise with the file named
            raise ValueError(f"{path}: could not be read ({exc}).") from exc
        where = str(path)
    else:
        import datasets  # imported lazily: slow, and unused for local sources

        raw = datasets.load_dataset(source, split=split).to_pandas()
        where = f"{source}[{split}]"
    df = _validate(raw, where)
    logger.info("loaded %s: %d rows", where, len(df))
    return df


def write_split(
    df: pd.DataFrame, directory: str | Path, split: str, fmt: str = "jsonl"
) -> Path:
    """Write ``df[['text', 'label']]`` as ``directory/{split}.{fmt}`` and return the path.

    The output is exactly what :func:`load_emotion_split` reads back.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (expected one of {FORMATS}).")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{split}.{fmt}"
    out = df[["text", "label"]].astype({"text": str, "label": "int64"})
    if fmt == "jsonl":
        out.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    return path
