"""The plan rule's helpers (rules/plan.smk), torch- and Snakemake-API-free: imported while Snakemake plans."""
from __future__ import annotations

import json
import shlex

from workflow_scripts.core.workflow import cli_flags


def plan_flags(config: dict) -> str:
    """The planner's flags from the config's ``plan`` block (GPU type, cluster size, pilot run to calibrate on)."""
    p = config.get("plan") or {}
    flags = [cli_flags(p, [k for k in ("gpu", "gpus_available", "calibrate") if k in p])]
    if p.get("calibrate") and p.get("calibrate_config"):
        flags.append("--calibrate-config " + " ".join(shlex.quote(str(f)) for f in p["calibrate_config"]))
    return " ".join(f for f in flags if f)


def config_json(config: dict) -> str:
    """The whole config the workflow runs with, as JSON: the plan job plans exactly this config (presets,
    --config overrides and the profile's `config:` included), not config.yaml alone."""
    return json.dumps(config, sort_keys=True)
