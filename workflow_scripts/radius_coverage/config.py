"""The radius_coverage section of the config: its schema (``schema.yaml`` beside this file) and the checks a
schema cannot express. workflow_scripts/core/config merges the one and runs the other (every experiment's
``config``)."""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.core.config import read_schema


def schema() -> dict:
    """The schema of ``config["radius_coverage"]``."""
    return read_schema(Path(__file__).with_name("schema.yaml"))


def errors(config: dict) -> list[str]:
    """The radius-coverage checks a schema cannot express (one line each, in a fixed order)."""
    section = config["radius_coverage"]
    errors = []
    grid = section["n_grid"]
    if any(b <= a for a, b in zip(grid, grid[1:])):
        errors.append(f"config key 'radius_coverage.n_grid' must be strictly increasing, got {grid}")
    for name in section["sets"]:
        if name not in section["c"]:
            errors.append(f"config key 'radius_coverage.c' has no radius constant for the set {name!r}")
    if section["K"] < section["d"]:
        errors.append(f"config key 'radius_coverage.K' ({section['K']}) must be >= d ({section['d']}) "
                      "so that the atoms identify theta*")
    if sum(n >= section["fit_from"] for n in grid) < 2:
        errors.append(f"config key 'radius_coverage.fit_from' ({section['fit_from']}) leaves fewer than 2 "
                      f"sample sizes of n_grid {grid} to fit the tail slope on")
    return errors
