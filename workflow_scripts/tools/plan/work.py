"""Work models: what one job of each rule processes, in tokens per phase, computed from the config.

One small function per rule family (SFT, reward model, generation + scoring of pairs / completions,
alignment, evaluation, lm-eval, the CPU-only rules), so a change to what a rule does has one obvious
place to be reflected here. A job's work is a list of :class:`Phase` (model, phase, tokens) plus what
the memory model needs (:class:`TrainMemory` / :class:`InferMemory`). Token counts follow the code paths
(workflow_scripts/core/train/align.py: iterations, statistics pass, reference once per pair, online
sampling); lengths come from :mod:`.sizes` and are estimates, said so in every plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional

from workflow_scripts.core.losses.registry import get_variant
from workflow_scripts.tools.plan import sizes
from workflow_scripts.tools.plan.shapes import Shape, shape_of

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
    cpu_units: float = 0.0                         # CPU-only work (radius coverage: Monte-Carlo samples)
    training: bool = False                         # data-parallel training (multi-GPU efficiency)
    micro_batches: float = 0.0                     # forward(+backward) micro-batches over all ranks (per-step cost)
    notes: list = field(default_factory=list)      # what the model could not cost (shown in the plan)

    @property
    def tokens(self) -> float:
        return sum(p.tokens for p in self.phases)


@dataclass
class Context:
    """What every work function reads: the config the DAG was planned with and the table's statistics."""

    config: dict
    table: dict              # the throughput file's data (datasets, lm_eval_tasks, radius_coverage)

    def splits(self, experiment: str) -> sizes.Splits:
        cache = self.__dict__.setdefault("_splits", {})
        if experiment not in cache:
            cache[experiment] = sizes.splits(experiment, self.config, self.table)
        return cache[experiment]

    # ---------------------------------------------------------------- models
    def _vocab(self, tokenizer_is_trained: bool, block: dict) -> Optional[int]:
        return block["tokenizer_vocab_size"] if tokenizer_is_trained else None

    @cached_property
    def emotion_policy(self) -> Shape:
        cfg = self.config["emotion"]
        return shape_of(cfg["policy_model"], self._vocab(cfg["tokenizer"] == "train-bpe", cfg), "emotion policy")

    @cached_property
    def emotion_reward(self) -> Shape:
        cfg = self.config["emotion"]
        return shape_of(cfg["reward_model"], self._vocab(cfg["tokenizer"] == "train-bpe", cfg), "emotion reward model")

    @cached_property
    def armorm_policy(self) -> Shape:
        cfg = self.config["armorm"]
        return shape_of(cfg["policy_model"], cfg["tokenizer_vocab_size"], "armorm policy")

    @cached_property
    def armorm_reward(self) -> Shape:
        cfg = self.config["armorm"]
        return shape_of(cfg["reward_model"], self.armorm_policy.vocab, "armorm reward model")

    def hh_policy(self, name: str) -> Shape:
        cfg = self.config["hh"]
        spec = next(p["model"] for p in cfg["policies"] if p["name"] == name)
        return shape_of(spec, cfg["tokenizer_vocab_size"], f"hh policy {name}")

    @cached_property
    def hh_rewards(self) -> tuple:
        rm = self.config["hh"]["reward_models"]
        if rm["source"] == "pretrained":
            return tuple(shape_of(rm["pretrained"][o], name=o) for o in rm["subsets"])
        vocab = self.config["hh"]["tokenizer_vocab_size"] if rm["tokenizer"] == "train-bpe" else None
        return tuple(shape_of(rm["model"], vocab, f"hh reward model {o}") for o in rm["subsets"])

    def scale_of(self, experiment: str) -> float:
        """Generated / trained response length as a fraction of max_new_tokens."""
        return self.splits(experiment).response_fraction


