"""The emotion stage's paths, inputs and flags, for rules/emotion.smk (imported while Snakemake plans)."""
from __future__ import annotations

import shlex

from workflow_scripts.core.grid import expand_grid
from workflow_scripts.core.workflow import EVAL_SPLITS, Workflow, cli_flags, local_directory, split_files

#: The online regime labels fresh samples with this Scorer (the reward model; unused offline).
SCORER = "workflow_scripts.emotion.reward:EmotionScorer"
#: Where each grid's runs live under results/<preset>/emotion, and the stem of its figures and tables.
REGIMES = {"offline": ("", "emotion"), "online": ("online/", "emotion_online")}


class EmotionRules:
    def __init__(self, workflow: Workflow):
        self.w = workflow
        self.cfg = workflow.config["emotion"]
        self.root = f"{workflow.results}/emotion"
        regimes = self.cfg["regimes"]
        self.runs = workflow.grid("emotion") if "offline" in regimes else []
        online = self.cfg["online"]
        #: The online grid's seeds: its own list, or the top-level seeds.
        self.online_seeds = [int(s) for s in (online["seeds"] or workflow.config["seeds"])]
        self.online_runs = (expand_grid(online["variants"], self.cfg["radii"], online["hparams"], self.online_seeds)
                            if "online" in regimes else [])

    def source_files(self) -> list[str]:
        """A local dataset's split files (the data rule's inputs: an edited file reruns what depends on it)."""
        source = self.cfg["dataset"]
        if not local_directory(source):
            return []
        return [f for split in ("train", "validation", "test") for f in split_files(source, split)]

    def pairs_path(self, wildcards) -> str:
        """The preference pairs a training seed uses (its own with emotion.pairs.per_seed); the online regime's
        prompt pool."""
        return f"{self.root}/pairs/{self.w.data_seed(self.cfg['pairs']['per_seed'], wildcards.seed)}/train.parquet"

    def mixture_flags(self) -> str:
        return cli_flags(self.cfg["mixture"], ["objectives", "alpha0", "kind", "bt_scale"], kind="mixture")

    def align_flags(self, wildcards, input) -> str:
        """The experiment's losses and align sections, plus what the online regime labels fresh samples with."""
        return " ".join([self.w.align_flags("emotion"), self.mixture_flags(),
                         f"--scorer {SCORER} --reward-model {shlex.quote(input.reward_model)}"])

    def online_flags(self, wildcards, input) -> str:
        """The online grid's jobs: emotion.online.align instead of emotion.align, and sampling flags."""
        align = self.cfg["online"]["align"]
        return " ".join([cli_flags(self.cfg["losses"]), self.w.train_flags(align), self.w.generation_flags(),
                         self.mixture_flags(),
                         f"--scorer {SCORER} --reward-model {shlex.quote(input.reward_model)}"])

    def eval_flags(self, wildcards, input) -> str:
        return " ".join([
            f"--data {shlex.quote(input.data)} --reward-model {shlex.quote(input.reward_model)}",
            cli_flags(self.cfg["pairs"], ["prompt_tokens"]),
            cli_flags(self.cfg["evaluate"]),
            cli_flags(self.cfg["mixture"], ["objectives"]),
            self.w.generation_flags(),
        ])

    def _grid(self, regime: str):
        return (self.runs, self.w.config["seeds"]) if regime == "offline" else (self.online_runs, self.online_seeds)

    def eval_csvs(self, regime: str = "offline") -> list[str]:
        """The evaluation CSVs a report reads: the SFT baseline of the grid's seeds and every run of the grid."""
        runs, seeds = self._grid(regime)
        sub = REGIMES[regime][0]
        rows = [f"{self.root}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in seeds]
        return rows + [f"{self.root}/{sub}eval/{split}/{run.path}.csv" for split in EVAL_SPLITS for run in runs]

    def histories(self, regime: str = "offline") -> list[str]:
        runs, _ = self._grid(regime)
        return [f"{self.root}/{REGIMES[regime][0]}align/{run.path}/history.csv" for run in runs]

    def outputs(self) -> list[str]:
        """Each grid's figures and tables (emotion_*, emotion_online_*), or nothing when the stage is disabled."""
        figures, tables = ["alpha_sweep", "training"], ["robustness", "verdict", "tilt"]
        out = []
        for regime in self.cfg["regimes"]:
            out += self.w.outputs("emotion", figures, tables, stem=REGIMES[regime][1])
        return out
