"""Work models: what one job of each rule family processes, in tokens per phase.

One small function per family (SFT, reward model, sampling + scoring for preference data and evaluation,
alignment, lm-eval, a CPU simulation), none naming an experiment: each experiment's ``plan`` module maps its rules
to a family and says what the family needs for a job (:mod:`.inputs`: model shapes, the config section,
example counts, lengths). A change to what a template rule does has one obvious place here; a new
experiment adds its own ``plan`` module and nothing in this package. A job's work is a list of
:class:`Phase` (model, phase, tokens) plus what the memory model needs (:class:`TrainMemory` /
:class:`InferMemory`). Token counts follow the code paths (workflow_scripts/core/train/align.py:
iterations, statistics pass, reference once per pair, online sampling); lengths are estimates from the
table's dataset statistics (:mod:`.sizes`), said so in every plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

from workflow_scripts.core.experiments import experiment_modules
from workflow_scripts.core.losses.registry import get_variant
from workflow_scripts.tools.plan.inputs import (AlignInputs, Context, LmEvalInputs, RewardInputs,
                                                SamplingInputs, SftInputs, SimulationInputs)
from workflow_scripts.tools.plan.shapes import Shape

#: vLLM's default cap of sequences decoded together (its scheduler's max_num_seqs).
VLLM_MAX_SEQS = 256


@dataclass(frozen=True)
class Phase:
    model: Shape
    phase: str             # train_step, forward, prefill, generation, scoring (throughput.PHASES)
    tokens: float
    family: str = "base"   # train_step: base or wasserstein; generation: the backend (hf or vllm)
    batch: Optional[int] = None   # sequences per decode step (generation; on a GPU see `auto`)
    context: float = 0.0          # mean tokens attended per decode step (generation: KV-cache reads)
    auto: Optional["AutoBatch"] = None   # generation on a GPU: the batch the free memory holds (estimate.py)


@dataclass(frozen=True)
class AutoBatch:
    """How a sampler sizes its batch on a GPU (workflow_scripts/core/sampling/hf.py): as many sequences as
    ``fraction`` of the memory left by the job's models holds, at ``row_tokens`` of KV cache each, capped."""

    max_sequences: int
    fraction: float
    row_tokens: int


@dataclass(frozen=True)
class TrainMemory:
    """What a training job holds per device (memory.py): the trained model, its micro-batch, resident extras."""

    model: Shape
    micro_batch: int       # the config's micro_batch (pairs for alignment, examples otherwise)
    per_item: int          # sequences per micro-batch item (2: both completions of a pair)
    length: int            # padded sequence length (worst case: max_length)
    logit_tokens: int      # positions that reach the LM head per sequence
    checkpointing: bool
    eager_attention: bool  # Wasserstein: eager kernels (attention scores materialised)
    double_backward: bool  # Wasserstein: the graph of the input gradient is kept
    resident: tuple = ()   # frozen models on every rank (online reference and scorer), bf16
    knobs: str = ""        # the config section a fix goes to (e.g. "armorm.align")


@dataclass(frozen=True)
class InferMemory:
    models: tuple          # frozen models loaded (bf16 on GPUs)
    batch: int             # sequences per forward / decode step
    length: int            # longest sequence


@dataclass
class Work:
    phases: list = field(default_factory=list)
    loads: list = field(default_factory=list)      # models loaded at start-up
    memory: object = None                          # TrainMemory, InferMemory or None
    cpu_seconds: float = 0.0                       # CPU-only work (a simulation), at the table's rate
    training: bool = False                         # data-parallel training (multi-GPU efficiency)
    micro_batches: float = 0.0                     # forward(+backward) micro-batches over all ranks (per-step cost)
    notes: list = field(default_factory=list)      # what the model could not cost (shown in the plan)

    @property
    def tokens(self) -> float:
        return sum(p.tokens for p in self.phases)


# ====================================================================== families
def _train_memory(shape, section, per_item, length, logit_tokens, knobs, **kw) -> TrainMemory:
    return TrainMemory(shape, section["micro_batch"], per_item, length, logit_tokens,
                       bool(section.get("gradient_checkpointing", False)), kw.pop("eager", False),
                       kw.pop("double", False), knobs=knobs, **kw)


def _recompute(section: dict, shape: Shape, trained_tokens: float) -> list:
    """Gradient checkpointing recomputes each layer's forward in the backward: one more forward of every
    trained token (the Wasserstein double backward differentiates through that recomputed forward)."""
    return [Phase(shape, "forward", trained_tokens)] if section.get("gradient_checkpointing") else []


