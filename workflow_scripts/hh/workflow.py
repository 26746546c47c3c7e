"""The HH stage's paths, inputs and flags, for rules/hh.smk (imported while Snakemake plans)."""
from __future__ import annotations

import json
import shlex
from typing import NamedTuple

from workflow_scripts.core.grid import Run, expand_grid
from workflow_scripts.core.workflow import EVAL_SPLITS, Workflow, cli_flags, model_spec_arg, local_directory, split_files


class HHRun(NamedTuple):
    """One HH alignment job: the policy (model size), the preference data (aggregation, scale) and the run."""

    policy: str
    aggregation: str
    scale: str
    run: Run


def scale_name(scale: int) -> str:
    """The canonical spelling of a data scale in paths: the number of training prompts, or "all"."""
    return "all" if int(scale) == 0 else str(int(scale))


class HHRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["hh"]
        self.root = f"{workflow.results}/hh"
        self.policies = {p["name"]: p["model"] for p in self.cfg["policies"]}
        prefs = self.cfg["preferences"]
        self.scales = [scale_name(s) for s in prefs["scales"]]
        variants = self.cfg["variants"] or workflow.config["variants"]
        seeds = workflow.config["seeds"]
        self.runs = []
        for aggregation in prefs["aggregations"]:
            chosen = variants if aggregation == "mixture" else prefs["pessimistic_variants"]
            for run in expand_grid(chosen, self.cfg["radii"], self.cfg["hparams"], seeds):
                self.runs += [HHRun(p, aggregation, s, run) for p in self.policies for s in self.scales]

    # ------------------------------------------------------------------ models
    def policy_spec(self, wildcards) -> str:
        return model_spec_arg(self.policies[wildcards.policy])

    def builds_policy(self, wildcards) -> bool:
        return isinstance(self.policies[wildcards.policy], dict)

    def tokenizer_source(self, wildcards) -> str:
        """A policy built from a config gets a BPE trained on the SFT corpus; a hub policy keeps its tokenizer."""
        return "train-bpe" if self.builds_policy(wildcards) else self.policies[wildcards.policy]

    @property
    def trains_reward_models(self) -> bool:
        return self.cfg["reward_models"]["source"] == "train"

    def reward_model_inputs(self) -> dict:
        if not self.trains_reward_models:
            return {}
        return {f"rm_{o}": f"{self.root}/reward_models/{o}/model" for o in self.cfg["reward_models"]["subsets"]}

    def reward_models_json(self, input) -> str:
        """objective -> reward model (the trained directories, or the configured hub ids)."""
        rm = self.cfg["reward_models"]
        if self.trains_reward_models:
            models = {o: input[f"rm_{o}"] for o in rm["subsets"]}
        else:
            models = dict(rm["pretrained"])
        return json.dumps(models)

    def reward_flags(self, wildcards, input) -> str:
        rm = self.cfg["reward_models"]
        return " ".join([f"--reward-models {shlex.quote(self.reward_models_json(input))}",
                         cli_flags({"reward_dtype": rm["dtype"], "score_batch_size": rm["batch_size"],
                                    "score_max_length": rm["max_length"]})])

    @staticmethod
    def data_dir(wildcards, output) -> str:
        """The data stage's directory (prompts/ and preferences/ live in it)."""
        import os

        return os.path.dirname(os.path.dirname(output.prompts[0]))

    def preference_files(self) -> list[str]:
        """The data stage's per-subset preference pairs (the training data of reward models trained here)."""
        return [f"{self.root}/data/preferences/{s}/{split}.parquet" for s in self.cfg["data"]["subsets"]
                for split in ("train", "validation")]

    def preference_inputs(self, wildcards) -> list[str]:
        """The train / validation pairs of the subset an objective's reward model judges."""
        subset = self.cfg["reward_models"]["subsets"][wildcards.objective]
        return [f"{self.root}/data/preferences/{subset}/{split}.parquet" for split in ("train", "validation")]

    # ------------------------------------------------------------------ data
    def source_files(self) -> list[str]:
        """A local dialogue directory's files, ``<dir>/<subset>/{train,test}.*`` (the data rule's inputs)."""
        source = self.cfg["data"]["source"]
        if not local_directory(source):
            return []
        return [f for subset in self.cfg["data"]["subsets"] for split in ("train", "test")
                for f in split_files(f"{source}/{subset}", split)]

    def data_flags(self) -> str:
        data = self.cfg["data"]
        flags = cli_flags(data, ["source", "subsets", "min_prompt_tokens", "max_prompt_tokens", "n_train",
                                 "n_validation", "n_test", "seed"])
        if data["filter_tokenizer"]:
            flags += f" --tokenizer {shlex.quote(data['filter_tokenizer'])}"
        if data["generate"]:
            g = data["generate"]
            flags += f" --generate {g['n_train']} {g['n_test']} {g['seed']}"
        return flags

    def data_seed(self, seed) -> int:
        return self.w.data_seed(self.cfg["completions"]["per_seed"], seed)

    def completion_flags(self) -> str:
        return " ".join([cli_flags(self.cfg["completions"], ["temperature", "top_p", "max_new_tokens",
                                                             "max_prompt_tokens", "batch_size", "shard_size", "n"],
                                   n="per_prompt"), self.w.generation_flags()])

    def prefs_flags(self, wildcards) -> str:
        prefs = self.cfg["preferences"]
        return " ".join([cli_flags(prefs, ["alpha0", "cvar_q", "bt_scale"]),
                         f"--objectives {' '.join(self.cfg['reward_models']['subsets'])}",
                         f"--aggregation {wildcards.aggregation}",
                         f"--scale {0 if wildcards.scale == 'all' else int(wildcards.scale)}"])

    def prefs_path(self, wildcards) -> str:
        return (f"{self.root}/{wildcards.policy}/prefs/{wildcards.aggregation}/{wildcards.scale}/"
                f"{self.data_seed(wildcards.seed)}/train.parquet")

    def align_flags(self) -> str:
        return self.w.align_flags("hh")

    def eval_flags(self, wildcards, input) -> str:
        labels = {"policy_name": wildcards.policy}
        if "aggregation" in wildcards.keys():
            labels.update(aggregation=wildcards.aggregation, scale=wildcards.scale)
        return " ".join([
            f"--prompts validation={shlex.quote(input.validation_prompts)} --prompts test={shlex.quote(input.test_prompts)}",
            cli_flags(labels),
            cli_flags(self.cfg["evaluate"], ["n_prompts", "samples_per_prompt", "temperature", "top_p",
                                             "max_new_tokens", "batch_size"]),
            cli_flags(self.cfg["completions"], ["max_prompt_tokens"]),
            self.reward_flags(wildcards, input),
            self.w.generation_flags(),
        ])

    # ------------------------------------------------------------------ the report
    def eval_samples(self) -> list[str]:
        seeds = self.w.config["seeds"]
        rows = [f"{self.root}/{p}/eval/completions/sft/{s}.parquet" for p in self.policies for s in seeds]
        return rows + [f"{self.root}/{r.policy}/eval/completions/{r.aggregation}/{r.scale}/{r.run.path}.parquet"
                       for r in self.runs]

    def histories(self) -> list[str]:
        return [f"{self.root}/{r.policy}/align/{r.aggregation}/{r.scale}/{r.run.path}/history.csv" for r in self.runs]

    def training_completions(self) -> list[str]:
        first = self.data_seed(self.w.config["seeds"][0])
        return [f"{self.root}/{p}/completions/{first}/train.parquet" for p in self.policies]

    def training_flags(self, wildcards, input) -> str:
        return " ".join(f"{p}={shlex.quote(path)}" for p, path in zip(self.policies, input.training))

    def prefs_summaries(self) -> list[str]:
        first = self.data_seed(self.w.config["seeds"][0])
        policy = next(iter(self.policies))
        return [f"{self.root}/{policy}/prefs/mixture/{s}/{first}/summary.json" for s in self.scales] \
            if "mixture" in self.cfg["preferences"]["aggregations"] else \
            [f"{self.root}/{policy}/prefs/{self.cfg['preferences']['aggregations'][0]}/{s}/{first}/summary.json"
             for s in self.scales]

    def report_flags(self) -> str:
        return " ".join([cli_flags(self.cfg["evaluate"], ["alphas"]),
                         cli_flags(self.cfg["preferences"], ["alpha0", "cvar_q"])])

    def outputs(self) -> list[str]:
        return self.w.outputs("hh", ["pareto", "alpha_sweep", "scale", "training"], ["objectives"])

    # ------------------------------------------------------------------ the selection the leaderboard reads
    def leaderboard_contexts(self) -> list[tuple[str, str, str]]:
        """(policy, aggregation, scale) of the runs the lm-eval leaderboard evaluates (config
        ``lm_eval.hh_preferences``), the scale spelled as in paths."""
        prefs = self.w.config["lm_eval"]["hh_preferences"]
        return [(p, a, scale_name(s)) for p in self.policies for a in prefs["aggregations"] for s in prefs["scales"]]

    def selection_evals(self) -> list[str]:
        """The selection job's inputs: the VALIDATION CSVs (only) of those runs."""
        split = EVAL_SPLITS[0]
        contexts = set(self.leaderboard_contexts())
        return [f"{self.root}/{r.policy}/eval/{split}/{r.aggregation}/{r.scale}/{r.run.path}.csv"
                for r in self.runs if (r.policy, r.aggregation, r.scale) in contexts]

    def selection_flags(self) -> str:
        return cli_flags(self.cfg["evaluate"], ["alphas"])
