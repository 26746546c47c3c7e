"""Small I/O helpers: atomic writes (a crash never leaves half a file behind) and logging."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator


def setup_logging(level: int = logging.INFO) -> None:
    """One format for every entry point; the rule's ``log:`` captures stderr."""
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank not in (None, "0") else ""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # transformers is chatty about generation defaults; keep warnings and errors only.
    for noisy in ("transformers", "datasets", "DeepSpeed", "torch.distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: Path, final: Path, directory: bool = False) -> None:
    """Give a temporary file/dir the permissions a plain create would have, then rename it.

    mkstemp/mkdtemp create 0600/0700 entries; results are meant to be read by collaborators.
    """
    os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The temporary name keeps ``path``'s suffix (so writers that infer a format from it, like
    matplotlib, work). On error the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_frame_atomic(df, path: str | os.PathLike) -> None:
    """Write a DataFrame as parquet / csv / jsonl (by suffix) via a temporary file."""
    path = Path(path)
    writers = {".parquet": lambda t: df.to_parquet(t, index=False), ".csv": lambda t: df.to_csv(t, index=False),
               ".jsonl": lambda t: df.to_json(t, orient="records", lines=True)}
    if path.suffix not in writers:
        raise ValueError(f"unsupported table format {path.suffix!r} for {path}")
    with atomic_path(path) as tmp:
        writers[path.suffix](tmp)


class AtomicDirectory:
    """Build a directory under a temporary name and move it into place only on success.

    ``with AtomicDirectory(out) as tmp: model.save_pretrained(tmp)`` never leaves a
    half-written model at ``out`` (Snakemake would otherwise see a plausible output).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.path.exists():
            shutil.rmtree(self.path)
        _publish(self.tmp, self.path, directory=True)


def read_jsonl(path: str | os.PathLike):
    """A JSON-lines file (``.jsonl``, or gzipped ``.jsonl.gz``) as a DataFrame, one row per non-blank line.
    A line that is not a JSON object fails with ``<file>:<line>: ...`` (pandas reports a character offset
    of the whole file, which a user cannot find)."""
    import gzip

    import pandas as pd

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.strip())
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}): "
                                 f"{line.strip()[:60]!r}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}.")
            rows.append(row)
    return pd.DataFrame(rows)


TEXT_FORMATS = ("jsonl", "csv", "parquet")


def read_texts(directory: str | os.PathLike, split: str, column: str = "text") -> list[str]:
    """The ``column`` of ``{directory}/{split}.{jsonl,csv,parquet}`` (exactly one of them must exist)."""
    import pandas as pd

    directory = Path(directory)
    found = [directory / f"{split}.{fmt}" for fmt in TEXT_FORMATS if (directory / f"{split}.{fmt}").is_file()]
    if len(found) != 1:
        raise ValueError(f"{directory}: expected exactly one {split}.jsonl/.csv/.parquet, found {[p.name for p in found]}.")
    path = found[0]
    if path.suffix == ".jsonl":
        frame = read_jsonl(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[])
    else:
        frame = pd.read_parquet(path)
    if column not in frame.columns:
        raise ValueError(f"{path}: no column {column!r} (found {list(frame.columns)}).")
    return frame[column].astype(str).tolist()


def split_paths(items, allowed=("validation", "test")) -> dict[str, str]:
    """``["validation=a.csv", "test=b.csv"]`` -> ``{"validation": "a.csv", "test": "b.csv"}`` (a CLI helper)."""
    out = {}
    for item in items or []:
        split, sep, path = item.partition("=")
        if not sep or split not in allowed or not path:
            raise ValueError(f"expected SPLIT=PATH with SPLIT one of {allowed}, got {item!r}.")
        out[split] = path
    return out
