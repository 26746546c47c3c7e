"""The planner's view of the radius-coverage study (docs/planning.md): its simulation is the ``simulation``
work family, in Monte-Carlo samples at the throughput table's ``radius_coverage.samples_per_s``."""
from __future__ import annotations

from workflow_scripts.tools.plan.inputs import Context, SimulationInputs


def simulate(ctx: Context, job) -> SimulationInputs:
    """Samples = reps x sum(n_grid) x schedules (the kappas and the non-robust one)."""
    cfg = ctx.config["radius_coverage"]
    return SimulationInputs(cfg["reps"] * sum(cfg["n_grid"]) * (len(cfg["kappas"]) + 1),
                     ctx.table["radius_coverage"]["samples_per_s"])


RULES = {"radius_coverage_simulate": ("simulation", simulate)}
