"""Seeding and the ``run_info.json`` every training job writes."""
from __future__ import annotations

import os
import platform
import random
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workflow_scripts.core.io import write_json_atomic

_LIBRARIES = ("torch", "deepspeed", "transformers", "tokenizers", "datasets", "numpy", "snakemake")


def seed_everything(seed: int) -> None:
    """Seed every RNG we use and ask torch for deterministic kernels (same seed -> same metrics on CPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also NaN-fills every fresh allocation (a debugging aid). DeepSpeed
    # allocates large flat buffers each step, and the fill made a tiny model's step 34x slower
    # on CPU (1287 ms vs 38 ms measured). Results do not depend on it: keep kernels, drop the fill.
    torch.utils.deterministic.fill_uninitialized_memory = False


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """The commit of the workflow's own repository ("unknown" outside a git checkout)."""
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (commit + ("-dirty" if dirty else "")) if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: Environment variables whose values are credentials: never written anywhere.
_SECRET_NAME = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")


def secrets_in_environment() -> list[str]:
    return [v for k, v in os.environ.items() if any(s in k.upper() for s in _SECRET_NAME) and len(v) >= 6]


def redact(obj: Any, secrets: list[str]) -> Any:
    """Replace every occurrence of a secret in the strings of a nested structure by '***'."""
    if isinstance(obj, str):
        for secret in secrets:
            obj = obj.replace(secret, "***")
        return obj
    if isinstance(obj, dict):
        return {k: redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    return obj


def write_run_info(path: str | os.PathLike, **fields: Any) -> None:
    """Record how a job ran. Credentials (e.g. HF_TOKEN) are redacted wherever they appear."""
    info = dict(fields)
    info["versions"] = library_versions()
    info["git_commit"] = git_commit()
    info["hostname"] = platform.node()
    info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this process's peak (every job records it: the GPU check and the planner read it)
        info["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    write_json_atomic(path, redact(info, secrets_in_environment()))