# ====================================================================== families
def _train_memory(shape, section, per_item, length, logit_tokens, knobs, **kw) -> TrainMemory:
    return TrainMemory(shape, section["micro_batch"], per_item, length, logit_tokens,
                       bool(section.get("gradient_checkpointing", False)), kw.pop("eager", False),
                       kw.pop("double", False), knobs=knobs, **kw)


def _recompute(section: dict, shape: Shape, trained_tokens: float) -> list:
    """Gradient checkpointing recomputes each layer's forward in the backward: one more forward of every
    trained token (the Wasserstein double backward differentiates through that recomputed forward)."""
    return [Phase(shape, "forward", trained_tokens)] if section.get("gradient_checkpointing") else []


def sft(ctx: Context, job) -> Work:
    """Causal-LM fine-tuning: epochs x texts x length of training tokens; one validation forward."""
    experiment = job.rule.split("_")[0]
    cfg = ctx.config[experiment]["sft"]
    split = ctx.splits(experiment)
    shape = ctx.emotion_policy if experiment == "emotion" else ctx.hh_policy(job.wildcards["policy"])
    length = min(cfg["max_length"], split.text_tokens + 1)
    work = Work(training=True, loads=[shape])
    work.phases = [Phase(shape, "train_step", cfg["epochs"] * split.train * length),
                   Phase(shape, "forward", split.validation * length)]
    work.phases += _recompute(cfg, shape, cfg["epochs"] * split.train * length)
    work.micro_batches = (cfg["epochs"] * split.train + split.validation) / cfg["micro_batch"]
    work.memory = _train_memory(shape, cfg, 1, cfg["max_length"], cfg["max_length"], f"{experiment}.sft")
    return work


def reward_model(ctx: Context, job) -> Work:
    """Reward-model training: emotion's concatenated multi-label texts, HH's Bradley-Terry pairs (2 sequences)."""
    if job.rule == "emotion_reward_model":
        cfg = ctx.config["emotion"]["reward"]
        split, shape, knobs = ctx.splits("emotion"), ctx.emotion_reward, "emotion.reward"
        concat = 1.0 if cfg.get("p_single") == 1 else (1 + cfg["max_concat"]) / 2
        length = min(cfg["max_length"], split.text_tokens * concat)
        examples, per_item = split.train, 1
    else:
        rm = ctx.config["hh"]["reward_models"]
        cfg, split, knobs = rm["train"], ctx.splits("hh"), "hh.reward_models.train"
        shape = ctx.hh_rewards[list(rm["subsets"]).index(job.wildcards["objective"])]
        length = min(cfg["max_length"], split.text_tokens)
        examples, per_item = 2 * split.train / len(rm["subsets"]), 2
    work = Work(training=True, loads=[shape])
    work.phases = [Phase(shape, "train_step", cfg["epochs"] * examples * length)]
    work.phases += _recompute(cfg, shape, cfg["epochs"] * examples * length)
    work.micro_batches = cfg["epochs"] * examples / (per_item * cfg["micro_batch"])
    work.memory = _train_memory(shape, cfg, per_item, cfg["max_length"], 1, knobs)
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


