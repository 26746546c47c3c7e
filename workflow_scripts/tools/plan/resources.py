"""What a cluster run asks for, as the planner sees it: the config a SLURM profile applies.

GPUs and runtime limits are declared with the rules (``Workflow.resources``, from each experiment's ``cluster``
section of the config) and asked for when ``cluster.enabled`` is true, which the SLURM profile's ``config:``
mapping sets along with its site settings (a YTE template whose values can come from ``DRO_REBEL_SLURM_*``
environment variables, e.g. ``DRO_REBEL_SLURM_ALIGN_GPUS``). The planner builds its DAG with that same mapping
(:func:`with_profile_config`), so each job's ``gpu`` and ``runtime`` are the ones ``snakemake --profile slurm``
would submit; a job without a ``gpu`` is a CPU job.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[3]
DEFAULT_PROFILE = REPO / "profiles" / "slurm"


def profile_config(profile: Path | str = DEFAULT_PROFILE) -> dict:
    """The profile's ``config:`` mapping as Snakemake applies it (its own parsers: the values are the strings
    of ``--config``, typed by the workflow's schema when it loads)."""
    from snakemake.cli import parse_config
    from snakemake.profiles import ProfileConfigFileParser

    path = Path(profile)
    path = path / "config.yaml" if path.is_dir() else path
    if not path.is_file():
        raise SystemExit(f"profile {profile} not found (a directory with config.yaml, or the file).")
    with open(path) as fh:
        parsed = dict(ProfileConfigFileParser().parse(fh))
    return parse_config(parsed.get("config") or [])


def with_profile_config(config: Optional[dict], profile: Path | str = DEFAULT_PROFILE) -> dict:
    """``config`` overrides with the profile's ``config:`` merged over them: the cluster settings win even over
    a whole config passed in (the plan rule passes the local run's, whose ``cluster.enabled`` is false)."""
    from snakemake.utils import update_config

    merged = copy.deepcopy(dict(config or {}))
    update_config(merged, profile_config(profile))
    return merged


def site_overrides() -> dict[str, str]:
    """The DRO_REBEL_SLURM_* variables in effect (said in the plan: they change GPU counts)."""
    return {k: v for k, v in os.environ.items() if k.startswith("DRO_REBEL_SLURM_")}
