"""GPUs per job on the cluster: the ``gpu`` entries of a profile's ``set-resources``.

The plan must use the GPU counts the cluster run will request, and those live in the SLURM profile
(a YTE template whose site settings can come from ``DRO_REBEL_SLURM_*`` environment variables), not in
the rule files (which say ``gpu=0`` for local runs). Snakemake's own profile parser reads the file, so
the numbers are the ones ``snakemake --profile slurm`` would submit; a rule without a ``gpu`` entry is a
CPU job. The runtime limits (minutes) come along, to warn when an estimate exceeds them.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEFAULT_PROFILE = REPO / "profiles" / "slurm"


def profile_resources(profile: Path | str = DEFAULT_PROFILE) -> dict[str, dict[str, str]]:
    """{rule: {resource: value}} from the profile's ``set-resources``."""
    from snakemake.profiles import ProfileConfigFileParser

    path = Path(profile)
    path = path / "config.yaml" if path.is_dir() else path
    if not path.is_file():
        raise SystemExit(f"profile {profile} not found (a directory with config.yaml, or the file).")
    with open(path) as fh:
        parsed = dict(ProfileConfigFileParser().parse(fh))
    rules: dict[str, dict[str, str]] = {}
    for entry in parsed.get("set-resources") or []:
        rule, assignment = entry.split(":", 1)
        key, value = assignment.split("=", 1)
        rules.setdefault(rule, {})[key] = value
    return rules


def gpus_per_rule(resources: dict[str, dict[str, str]]) -> dict[str, int]:
    return {rule: int(float(r["gpu"])) for rule, r in resources.items() if "gpu" in r}


def runtime_minutes(resources: dict[str, dict[str, str]]) -> dict[str, float]:
    return {rule: float(r["runtime"]) for rule, r in resources.items() if "runtime" in r}


def site_overrides() -> dict[str, str]:
    """The DRO_REBEL_SLURM_* variables in effect (said in the plan: they change GPU counts)."""
    return {k: v for k, v in os.environ.items() if k.startswith("DRO_REBEL_SLURM_")}