def pairs(ctx: Context, job) -> Work:
    """Preference data: sampled completions (generation) and / or their reward-model scores (scoring)."""
    rule = job.rule
    if rule == "emotion_pairs":
        cfg, split = ctx.config["emotion"]["pairs"], ctx.splits("emotion")
        n = 2 * (cfg["n_prompts"] or split.train)
        new = cfg["max_new_tokens"]
        scored = cfg["prompt_tokens"] + split.response_fraction * new
        work = Work(loads=[ctx.emotion_policy, ctx.emotion_reward])
        work.phases = _generate(ctx, ctx.emotion_policy, n, cfg["prompt_tokens"], new, 128, 2) + [
            Phase(ctx.emotion_reward, "scoring", n * scored)]
        work.memory = InferMemory((ctx.emotion_policy, ctx.emotion_reward), 128, cfg["prompt_tokens"] + new)
        return work
    cfg_all = ctx.config["armorm" if rule.startswith("armorm") else "hh"]
    split = ctx.splits("armorm" if rule.startswith("armorm") else "hh")
    c = cfg_all["completions"]
    n = split.train * c["n"]
    new = c["max_new_tokens"]
    scored = split.prompt_tokens + split.response_fraction * new
    if rule == "armorm_completions":
        work = Work(loads=[ctx.armorm_policy])
        work.phases = _generate(ctx, ctx.armorm_policy, n, split.prompt_tokens, new, c["batch_size"] * c["n"], c["n"])
        work.memory = InferMemory((ctx.armorm_policy,), c["batch_size"] * c["n"], split.prompt_tokens + new)
    elif rule == "armorm_scores":
        s = cfg_all["scoring"]
        work = Work(loads=[ctx.armorm_reward])
        work.phases = [Phase(ctx.armorm_reward, "scoring", n * min(s["max_length"], scored))]
        work.memory = InferMemory((ctx.armorm_reward,), s["batch_size"], s["max_length"])
    else:                                                     # hh_completions: generation + both reward models
        policy = ctx.hh_policy(job.wildcards["policy"])
        work = Work(loads=[policy, *ctx.hh_rewards])
        work.phases = _generate(ctx, policy, n, split.prompt_tokens, new, c["batch_size"] * c["n"], c["n"]) + [
            Phase(rm, "scoring", n * scored) for rm in ctx.hh_rewards]
        work.memory = InferMemory((policy, *ctx.hh_rewards), c["batch_size"] * c["n"], split.prompt_tokens + new)
    return work


def _align_setup(ctx: Context, job):
    """(experiment, align section, losses, policy shape, split, pairs (online: prompts), config path of the knobs)."""
    rule, wc = job.rule, job.wildcards
    if rule == "emotion_align":
        block = ctx.config["emotion"]
        split = ctx.splits("emotion")
        return "emotion", block["align"], block["losses"], ctx.emotion_policy, split, \
            block["pairs"]["n_prompts"] or split.train, "emotion.align"
    if rule == "emotion_align_online":
        block = ctx.config["emotion"]
        split = ctx.splits("emotion")
        return "emotion", block["online"]["align"], block["losses"], ctx.emotion_policy, split, \
            block["pairs"]["n_prompts"] or split.train, "emotion.online.align"
    if rule == "armorm_align":
        block = ctx.config["armorm"]
        return "armorm", block["align"], block["losses"], ctx.armorm_policy, ctx.splits("armorm"), \
            ctx.splits("armorm").train, "armorm.align"
    if rule == "armorm_align_online":
        block = ctx.config["armorm"]
        return "armorm", block["online"]["align"], block["losses"], ctx.armorm_policy, ctx.splits("armorm"), \
            ctx.splits("armorm").train, "armorm.online.align"
    block = ctx.config["hh"]
    split = ctx.splits("hh")
    scale = 0 if wc["scale"] == "all" else int(wc["scale"])
    return "hh", block["align"], block["losses"], ctx.hh_policy(wc["policy"]), split, scale or split.train, "hh.align"


