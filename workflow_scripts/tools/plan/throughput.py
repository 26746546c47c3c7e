"""The throughput table: tokens per second per (GPU type, model, phase, variant family), and job start-up.

Why a table in a versioned file (``workflow_scripts/tools/throughput.yaml``) and not constants in code:
the numbers are the planner's assumptions, and a plan is only as good as them; the file says for each
entry where it comes from (``source: measured`` with where and when, or ``source: estimate`` from the
FLOPs model stated in the file), and its ``version`` goes into every plan, so two plans can be
compared knowing whether their costs were computed alike.

The FLOPs model (all of it in the file's ``flops_model``):

- training step: ``6 N`` FLOPs per token at ``mfu.train_step`` of the GPU's dense bf16 peak; the
  Wasserstein family costs ``wasserstein_step_factor`` x a base step (double backward, eager attention);
  a micro-batch takes at least ``micro_step_s`` (kernel launches, DeepSpeed's bookkeeping: what dominates
  small models on short sequences; larger steps hide it);
- a forward (reference log-probs, statistics pass, scoring, prompt prefill): ``2 N`` per token;
- generation (decode) is bound by memory bandwidth or per-step overhead, not FLOPs: one decode step reads
  every weight once for the whole batch, ``weight_bytes / (HBM bandwidth x hbm_efficiency)``, and costs at
  least ``decode_step_floor_s_per_layer`` x layers (per backend: kernel launches and Python of an eager HF
  ``generate``; vLLM's CUDA graphs);
  tokens/s = batch / step time (entries at ``decode_batch`` sequences; a job's own batch rescales them),
  and each step also reads the batch's KV cache (:meth:`Throughput.decode_seconds`).

N counts the blocks and the output head (:attr:`Shape.compute_params`); a reward model scoring counts its
blocks and its own small heads (:attr:`Shape.scoring_params`: no vocabulary-sized head). Gradient checkpointing
adds one forward of every trained token (the work model). Attention's own FLOPs (a few % at these lengths)
and the head's restriction to scored tokens are left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from workflow_scripts.tools.plan.shapes import KNOWN, Shape

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "throughput.yaml"

#: Phases of a job's work, and the FLOPs per token and parameter of the compute-bound ones.
PHASES = ("train_step", "forward", "prefill", "generation", "scoring")
FLOPS_PER_PARAM = {"train_step": 6, "forward": 2, "prefill": 2, "scoring": 2}
#: Families with their own cost per phase: training steps per variant family (KL and chi2 cost what the
#: base costs per step; their statistics pass is counted by the work model as extra forward tokens);
#: generation per backend (HF generate, vLLM); the other phases have one ("base").
FAMILIES = {"train_step": ("base", "wasserstein"), "generation": ("hf", "vllm")}
#: Models whose estimate entries the file lists (the paper preset's), per phase they are used in.
TABLE_MODELS = {
    "gpt2": ("train_step", "forward", "prefill", "generation", "scoring"),
    "meta-llama/Llama-3.2-1B-Instruct": ("train_step", "forward", "prefill", "generation"),
    "Qwen/Qwen2.5-1.5B-Instruct": ("train_step", "forward", "prefill", "generation"),
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": ("scoring",),
    "gpt2-large": ("train_step", "scoring"),
}


@dataclass(frozen=True)
class Rate:
    tokens_per_s: float
    source: str        # "measured" or "estimate"


class Throughput:
    """The loaded table: :meth:`rate` answers from a listed entry (measured or estimate), else from the
    FLOPs model (a model that is not listed, e.g. a config-built one)."""

    def __init__(self, data: dict, path: Optional[Path] = None):
        self.data, self.path = data, path
        self.version = data["version"]
        self.gpus = data["gpus"]
        self.model = data["flops_model"]
        self.overhead = data["overhead"]
        self.entries = {(e["gpu"], e["model"], e["phase"], e.get("family", "base")): e
                        for e in data.get("entries") or []}

    @classmethod
    def load(cls, path: Optional[Path] = None) -> "Throughput":
        path = Path(path or DEFAULT_TABLE)
        if not path.is_file():
            raise SystemExit(f"throughput table {path} not found.")
        with open(path) as fh:
            return cls(yaml.safe_load(fh), path)

    def check_gpu(self, gpu: str) -> dict:
        if gpu not in self.gpus:
            raise SystemExit(f"unknown GPU type {gpu!r}: choose one of {', '.join(self.gpus)} "
                             f"(or add it to {self.path or DEFAULT_TABLE}).")
        return self.gpus[gpu]

    # ------------------------------------------------------------------ rates
    def rate(self, shape: Shape, phase: str, gpu: str, family: str = "base", batch: Optional[int] = None) -> Rate:
        """Tokens/s of one GPU (one CPU process for ``cpu``) for ``phase`` of ``shape``."""
        entry = self.entries.get((gpu, shape.name, phase, family))
        if entry is not None:
            rate = Rate(float(entry["tokens_per_s"]), entry["source"])
        else:
            rate = Rate(self.estimate(shape, phase, gpu, family), "estimate")
        if phase == "generation" and batch:
            # Entries are at `decode_batch` sequences per step; while memory- or overhead-bound, tokens/s grows
            # with the batch, up to the compute bound.
            scaled = rate.tokens_per_s * batch / self.model["decode_batch"]
            rate = Rate(min(scaled, self.estimate(shape, "prefill", gpu)), rate.source)
        return rate

    def estimate(self, shape: Shape, phase: str, gpu: str, family: str = "base") -> float:
        """The FLOPs model's tokens/s (module docstring)."""
        spec = self.check_gpu(gpu)
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; one of {PHASES}.")
        peak = float(spec["peak_tflops"]) * 1e12
        if phase == "generation":
            batch = self.model["decode_batch"]
            memory = shape.weight_bytes(self.model["weight_bytes_per_param"]) / (
                float(spec["hbm_tb_s"]) * 1e12 * self.model["hbm_efficiency"])
            floor = shape.n_layer * self.model["decode_step_floor_s_per_layer"][family if family != "base" else "hf"]
            compute = 2 * shape.compute_params * batch / (peak * self.model["mfu"]["prefill"])
            return batch / max(memory, floor, compute)
        params = shape.scoring_params if phase == "scoring" else shape.compute_params
        rate = peak * self.model["mfu"][phase] / (FLOPS_PER_PARAM[phase] * params)
        if phase == "train_step" and family == "wasserstein":
            rate /= self.model["wasserstein_step_factor"]
        return rate

    def decode_seconds(self, shape: Shape, tokens: float, gpu: str, rate: Rate, batch: Optional[int],
                       context: float) -> float:
        """Seconds of ``tokens`` decoded at ``rate``: each step also reads the batch's KV cache (``context``
        tokens per sequence), which outgrows the weights at large batches and long contexts."""
        batch = batch or self.model["decode_batch"]
        steps = tokens / batch
        spec = self.check_gpu(gpu)
        bandwidth = float(spec["hbm_tb_s"]) * 1e12 * self.model["hbm_efficiency"]
        memory = (shape.weight_bytes(self.model["weight_bytes_per_param"])
                  + batch * context * shape.kv_bytes_per_token()) / bandwidth
        return steps * max(batch / rate.tokens_per_s, memory)

    def parallel(self, gpus: int, training: bool) -> float:
        """Speed-up of a job on ``gpus`` devices: data-parallel training loses the all-reduce's share;
        generation and scoring split their shards without talking."""
        if gpus <= 1:
            return 1.0
        return gpus * (self.model["data_parallel_efficiency"] if training else 1.0)

    # ------------------------------------------------------------------ start-up
    def startup(self, gpu: str, loads: list[Shape], on_gpu: bool) -> float:
        """Seconds a job spends before its first token: scheduling, imports, process-group init, model loads."""
        base = self.overhead["gpu_job_s"] if (on_gpu and gpu != "cpu") else self.overhead["cpu_job_s"]
        load = sum(s.weight_bytes(4 if gpu == "cpu" else 2) for s in loads) / (self.overhead["load_gb_s"] * 1e9)
        return base + load

    # ------------------------------------------------------------------ the file's estimate entries
    def estimate_entries(self) -> list[dict]:
        """The entries the FLOPs model gives for the paper's models (``--write-throughput`` writes them)."""
        rows = []
        for gpu in self.gpus:
            if gpu == "cpu":
                continue
            for name, phases in TABLE_MODELS.items():
                for phase in phases:
                    for family in FAMILIES.get(phase, ("base",)):
                        tps = self.estimate(KNOWN[name], phase, gpu, family)
                        rows.append({"gpu": gpu, "model": name, "phase": phase, "family": family,
                                     "tokens_per_s": float(f"{tps:.4g}"), "source": "estimate"})
        return rows

    def table_rows(self) -> list[dict]:
        """Every entry of the file, measured first (what ``--show-throughput`` prints)."""
        return sorted(self.entries.values(),
                      key=lambda e: (e["source"] != "measured", e["gpu"], e["model"], e["phase"]))


def write_estimates(path: Path) -> int:
    """Rewrite the ``entries`` block of the table file: measured entries kept, estimates recomputed from the
    file's own FLOPs model. Only the block after the ``entries:`` line is rewritten (comments above stay)."""
    table = Throughput.load(path)
    measured = [e for e in table.entries.values() if e["source"] == "measured"]
    keep = {(e["gpu"], e["model"], e["phase"], e.get("family", "base")) for e in measured}
    estimates = [e for e in table.estimate_entries() if (e["gpu"], e["model"], e["phase"], e["family"]) not in keep]
    text = Path(path).read_text()
    head = text[: text.index("\nentries:")]
    lines = [head, "entries:"]
    for e in measured + estimates:
        lines.append("  - " + yaml.safe_dump(e, default_flow_style=True, sort_keys=False, width=1000).strip())
    Path(path).write_text("\n".join(lines) + "\n")
    return len(estimates)
