"""The ArmoRM stage's paths, inputs and flags, for rules/armorm.smk (imported while Snakemake plans)."""
from __future__ import annotations

import json
import shlex

from workflow_scripts.core.grid import expand_grid, training_pairs
from workflow_scripts.core.workflow import EVAL_SPLITS, Workflow, cli_flags, local_directory, split_files

#: The online regime scores fresh samples with this Scorer.
SCORER = "workflow_scripts.armorm.model:ArmoRMScorer"
#: Online runs are the training pair's name with this suffix, in paths and tables ("o1+o2@online").
ONLINE = "@online"


class ArmoRMRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["armorm"]
        self.root = f"{workflow.results}/armorm"
        self.runs = workflow.grid("armorm")
        self.pairs = training_pairs(self.cfg)
        self.pair_spec = {spec["name"]: spec for spec in self.pairs}
        online = self.cfg["online"]
        self.online_runs = (expand_grid(online["variants"], self.cfg["radii"], online["hparams"],
                                        workflow.config["seeds"]) if "online" in self.cfg["regimes"] else [])
        self.offline_runs = self.runs if "offline" in self.cfg["regimes"] else []

    def source_files(self) -> list[str]:
        """A local prompt directory's split files (the prompts rule's inputs)."""
        source = self.cfg["prompts"]["source"]
        if not local_directory(source):
            return []
        return [f for split in ("train", "validation", "test") for f in split_files(source, split)]

    def pair(self, wildcards) -> dict:
        """The training pair named by the ``pair`` wildcard: {name, objectives, weights}."""
        return self.pair_spec[wildcards.pair]

    def report_pairs(self) -> list[dict]:
        """The table's training pairs: each offline pair, and its online run ("o1+o2@online", weighted alpha0)."""
        out = [spec for spec in self.pairs if self.offline_runs]
        if self.online_runs:
            a0 = self.cfg["online"]["alpha0"]
            out += [{**spec, "name": spec["name"] + ONLINE, "weights": [a0, 1 - a0], "regime": "online"}
                    for spec in self.pairs]
        return out

    @property
    def pairs_json(self) -> str:
        return json.dumps(self.report_pairs())

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
        return " ".join([cli_flags(self.cfg["completions"], ["temperature", "top_p", "max_new_tokens",
                                                             "max_prompt_tokens", "batch_size", "shard_size", "n"],
                                   n="per_prompt"), self.w.generation_flags()])

    def eval_flags(self, wildcards, input, suffix: str = "") -> str:
        return " ".join([
            f"--prompts validation={shlex.quote(input.validation_prompts)} --prompts test={shlex.quote(input.test_prompts)}",
            f"--pair={wildcards.pair}{suffix}" if "pair" in wildcards.keys() else "",
            cli_flags(self.cfg["evaluate"], ["n_prompts", "samples_per_prompt", "temperature", "top_p",
                                             "max_new_tokens", "batch_size", "selection", "best_by"]),
            cli_flags(self.cfg["completions"], ["max_prompt_tokens"]),
            self.reward_flags(wildcards, input),
            self.w.generation_flags(),
        ])

    def online_eval_flags(self, wildcards, input) -> str:
        return self.eval_flags(wildcards, input, ONLINE)

    def report_flags(self) -> str:
        return " ".join([f"--pairs-json {shlex.quote(self.pairs_json)}",
                         cli_flags(self.cfg["evaluate"], ["axes", "alphas"])])

    def scale_scores(self) -> str:
        """The reporting scale: z-scores w.r.t. the base policy's training completions (first data seed)."""
        return f"{self.root}/scores/{self.data_seed(self.w.config['seeds'][0])}/train.parquet"

    def online_flags(self, wildcards, input) -> str:
        """The online runner: its align section, the pair's objectives mixed at alpha0, ArmoRM as the scorer."""
        online = self.cfg["online"]
        spec = self.pair_spec[wildcards.pair]
        source = input.reward_model if self.builds_reward_model else self.cfg["reward_model"]
        options = {"allowlist": self.cfg["trust_remote_code_allowlist"], "loader": self.cfg["reward_loader"],
                   "dtype": self.cfg["reward_dtype"], "batch_size": self.cfg["scoring"]["batch_size"],
                   "max_length": self.cfg["scoring"]["max_length"]}
        return " ".join([
            cli_flags(self.cfg["losses"]), self.w.train_flags(online["align"]),
            cli_flags({"objectives": spec["objectives"], **{k: online[k] for k in ("alpha0", "mixture", "bt_scale",
                                                                                 "temperature")}}),
            f"--scorer {SCORER} --reward-model {shlex.quote(source)} "
            f"--scorer-options {shlex.quote(json.dumps(options, sort_keys=True))}",
            self.w.generation_flags(),
        ])

    def runs_of(self, regime: str):
        """(pair name, run) of every alignment job of a regime."""
        if regime == "online":
            return [(pair["name"] + ONLINE, run) for pair in self.pairs for run in self.online_runs]
        return [(pair["name"], run) for pair in self.pairs for run in self.offline_runs]

    def eval_csvs(self) -> list[str]:
        rows = [f"{self.root}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in self.w.config["seeds"]]
        return rows + [f"{self.root}/eval/{split}/{name}/{run.path}.csv" for split in EVAL_SPLITS
                       for regime in ("offline", "online") for name, run in self.runs_of(regime)]

    def histories(self) -> list[str]:
        return [f"{self.root}/align/{name}/{run.path}/history.csv"
                for regime in ("offline", "online") for name, run in self.runs_of(regime)]

    def outputs(self) -> list[str]:
        return self.w.outputs("armorm", ["spider", "alpha_sweep", "training"], ["objectives"])

    # ------------------------------------------------------------------ the selection the leaderboard reads
    def leaderboard_pairs(self) -> list[str]:
        """The training pairs whose policies the lm-eval leaderboard evaluates (config ``lm_eval.armorm_pairs``)."""
        names = [p["name"] for p in self.pairs]
        chosen = self.w.config["lm_eval"]["armorm_pairs"]
        return names[:1] if chosen == "first" else names if chosen == "all" else list(chosen)

    def selection_evals(self) -> list[str]:
        """The selection job's inputs: the VALIDATION CSVs (only) of those pairs' offline runs."""
        split, chosen = EVAL_SPLITS[0], set(self.leaderboard_pairs())
        return [f"{self.root}/eval/{split}/{name}/{run.path}.csv" for name, run in self.runs_of("offline")
                if name in chosen]

    def selection_flags(self) -> str:
        pairs = [p for p in self.pairs if p["name"] in self.leaderboard_pairs()]
        return " ".join([f"--pairs-json {shlex.quote(json.dumps(pairs))}",
                         cli_flags(self.cfg["evaluate"], ["axes"])])