def sft(ctx: Context, job, x: SftInputs) -> Work:
    """Causal-LM fine-tuning: epochs x texts x length of training tokens; one validation forward."""
    cfg, shape = x.section, x.model
    length = min(cfg["max_length"], x.text_tokens + 1)
    work = Work(training=True, loads=[shape])
    work.phases = [Phase(shape, "train_step", cfg["epochs"] * x.train * length),
                   Phase(shape, "forward", x.validation * length)]
    work.phases += _recompute(cfg, shape, cfg["epochs"] * x.train * length)
    work.micro_batches = (cfg["epochs"] * x.train + x.validation) / cfg["micro_batch"]
    work.memory = _train_memory(shape, cfg, 1, cfg["max_length"], cfg["max_length"], x.knobs)
    return work


def reward(ctx: Context, job, x: RewardInputs) -> Work:
    """Reward-model training: epochs x sequences x length (a classifier: one scored position per sequence)."""
    cfg, shape = x.section, x.model
    work = Work(training=True, loads=[shape])
    work.phases = [Phase(shape, "train_step", cfg["epochs"] * x.sequences * x.length)]
    work.phases += _recompute(cfg, shape, cfg["epochs"] * x.sequences * x.length)
    work.micro_batches = cfg["epochs"] * x.sequences / (x.per_item * cfg["micro_batch"])
    work.memory = _train_memory(shape, cfg, x.per_item, cfg["max_length"], 1, x.knobs)
    return work


def _generate(ctx: Context, policy, n_seqs, prompt, new_tokens, batch, per_prompt: int = 1,
              backend: Optional[str] = None, auto: Optional[AutoBatch] = None) -> list:
    """A generate() pass: the prompts' prefill, then ``new_tokens`` decode steps per sequence, on the
    config's backend (``generation``: hf or vllm; the online regime always hf). ``batch``: sequences per
    step on a CPU (the stage's batch_size x samples per prompt); on a GPU the sampler sizes it itself."""
    g = ctx.config.get("generation") or {}
    backend = backend or g.get("backend", "hf")
    if auto is not None:
        pass
    elif backend == "vllm":
        v = g.get("vllm") or {}
        auto = AutoBatch(VLLM_MAX_SEQS, float(v.get("gpu_memory_utilization", 0.8)), int(prompt + new_tokens))
    else:
        h = g.get("hf") or {}
        auto = None if not h.get("auto_batch", False) else AutoBatch(
            int(h.get("max_batch", 512)) * per_prompt, float(h.get("memory_fraction", 0.8)), int(prompt + new_tokens))
    return [Phase(policy, "prefill", n_seqs * prompt),
            Phase(policy, "generation", n_seqs * new_tokens, family=backend, batch=batch,
                  context=prompt + new_tokens / 2, auto=auto)]


def sample(ctx: Context, job, x: SamplingInputs) -> Work:
    """Completions sampled from a policy (prefill + generation) and / or their reward-model scores (scoring):
    preference data (family ``generate``) and the evaluation of a policy (family ``evaluate``)."""
    models = tuple(m for m in (x.policy, *x.scorers) if m is not None)
    work = Work(loads=list(models))
    if x.policy is not None:
        work.phases = _generate(ctx, x.policy, x.sequences, x.prompt_tokens, x.new_tokens, x.batch, x.per_prompt)
    work.phases += [Phase(rm, "scoring", x.sequences * x.scored_tokens) for rm in x.scorers]
    work.memory = InferMemory(models, x.batch, x.length)
    return work


