"""The OpenLLM Leaderboard v2 normalisation of lm-evaluation-harness results, in one tested function.

As the leaderboard parses results (``huggingface/leaderboards``,
``docs/source/en/open_llm_leaderboard/normalization.md``; the normalisation happens there, not in
lm-eval): a multiple-choice score with k choices becomes ``max(0, (raw - 1/k) / (1 - 1/k)) * 100``.

- **BBH**: each of the 24 ``leaderboard_bbh_*`` subtasks normalised with its own k (``acc_norm``), then
  the unweighted mean;
- **MuSR**: the same over its three subtasks (k = 2, 5, 3);
- **GPQA**: the group's ``acc_norm`` with k = 4;
- **MMLU-Pro**: ``acc`` with k = 10 (the leaderboard uses 10 even where an item has fewer options);
- **MATH lvl 5**: ``exact_match`` of ``leaderboard_math_hard`` x 100, no baseline subtracted;
- **IFEval**: the mean of ``inst_level_strict_acc`` and ``prompt_level_strict_acc``, x 100, no baseline.

The average is the mean of the six, named ``Average``; where a benchmark did not run (GPQA is gated) the mean of
the others is named by what it leaves out (``Average without GPQA``), never ``Average``: a mean over five is
not the leaderboard's number. Raw values are kept next to the normalised ones.
"""
from __future__ import annotations

import math
from typing import Mapping

#: Answer choices of the 24 BBH subtasks (``len(doc_to_choice)`` of lm-eval's leaderboard_bbh YAMLs, the
#: dict of the leaderboard's normalisation notebook).
BBH_CHOICES = {
    "boolean_expressions": 2, "causal_judgement": 2, "date_understanding": 6, "disambiguation_qa": 3,
    "formal_fallacies": 2, "geometric_shapes": 11, "hyperbaton": 2, "logical_deduction_five_objects": 5,
    "logical_deduction_seven_objects": 7, "logical_deduction_three_objects": 3, "movie_recommendation": 6,
    "navigate": 2, "object_counting": 19, "penguins_in_a_table": 5, "reasoning_about_colored_objects": 18,
    "ruin_names": 6, "salient_translation_error_detection": 6, "snarks": 2, "sports_understanding": 2,
    "temporal_sequences": 4, "tracking_shuffled_objects_five_objects": 5, "tracking_shuffled_objects_seven_objects": 7,
    "tracking_shuffled_objects_three_objects": 3, "web_of_lies": 2,
}
MUSR_CHOICES = {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}
GPQA_CHOICES = 4
MMLU_PRO_CHOICES = 10
BENCHMARKS = ("IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO")


def normalize_within_range(raw: float, k: int) -> float:
    """``max(0, (raw - 1/k) / (1 - 1/k)) * 100``: 0 at chance, 100 at a perfect score."""
    baseline = 1.0 / k
    return max(0.0, (raw - baseline) / (1.0 - baseline)) * 100.0


def _value(results: Mapping[str, Mapping], task: str, metric: str) -> float:
    entry = results.get(task)
    if entry is None or f"{metric},none" not in entry:
        raise KeyError(f"lm-eval results lack {task} / {metric},none")
    return float(entry[f"{metric},none"])


def leaderboard_scores(results: Mapping[str, Mapping]) -> dict[str, float]:
    """The six normalised benchmark scores (0-100), their average, and the raw values (keys ``raw/...``).

    ``results`` is the ``"results"`` mapping of an lm-eval results file. Benchmarks whose tasks are
    absent (e.g. GPQA dropped because it is gated) are NaN, and the average of the others is keyed
    :func:`average_name` of the missing ones (``Average`` only when all six ran).
    """
    out: dict[str, float] = {}

    def attempt(name, fn):
        try:
            out[name] = fn()
        except KeyError:
            out[name] = math.nan

    def per_subtask(prefix, choices, metric):
        normalised = []
        for task, k in choices.items():
            raw = _value(results, f"{prefix}_{task}", metric)
            out[f"raw/{prefix}_{task}"] = raw
            normalised.append(normalize_within_range(raw, k))
        return sum(normalised) / len(normalised)

    def ifeval():
        inst = _value(results, "leaderboard_ifeval", "inst_level_strict_acc")
        prompt = _value(results, "leaderboard_ifeval", "prompt_level_strict_acc")
        out["raw/ifeval_inst_level_strict_acc"], out["raw/ifeval_prompt_level_strict_acc"] = inst, prompt
        return (inst + prompt) / 2 * 100.0

    def single(task, metric, k=None):
        raw = _value(results, task, metric)
        out[f"raw/{task}"] = raw
        return raw * 100.0 if k is None else normalize_within_range(raw, k)

    attempt("IFEval", ifeval)
    attempt("BBH", lambda: per_subtask("leaderboard_bbh", BBH_CHOICES, "acc_norm"))
    attempt("MATH Lvl 5", lambda: single("leaderboard_math_hard", "exact_match"))
    attempt("GPQA", lambda: single("leaderboard_gpqa", "acc_norm", GPQA_CHOICES))
    attempt("MuSR", lambda: per_subtask("leaderboard_musr", MUSR_CHOICES, "acc_norm"))
    attempt("MMLU-PRO", lambda: single("leaderboard_mmlu_pro", "acc", MMLU_PRO_CHOICES))
    present = [out[b] for b in BENCHMARKS if not math.isnan(out[b])]
    if present:
        out[average_name([b for b in BENCHMARKS if math.isnan(out[b])])] = sum(present) / len(present)
    return out


def average_name(missing) -> str:
    """What the mean of the benchmarks that ran is called: ``Average`` over all six, else by what it lacks."""
    return "Average" if not missing else "Average without " + ", ".join(missing)


def task_scores(results: Mapping[str, Mapping]) -> dict[str, float]:
    """Every task's numeric metrics as ``task/metric`` (non-leaderboard tasks: the table shows these raw)."""
    out = {}
    for task, entry in results.items():
        for key, value in entry.items():
            metric, comma, filt = key.partition(",")  # metrics are "metric,filter"; other keys are bookkeeping
            if not comma or "stderr" in metric or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            out[f"{task}/{metric}" + (f"[{filt}]" if filt and filt != "none" else "")] = float(value)
    return out
