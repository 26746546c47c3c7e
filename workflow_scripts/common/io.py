"""Small I/O helpers: atomic writes (a crash never leaves half a file behind) and logging."""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


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


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def write_frame_atomic(df, path: str | os.PathLike) -> None:
    """Write a DataFrame as parquet / csv / jsonl (by suffix) via a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    elif path.suffix == ".csv":
        df.to_csv(tmp, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(tmp, orient="records", lines=True)
    else:
        os.unlink(tmp)
        raise ValueError(f"unsupported table format {path.suffix!r} for {path}")
    os.replace(tmp, path)


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
        os.replace(self.tmp, self.path)
