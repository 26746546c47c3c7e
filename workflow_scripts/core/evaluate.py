"""One policy's evaluation on held-out prompts, the same for every experiment (SPEC 5.1-5.3).

Every split's completions are sampled first, then the sampler is closed, and only then the reward
model loads: the policy's memory goes back before the scorer (an 8B model at the paper's scale) takes
its own, and each model loads once for every split. Each split's scored completions are then reduced
to a table (the experiment's aggregation: mean r*(alpha) per mixture, mean per objective, ...), written
as that split's CSV with the run's labels first; the scored completions of every split go to one
parquet. Validation tables select radii and hyperparameters, test tables are reported.

An experiment's ``evaluate`` module is an adapter: its flags, its prompts per split, how it samples
them, its scorer and its aggregation; :func:`evaluate_policy` does the rest.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, TypeVar

import pandas as pd

from workflow_scripts.core.io import write_frame_atomic
from workflow_scripts.core.scoring import Scorer, check_scores

logger = logging.getLogger("evaluate")

Prompts = TypeVar("Prompts")

#: Token ids stay out of the completions parquet: it records texts and scores.
TOKEN_COLUMNS = ("prompt_ids", "response_ids")


def evaluate_policy(prompts: Mapping[str, Prompts], outputs: Mapping[str, str], *,
                    open_sampler: Callable[[], object], sample: Callable[[object, str, Prompts], pd.DataFrame],
                    open_scorer: Callable[[], Scorer], aggregate: Callable[[str, pd.DataFrame], pd.DataFrame],
                    labels: Mapping[str, object], completions_out: str | None = None,
                    labelled_completions: bool = False, response: str = "response") -> None:
    """Sample, score and aggregate every split of ``prompts``; write ``outputs[split]`` and ``completions_out``.

    ``sample(sampler, split, prompts[split])`` returns the split's completions, one row each, with the
    texts the scorer reads in the columns ``prompt`` and ``response``; ``aggregate(split, scored)`` reduces
    them, scores appended as columns, to the split's table. The table's columns are preceded by
    ``labels`` (in their order) and ``split``. The parquet holds every split's scored completions without
    token ids, with a ``split`` column at the end unless ``sample`` put one in (and the labels after it
    with ``labelled_completions``).
    """
    if set(prompts) != set(outputs):
        raise ValueError(f"prompt splits {sorted(prompts)} differ from output splits {sorted(outputs)}.")
    started = time.time()
    sampler = open_sampler()
    sampled = {split: sample(sampler, split, split_prompts) for split, split_prompts in prompts.items()}
    sampler.close()                        # the policy's memory goes back before the reward model loads
    generated = time.time()
    scorer = open_scorer()
    completions = []
    for split, frame in sampled.items():
        scores = scorer.score(frame["prompt"].tolist(), frame[response].tolist(), desc=f"{split} scoring")
        scored = pd.concat([frame.reset_index(drop=True), check_scores(scores, scorer, len(frame))], axis=1)
        table = aggregate(split, scored)
        for column, value in reversed([*labels.items(), ("split", split)]):
            table.insert(0, column, value)
        write_frame_atomic(table, outputs[split])
        rows = scored.drop(columns=[c for c in TOKEN_COLUMNS if c in scored])
        if "split" not in rows:
            rows = rows.assign(split=split)
        completions.append(rows.assign(**labels) if labelled_completions else rows)
    if completions_out:
        write_frame_atomic(pd.concat(completions, ignore_index=True), completions_out)
    logger.info("%.1fs sampling, %.1fs scoring", generated - started, time.time() - generated)
