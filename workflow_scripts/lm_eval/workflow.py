"""The leaderboard stage's jobs, paths and flags, for rules/lm_eval.smk (imported while Snakemake plans).

One job per evaluated policy: the experiment's base / SFT policy, and per (training context, variant,
seed) the policy at the selection's radius and eta/beta. A job's inputs are every candidate run of its
variant and seed plus the selection JSON; the job opens only the selected one. (Listing the candidates
keeps the DAG static: a dry-run shows every lm-eval job, with no checkpoint to wait for.)

Which radius and eta/beta a job opens is the experiment's own choice on validation: each experiment writes it
to ``<results>/lm_eval/<experiment>/selected.json`` (rules/armorm.smk, rules/hh.smk). This module imports no
experiment; it reads the experiments' rule helpers (``armorm``, ``hh``: their runs, paths and the policies
they offer the leaderboard) and the selection files.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import NamedTuple

from workflow_scripts.core.workflow import Workflow, cli_flags


class LMEvalJob(NamedTuple):
    """One lm-eval job: its experiment, training context (dict of wildcard values) and variant, seed."""

    experiment: str
    context: tuple  # ((key, value), ...)
    variant: str
    seed: int


class LMEvalRules:
    def __init__(self, workflow: Workflow, armorm, hh):
        self.w = workflow
        self.cfg = workflow.config["lm_eval"]
        self.root = f"{workflow.results}/lm_eval"
        self.armorm, self.hh = armorm, hh
        config = workflow.config
        self.experiments = [e for e in self.cfg["experiments"] if config[e]["enabled"]] if self.cfg["enabled"] else []
        self.jobs = self._armorm_jobs() + self._hh_jobs()

    # ------------------------------------------------------------------ which policies
    def _variants(self, trained) -> list[str]:
        wanted = self.cfg["variants"]
        return [v for v in dict.fromkeys(trained) if wanted is None or v in wanted]

    def _armorm_jobs(self) -> list[LMEvalJob]:
        if "armorm" not in self.experiments or not self.armorm.offline_runs:
            return []
        variants = self._variants(r.variant for r in self.armorm.offline_runs)
        return [LMEvalJob("armorm", (("pair", pair),), v, s) for pair in self.armorm.leaderboard_pairs() for v in variants
                for s in self.w.config["seeds"]]

    def hh_contexts(self) -> list[tuple]:
        return [tuple(zip(("policy", "aggregation", "scale"), c)) for c in self.hh.leaderboard_contexts()]

    def _hh_jobs(self) -> list[LMEvalJob]:
        if "hh" not in self.experiments:
            return []
        jobs = []
        for context in self.hh_contexts():
            c = dict(context)
            trained = [r.run.variant for r in self.hh.runs if (r.policy, r.aggregation, r.scale) ==
                       (c["policy"], c["aggregation"], c["scale"])]
            jobs += [LMEvalJob("hh", context, v, s) for v in self._variants(trained) for s in self.w.config["seeds"]]
        return jobs

    # ------------------------------------------------------------------ paths
    def results_files(self) -> list[str]:
        files = []
        if "armorm" in self.experiments and self._armorm_jobs():
            files.append(f"{self.root}/armorm/sft/results.json")
        if "hh" in self.experiments:
            files += [f"{self.root}/hh/{p}/sft/results.json" for p in self.hh.policies
                      if any(j.experiment == "hh" and dict(j.context)["policy"] == p for j in self.jobs)]
        for job in self.jobs:
            context = "/".join(value for _, value in job.context)
            files.append(f"{self.root}/{job.experiment}/{context}/{job.variant}/{job.seed}/results.json")
        return files

    def outputs(self) -> list[str]:
        if not self.jobs:
            return []
        return [f"{self.w.results}/tables/lm_eval_leaderboard.{ext}" for ext in ("csv", "md", "tex")] + [
            f"{self.w.results}/figures/lm_eval_vs_sft.{ext}" for ext in ("pdf", "png")]

    # ------------------------------------------------------------------ one job
    def armorm_candidates(self, wildcards) -> list[str]:
        return [f"{self.armorm.root}/align/{wildcards.pair}/{run.path}/policy" for run in self.armorm.offline_runs
                if run.variant == wildcards.variant and run.seed == int(wildcards.seed)]

    def hh_candidates(self, wildcards) -> list[str]:
        return [f"{self.hh.root}/{r.policy}/align/{r.aggregation}/{r.scale}/{r.run.path}/policy" for r in self.hh.runs
                if (r.policy, r.aggregation, r.scale, r.run.variant, r.run.seed) ==
                (wildcards.policy, wildcards.aggregation, wildcards.scale, wildcards.variant, int(wildcards.seed))]

    @staticmethod
    def _policy_of(experiment: str, wildcards) -> dict:
        keys = {"armorm": ("pair",), "hh": ("policy", "aggregation", "scale")}[experiment]
        return {k: getattr(wildcards, k) for k in keys if k in wildcards.keys()}

    def which_flags(self, experiment: str):
        """A params function: which policy the job evaluates, and the labels its results carry."""

        def flags(wildcards, input):
            context = self._policy_of(experiment, wildcards)
            if "variant" not in wildcards.keys():  # the SFT / base policy
                labels = {"experiment": experiment, **context, "variant": "sft", "radius": "0", "hp": "sft"}
                return (f"--policy {shlex.quote(input.policy)} --seed {self.w.config['seeds'][0]} "
                        f"--labels {shlex.quote(json.dumps(labels, sort_keys=True))}")
            group = {**context, "variant": wildcards.variant}
            labels = {"experiment": experiment, **group}
            options = []
            for path in input.candidates:
                radius, hp = path.split("/")[-4:-2]  # .../{radius}/{hp}/{seed}/policy
                options.append(shlex.quote(f"{radius}/{hp}={path}"))
            return " ".join([f"--selection {shlex.quote(input.selection)}",
                             f"--group {shlex.quote(json.dumps(group, sort_keys=True))}",
                             f"--candidates {' '.join(options)}", f"--seed {wildcards.seed}",
                             f"--labels {shlex.quote(json.dumps(labels, sort_keys=True))}"])

        return flags

    def tasks(self) -> list[str]:
        if self.cfg["demo_task"]:
            from workflow_scripts.lm_eval.demo_task import GROUP

            return [GROUP]
        return [t for t in self.cfg["tasks"] if t not in self.cfg["skip_tasks"]]

    def demo_input(self) -> dict:
        """The tasks' own files as inputs: the demo task group the workflow writes, or every file under a local
        ``include_path`` (task YAMLs and their data: editing one reruns the lm-eval jobs)."""
        if self.cfg["demo_task"]:
            return {"demo_task": f"{self.root}/demo_task"}
        path = self.cfg["include_path"]
        if path and Path(path).expanduser().is_dir():
            return {"local_tasks": sorted(str(p) for p in Path(path).expanduser().rglob("*") if p.is_file())}
        return {}

    def harness_flags(self, wildcards, input) -> str:
        """The harness settings every lm-eval job shares (config lm_eval)."""
        cfg = self.cfg
        include = input.demo_task if cfg["demo_task"] else cfg["include_path"]
        flags = [f"--tasks {' '.join(self.tasks())}",
                 cli_flags(cfg, ["backend", "dtype", "batch_size", "max_length", "limit", "harness_seeds"]),
                 cli_flags({k: str(cfg[k]).lower() for k in ("apply_chat_template", "fewshot_as_multiturn",
                                                             "log_samples")})]
        if include:
            flags.append(f"--include-path {shlex.quote(include)}")
        if cfg["gen_kwargs"]:
            flags.append(f"--gen-kwargs {shlex.quote(json.dumps(cfg['gen_kwargs'], sort_keys=True))}")
        return " ".join(flags)
