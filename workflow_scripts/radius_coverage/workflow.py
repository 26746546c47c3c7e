"""The radius-coverage study's inputs and flags, for rules/radius_coverage.smk (imported while Snakemake plans)."""
from __future__ import annotations

from workflow_scripts.core.workflow import Workflow, cli_flags

SIMULATION_KEYS = ["K", "d", "theta_norm", "geometry_seed", "seed", "noise_sd", "noise_points", "n_ref", "kappas",
                   "n_grid", "reps"]


class RadiusCoverageRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["radius_coverage"]
        self.root = f"{workflow.results}/radius_coverage"

    def constant(self, wildcards) -> float:
        """The radius constant c of a set: one number, or one per base."""
        c = self.cfg["c"][wildcards.rc_set]
        return c[wildcards.rc_base] if isinstance(c, dict) else c

    def simulation_flags(self) -> str:
        return cli_flags(self.cfg, SIMULATION_KEYS)

    def report_flags(self) -> str:
        return cli_flags(self.cfg, ["fit_from", "bootstrap", "seed"])

    def csvs(self) -> list[str]:
        return [f"{self.root}/{s}_{b}.csv" for s in self.cfg["sets"] for b in self.cfg["bases"]]

    def outputs(self) -> list[str]:
        return self.w.outputs("radius_coverage", [""], ["rates"])
