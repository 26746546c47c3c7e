"""The emotion stage's paths, inputs and flags, for rules/emotion.smk (imported while Snakemake plans)."""
from __future__ import annotations

import shlex

from workflow_scripts.core.workflow import EVAL_SPLITS, Workflow, cli_flags

#: The online regime labels fresh samples with this Scorer (the reward model; unused offline).
SCORER = "workflow_scripts.emotion.reward:EmotionScorer"


class EmotionRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["emotion"]
        self.root = f"{workflow.results}/emotion"
        self.runs = workflow.grid("emotion")

    def pairs_path(self, wildcards) -> str:
        """The preference pairs a training seed uses (its own with emotion.pairs.per_seed)."""
        return f"{self.root}/pairs/{self.w.data_seed(self.cfg['pairs']['per_seed'], wildcards.seed)}/train.parquet"

    def mixture_flags(self) -> str:
        return cli_flags(self.cfg["mixture"], ["objectives", "alpha0", "kind", "bt_scale"], kind="mixture")

    def align_flags(self, wildcards, input) -> str:
        """The experiment's losses and align sections, plus what the online regime labels fresh samples with."""
        return " ".join([self.w.align_flags("emotion"), self.mixture_flags(),
                         f"--scorer {SCORER} --reward-model {shlex.quote(input.reward_model)}"])

    def eval_flags(self, wildcards, input) -> str:
        return " ".join([
            f"--data {shlex.quote(input.data)} --reward-model {shlex.quote(input.reward_model)}",
            cli_flags(self.cfg["pairs"], ["prompt_tokens"]),
            cli_flags(self.cfg["evaluate"]),
            cli_flags(self.cfg["mixture"], ["objectives"]),
            self.w.generation_flags(),
        ])

    def eval_csvs(self) -> list[str]:
        rows = [f"{self.root}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in self.w.config["seeds"]]
        return rows + [f"{self.root}/eval/{split}/{run.path}.csv" for split in EVAL_SPLITS for run in self.runs]

    def histories(self) -> list[str]:
        return [f"{self.root}/align/{run.path}/history.csv" for run in self.runs]

    def outputs(self) -> list[str]:
        return self.w.outputs("emotion", ["alpha_sweep", "training"], ["robustness", "verdict"])
