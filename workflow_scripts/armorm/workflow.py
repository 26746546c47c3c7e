"""The ArmoRM stage's paths, inputs and flags, for rules/armorm.smk (imported while Snakemake plans)."""
from __future__ import annotations

import json
import shlex

from workflow_scripts.core.grid import training_pairs
from workflow_scripts.core.workflow import EVAL_SPLITS, Workflow, cli_flags


class ArmoRMRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["armorm"]
        self.root = f"{workflow.results}/armorm"
        self.runs = workflow.grid("armorm")
        self.pairs = training_pairs(self.cfg)
        self.pair_spec = {spec["name"]: spec for spec in self.pairs}

    def pair(self, wildcards) -> dict:
        """The training pair named by the ``pair`` wildcard: {name, objectives, weights}."""
        return self.pair_spec[wildcards.pair]

    @property
    def pairs_json(self) -> str:
        return json.dumps(self.pairs)

    @property
    def builds_reward_model(self) -> bool:
        """The mini preset's reward model is a stand-in the workflow builds; the paper's is a hub id."""
        return isinstance(self.cfg["reward_model"], dict)

    def reward_input(self) -> dict:
        return {"reward_model": f"{self.root}/reward_model"} if self.builds_reward_model else {}

    def standin_spec(self) -> str:
        return json.dumps(self.cfg["reward_model"] if self.builds_reward_model else {}, sort_keys=True)

    def reward_flags(self, wildcards, input) -> str:
        """The reward-model flags of scoring and evaluation: which model, how it loads, how it batches."""
        source = input.reward_model if self.builds_reward_model else self.cfg["reward_model"]
        return " ".join([
            cli_flags({"reward_model": source, "allowlist": self.cfg["trust_remote_code_allowlist"],
                       "loader": self.cfg["reward_loader"], "dtype": self.cfg["reward_dtype"]}),
            cli_flags(self.cfg["scoring"], ["batch_size", "max_length"], batch_size="score_batch_size",
                      max_length="score_max_length"),
        ])

    def data_seed(self, seed) -> int:
        return self.w.data_seed(self.cfg["completions"]["per_seed"], seed)

    def prefs_path(self, wildcards) -> str:
        return f"{self.root}/prefs/{wildcards.pair}/{self.data_seed(wildcards.seed)}/train.parquet"

    def completion_flags(self) -> str:
        return cli_flags(self.cfg["completions"], ["temperature", "top_p", "max_new_tokens", "max_prompt_tokens",
                                                   "batch_size", "shard_size", "n"], n="per_prompt")

    def eval_flags(self, wildcards, input) -> str:
        return " ".join([
            f"--prompts {shlex.quote(input.prompts)}",
            f"--pair={wildcards.pair}" if "pair" in wildcards.keys() else "",
            cli_flags(self.cfg["evaluate"], ["n_prompts", "samples_per_prompt", "temperature", "top_p",
                                             "max_new_tokens", "batch_size", "selection", "best_by"]),
            cli_flags(self.cfg["completions"], ["max_prompt_tokens"]),
            self.reward_flags(wildcards, input),
        ])

    def report_flags(self) -> str:
        return " ".join([f"--pairs-json {shlex.quote(self.pairs_json)}",
                         cli_flags(self.cfg["evaluate"], ["axes", "alphas"])])

    def scale_scores(self) -> str:
        """The reporting scale: z-scores w.r.t. the base policy's training completions (first data seed)."""
        return f"{self.root}/scores/{self.data_seed(self.w.config['seeds'][0])}/train.parquet"

    def eval_csvs(self) -> list[str]:
        rows = [f"{self.root}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in self.w.config["seeds"]]
        return rows + [f"{self.root}/eval/{split}/{pair['name']}/{run.path}.csv"
                       for split in EVAL_SPLITS for pair in self.pairs for run in self.runs]

    def histories(self) -> list[str]:
        return [f"{self.root}/align/{pair['name']}/{run.path}/history.csv" for pair in self.pairs for run in self.runs]

    def outputs(self) -> list[str]:
        return self.w.outputs("armorm", ["spider", "alpha_sweep", "training"], ["objectives"])
