"""What an experiment tells the planner about its jobs: one small dataclass per rule family.

The planner prices a job with its family's work model (:mod:`.work`: SFT, reward model, generation and
scoring, alignment, evaluation, lm-eval, CPU work), which names no experiment. What differs between
experiments (which model, which config section, how many examples, how long they are) comes from the
experiment itself: ``workflow_scripts/<experiment>/plan.py`` (found by ``core.experiments``) declares
``RULES = {rule name: (family, inputs)}``, ``inputs(ctx, job)`` returning the family's dataclass below.
Rules no experiment lists are start-up overhead only (data, tokenizers, selections, reports: family ``cpu``). Sizes and
lengths are estimates from the throughput table's dataset statistics (:mod:`.sizes`), said so in every plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from workflow_scripts.tools.plan.shapes import Shape
from workflow_scripts.tools.plan.sizes import Splits


@dataclass
class Context:
    """What every work model reads: the config the DAG was planned with and the table's statistics
    (the throughput file's data: datasets, lm_eval_tasks, ...)."""

    config: dict
    table: dict

    def memo(self, key: str, compute: Callable):
        """``compute()`` once per plan (split sizes are read by every job of an experiment)."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


@dataclass(frozen=True)
class SftInputs:
    """Causal-LM fine-tuning on a text corpus (family ``sft``)."""

    model: Shape
    section: dict          # the config's train section (epochs, micro_batch, max_length, gradient_checkpointing)
    knobs: str             # where that section is in the config (the memory advice names it)
    train: int             # training texts
    validation: int        # validation texts (one forward each)
    text_tokens: float     # mean text length


@dataclass(frozen=True)
class RewardInputs:
    """Reward-model training (family ``reward``): ``sequences`` of ``length`` tokens per epoch, ``per_item``
    sequences per micro-batch item (2: a Bradley-Terry pair)."""

    model: Shape
    section: dict
    knobs: str
    sequences: float
    length: float
    per_item: int = 1


@dataclass(frozen=True)
class SamplingInputs:
    """Sampling from a policy and / or scoring with reward models (families ``generate`` and ``evaluate``).

    ``sequences`` completions of ``new_tokens`` after ``prompt_tokens`` (``per_prompt`` per prompt), sampled
    ``batch`` sequences per step on a CPU; each scored by every scorer over the prompt and the response
    (``response_fraction`` x ``new_tokens``), at most ``score_max_length`` tokens when set. Without a policy
    the job scores given texts only (cut at ``score_max_length``), ``batch`` texts per forward."""

    policy: Optional[Shape]
    scorers: tuple
    sequences: float
    prompt_tokens: float
    new_tokens: int
    response_fraction: float
    batch: int
    per_prompt: int = 1
    score_max_length: Optional[int] = None

    @property
    def scored_tokens(self) -> float:
        """Tokens one scorer reads per sequence."""
        scored = self.prompt_tokens + self.response_fraction * self.new_tokens
        return scored if self.score_max_length is None else min(self.score_max_length, scored)

    @property
    def length(self) -> float:
        """The longest sequence a batch holds."""
        return self.prompt_tokens + self.new_tokens if self.policy is not None else self.score_max_length


def evaluation(section: dict, split: Splits, policy: Shape, scorers: tuple, prompt_tokens: float,
               batch: int) -> SamplingInputs:
    """What the core ``evaluate`` template does with an experiment's ``evaluate`` section: ``samples_per_prompt``
    completions on the validation and on the test prompts (at most ``n_prompts`` of each), all scored."""
    cap = section["n_prompts"]
    prompts = sum(min(cap, n) if cap else n for n in (split.validation, split.test))
    return SamplingInputs(policy, scorers, prompts * section["samples_per_prompt"], prompt_tokens,
                          section["max_new_tokens"], split.response_fraction, batch,
                          per_prompt=section["samples_per_prompt"])


@dataclass(frozen=True)
class AlignInputs:
    """One alignment job (family ``align``; the variant and the GPU count come from the job)."""

    policy: Shape
    section: dict          # the align section (regime, iterations, batches, max_length, anchor, ...)
    losses: dict           # the experiment's losses block (wasserstein_form)
    knobs: str
    pairs: int             # training pairs (online: prompts)
    prompt_tokens: float
    new_tokens: int        # max_new_tokens of the offline pairs' completions (online: the section's own)
    response_fraction: float
    scorer: Optional[Shape] = None   # the reward model that scores pi_t's samples in the online regime


@dataclass(frozen=True)
class LmEvalInputs:
    """One lm-evaluation-harness run on one policy (family ``lm_eval``)."""

    policy: Shape
    tasks: tuple           # (task name, its statistics or None): docs, context / generated / forward tokens
    limit: Optional[float]  # documents per task (< 1: a fraction)
    batch: Optional[int]   # None: the harness sizes its batches
    backend: str


@dataclass(frozen=True)
class SimulationInputs:
    """A CPU-only simulation (family ``simulation``): ``units`` of work at ``units_per_s`` for one job."""

    units: float
    units_per_s: float