def align(ctx: Context, job, x: AlignInputs) -> Work:
    """One alignment job (workflow_scripts/core/train/align.py), per iteration batch:

    - policy forward + backward on both completions of every pair, ``updates_per_iteration`` times;
    - a statistics pass (forward; Wasserstein ``sqrt_mean``: + the input gradient, x3) before each step for
      the non-separable sets (KL, chi2, sqrt_mean Wasserstein) when a rank's share is several micro-batches;
    - reference log-probs: offline once per pair (first use); online once per iteration batch (a frozen copy);
    - REBEL's ``iterate`` anchor: one more forward per iteration batch;
    - online: two completions per prompt sampled from pi_t (generation) and scored (the reward model).
    """
    cfg, policy, n_pairs = x.section, x.policy, x.pairs
    variant = get_variant(job.wildcards["variant"])
    gpus = max(1, job.devices)
    iteration_batch = cfg["iteration_batch"] or cfg["global_batch"]
    online = cfg["regime"] == "online"
    if online or cfg["iterations"] > 0:
        iterations = cfg["iterations"]
    else:
        iterations = max(1, round((n_pairs // iteration_batch) * cfg["epochs"]))
    trained_pairs = iterations * iteration_batch * cfg["updates_per_iteration"]
    prompt = x.prompt_tokens
    response = x.response_fraction * (cfg["max_new_tokens"] if online else x.new_tokens)
    length = min(cfg["max_length"], prompt + response)
    seq_tokens = 2 * length                                   # both completions of a pair
    family = "wasserstein" if variant.ambiguity == "wasserstein" else "base"
    work = Work(training=True, loads=[policy])
    work.phases.append(Phase(policy, "train_step", trained_pairs * seq_tokens, family))
    work.phases += _recompute(cfg, policy, trained_pairs * seq_tokens)
    micro_per_rank = cfg["global_batch"] / (cfg["micro_batch"] * gpus)
    separable = variant.ambiguity == "none" or (family == "wasserstein" and x.losses["wasserstein_form"] == "pointwise")
    forward_pairs = 0
    if not separable and micro_per_rank > 1:
        factor = 3 if family == "wasserstein" else 1
        work.phases.append(Phase(policy, "forward", factor * trained_pairs * seq_tokens))
        forward_pairs += trained_pairs
    reference_pairs = iterations * iteration_batch if online else min(n_pairs, trained_pairs)
    work.phases.append(Phase(policy, "forward", reference_pairs * seq_tokens))
    forward_pairs += reference_pairs
    if variant.base == "rebel" and cfg["anchor"] == "iterate":
        work.phases.append(Phase(policy, "forward", iterations * iteration_batch * seq_tokens))
        forward_pairs += iterations * iteration_batch
    work.micro_batches = (trained_pairs + forward_pairs) / cfg["micro_batch"]
    resident = ()
    if online:
        sampled = 2 * iterations * iteration_batch
        work.phases += _generate(ctx, policy, sampled, prompt, cfg["max_new_tokens"],
                                 max(1, 2 * iteration_batch // gpus), 2, backend="hf")
        work.phases.append(Phase(x.scorer, "scoring", sampled * (prompt + response)))
        work.loads.append(x.scorer)
        resident = (policy, x.scorer)                         # the frozen reference and the scorer, on every rank
    work.memory = _train_memory(policy, cfg, 2, cfg["max_length"],
                                min(cfg["max_length"], cfg["max_new_tokens"] if online else cfg["max_length"]),
                                x.knobs, eager=family == "wasserstein", double=family == "wasserstein",
                                resident=resident)
    return work


def lm_eval(ctx: Context, job, x: LmEvalInputs) -> Work:
    """One lm-evaluation-harness run on one policy: the tasks' contexts (forward; log-likelihoods) and the
    generative tasks' prompts and answers (prefill + generation)."""
    policy, batch, limit = x.policy, x.batch, x.limit
    work = Work(loads=[policy])
    for name, t in x.tasks:
        if t is None:
            work.notes.append(f"lm-eval task {name} has no statistics in the throughput table: not costed")
            continue
        docs = t["docs"] if not limit else min(t["docs"], limit if limit >= 1 else limit * t["docs"])
        if t["generated_tokens"]:
            # lm-eval sizes its own batches (batch_size auto: the largest that fits, at most 64)
            auto = None if batch else AutoBatch(64, 0.9, t["context_tokens"] + t["generated_tokens"])
            work.phases += _generate(ctx, policy, docs, t["context_tokens"], t["generated_tokens"], batch or 64,
                                     backend=x.backend, auto=auto)
        else:   # log-likelihood requests: what the harness forwards per document (k choices unless shared)
            work.phases.append(Phase(policy, "forward", docs * t.get("forward_tokens_per_doc", t["context_tokens"])))
    work.memory = InferMemory((policy,), batch or 32, 2048)
    return work


def simulation(ctx: Context, job, x: SimulationInputs) -> Work:
    """A CPU-only simulation: its units of work at the table's rate."""
    return Work(cpu_seconds=x.units / float(x.units_per_s))


#: Family -> work model. The experiments' plan modules map their rules to these names.
FAMILIES: dict[str, Callable] = {"sft": sft, "reward": reward, "generate": sample, "evaluate": sample,
                                 "align": align, "lm_eval": lm_eval, "simulation": simulation}
#: The family of a rule no experiment lists: data, tokenizers, preferences from scores, selections, reports
#: (CPU jobs dominated by their start-up; calibration pools them).
OVERHEAD = "cpu"


@lru_cache(maxsize=None)
def rules() -> dict[str, tuple[str, Callable]]:
    """``{rule: (family, inputs)}`` over every experiment's ``plan`` module (:mod:`.inputs`)."""
    found = {}
    for experiment, module in experiment_modules("plan").items():
        for rule, (family, inputs) in module.RULES.items():
            if family not in FAMILIES:
                raise ValueError(f"workflow_scripts/{experiment}/plan.py: rule {rule} has an unknown family "
                                 f"{family!r} (one of {', '.join(FAMILIES)}).")
            found[rule] = (family, inputs)
    return found


def family_of(rule: str) -> str:
    return rules().get(rule, (OVERHEAD,))[0]


def work_of(ctx: Context, job) -> Work:
    """The job's work: its family's model on what its experiment says about it (overhead only if unlisted)."""
    entry = rules().get(job.rule)
    if entry is None:
        return Work()
    family, inputs = entry
    return FAMILIES[family](ctx, job, inputs(ctx, job))