def align(ctx: Context, job) -> Work:
    """One alignment job (workflow_scripts/core/train/align.py), per iteration batch:

    - policy forward + backward on both completions of every pair, ``updates_per_iteration`` times;
    - a statistics pass (forward; Wasserstein ``sqrt_mean``: + the input gradient, x3) before each step for
      the non-separable sets (KL, chi2, sqrt_mean Wasserstein) when a rank's share is several micro-batches;
    - reference log-probs: offline once per pair (first use); online once per iteration batch (a frozen copy);
    - REBEL's ``iterate`` anchor: one more forward per iteration batch;
    - online: two completions per prompt sampled from pi_t (generation) and scored (the reward model).
    """
    experiment, cfg, losses, policy, split, n_pairs, knobs = _align_setup(ctx, job)
    variant = get_variant(job.wildcards["variant"])
    gpus = max(1, job.devices)
    iteration_batch = cfg["iteration_batch"] or cfg["global_batch"]
    online = cfg["regime"] == "online"
    if online or cfg["iterations"] > 0:
        iterations = cfg["iterations"]
    else:
        iterations = max(1, round((n_pairs // iteration_batch) * cfg["epochs"]))
    trained_pairs = iterations * iteration_batch * cfg["updates_per_iteration"]
    if online:
        prompt = split.prompt_tokens
        response = split.response_fraction * cfg["max_new_tokens"]
    elif experiment == "emotion":
        prompt = ctx.config["emotion"]["pairs"]["prompt_tokens"]
        response = split.response_fraction * ctx.config["emotion"]["pairs"]["max_new_tokens"]
    else:
        prompt = split.prompt_tokens
        response = split.response_fraction * ctx.config[experiment]["completions"]["max_new_tokens"]
    length = min(cfg["max_length"], prompt + response)
    seq_tokens = 2 * length                                   # both completions of a pair
    family = "wasserstein" if variant.ambiguity == "wasserstein" else "base"
    work = Work(training=True, loads=[policy])
    work.phases.append(Phase(policy, "train_step", trained_pairs * seq_tokens, family))
    work.phases += _recompute(cfg, policy, trained_pairs * seq_tokens)
    micro_per_rank = cfg["global_batch"] / (cfg["micro_batch"] * gpus)
    separable = variant.ambiguity == "none" or (family == "wasserstein" and losses["wasserstein_form"] == "pointwise")
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
        scorer = ctx.emotion_reward if experiment == "emotion" else ctx.armorm_reward
        sampled = 2 * iterations * iteration_batch
        work.phases += _generate(ctx, policy, sampled, prompt, cfg["max_new_tokens"],
                                 max(1, 2 * iteration_batch // gpus), 2, backend="hf")
        work.phases.append(Phase(scorer, "scoring", sampled * (prompt + response)))
        work.loads.append(scorer)
        resident = (policy, scorer)                           # the frozen reference and the scorer, on every rank
    work.memory = _train_memory(policy, cfg, 2, cfg["max_length"],
                                min(cfg["max_length"], cfg["max_new_tokens"] if online else cfg["max_length"]),
                                knobs, eager=family == "wasserstein", double=family == "wasserstein",
                                resident=resident)
    return work


def evaluate(ctx: Context, job) -> Work:
    """Samples on the validation and the test prompts (generation), each scored by the experiment's reward
    model(s) (scoring); one job for both splits."""
    experiment = job.rule.split("_")[0]
    cfg = ctx.config[experiment]["evaluate"]
    split = ctx.splits(experiment)
    cap = cfg["n_prompts"]
    prompts = sum(min(cap, n) if cap else n for n in (split.validation, split.test))
    n = prompts * cfg["samples_per_prompt"]
    new = cfg["max_new_tokens"]
    if experiment == "emotion":
        policy, rewards, batch = ctx.emotion_policy, (ctx.emotion_reward,), 64
        prompt = ctx.config["emotion"]["pairs"]["prompt_tokens"]
    elif experiment == "armorm":
        policy, rewards = ctx.armorm_policy, (ctx.armorm_reward,)
        batch, prompt = cfg["batch_size"] * cfg["samples_per_prompt"], split.prompt_tokens
    else:
        policy, rewards = ctx.hh_policy(job.wildcards["policy"]), ctx.hh_rewards
        batch, prompt = cfg["batch_size"] * cfg["samples_per_prompt"], split.prompt_tokens
    scored = prompt + split.response_fraction * new
    work = Work(loads=[policy, *rewards])
    work.phases = _generate(ctx, policy, n, prompt, new, batch, cfg["samples_per_prompt"]) + [
        Phase(rm, "scoring", n * scored) for rm in rewards]
    work.memory = InferMemory((policy, *rewards), batch, prompt + new)
    return work


def lm_eval(ctx: Context, job) -> Work:
    """One lm-evaluation-harness run on one policy: the tasks' contexts (forward; log-likelihoods) and the
    generative tasks' prompts and answers (prefill + generation)."""
    cfg = ctx.config["lm_eval"]
    tasks = ctx.table["lm_eval_tasks"]
    names = ["demo"] if cfg["demo_task"] else [t for t in cfg["tasks"] if t not in (cfg.get("skip_tasks") or [])]
    policy = ctx.armorm_policy if job.rule.startswith("lm_eval_armorm") else ctx.hh_policy(job.wildcards["policy"])
    work = Work(loads=[policy])
    batch = cfg["batch_size"] if isinstance(cfg["batch_size"], int) else None
    for name in names:
        t = tasks.get(name)
        if t is None:
            work.notes.append(f"lm-eval task {name} has no statistics in the throughput table: not costed")
            continue
        limit = cfg.get("limit")                                # lm-eval: < 1 a fraction of the documents
        docs = t["docs"] if not limit else min(t["docs"], limit if limit >= 1 else limit * t["docs"])
        if t["generated_tokens"]:
            # lm-eval sizes its own batches (batch_size auto: the largest that fits, at most 64)
            auto = None if batch else AutoBatch(64, 0.9, t["context_tokens"] + t["generated_tokens"])
            work.phases += _generate(ctx, policy, docs, t["context_tokens"], t["generated_tokens"], batch or 64,
                                     backend=cfg.get("backend", "hf"), auto=auto)
        else:   # log-likelihood requests: what the harness forwards per document (k choices unless shared)
            work.phases.append(Phase(policy, "forward", docs * t.get("forward_tokens_per_doc", t["context_tokens"])))
    work.memory = InferMemory((policy,), batch or 32, 2048)
    return work


def radius_coverage(ctx: Context, job) -> Work:
    """CPU only: Monte-Carlo samples = reps x sum(n_grid) x schedules (the kappas and the non-robust one)."""
    cfg = ctx.config["radius_coverage"]
    return Work(cpu_units=cfg["reps"] * sum(cfg["n_grid"]) * (len(cfg["kappas"]) + 1))


def overhead_only(ctx: Context, job) -> Work:
    """Data preparation, tokenizers, preferences from scores, selections, reports: start-up dominated."""
    return Work()


#: Rule -> work model. Rules not listed are overhead-only (see :func:`work_of`).
RULES: dict[str, Callable] = {
    "emotion_sft": sft, "hh_sft": sft,
    "emotion_reward_model": reward_model, "hh_reward_model": reward_model,
    "emotion_pairs": pairs, "armorm_completions": pairs, "armorm_scores": pairs, "hh_completions": pairs,
    "emotion_align": align, "emotion_align_online": align, "armorm_align": align, "armorm_align_online": align,
    "hh_align": align,
    "emotion_evaluate": evaluate, "emotion_evaluate_sft": evaluate, "emotion_evaluate_online": evaluate,
    "armorm_evaluate": evaluate,
    "armorm_evaluate_base": evaluate, "armorm_evaluate_online": evaluate, "hh_evaluate": evaluate,
    "hh_evaluate_sft": evaluate,
    "lm_eval_armorm": lm_eval, "lm_eval_armorm_base": lm_eval, "lm_eval_hh": lm_eval, "lm_eval_hh_sft": lm_eval,
    "radius_coverage_simulate": radius_coverage,
}
#: Rule -> family (calibration pools a family when a rule has no pilot jobs; tables group by it).
FAMILY = {rule: fn.__name__ for rule, fn in RULES.items()}


def family_of(rule: str) -> str:
    return FAMILY.get(rule, "cpu")


def work_of(ctx: Context, job) -> Work:
    return RULES.get(job.rule, overhead_only)(ctx, job)
