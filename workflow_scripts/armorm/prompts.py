"""Prompts of the ArmoRM experiment (SPEC 5.2): HelpSteer2, a local copy, or generated (mini).

- ``--source nvidia/HelpSteer2`` (paper): the hub dataset; its ``train`` split is the training
  prompt set and ``validation`` the test set. HelpSteer2 has two rated responses per prompt, so
  every prompt appears twice: the first occurrence of each prompt is kept (~10.2k / ~519);
- ``--source <directory>``: the same schema locally: ``train`` and ``test`` (or ``validation``)
  files (.jsonl / .csv / .parquet) with a ``prompt`` column; duplicates dropped the same way;
- ``--source generated`` (mini): instruction-style prompts made from templates, seeded.

A **validation** set of ``--n-validation`` prompts is held out of the training prompts (seeded):
radii and base hyperparameters are selected on it, never on the test prompts that are reported.

Writes ``train.parquet``, ``validation.parquet`` and ``test.parquet`` with columns ``prompt_idx``
(0..n-1 within the file) and ``prompt``.

    python -m workflow_scripts.armorm.prompts --source nvidia/HelpSteer2 --n-validation 500 --out-dir prompts/
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.core.io import setup_logging, write_frame_atomic
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_prompts")

FORMATS = ("jsonl", "csv", "parquet")

_TEMPLATES = (
    "Write a short poem about {topic}.",
    "Explain how {topic} works to a ten year old.",
    "Give me three practical tips for {activity}.",
    "Summarize the main ideas of {topic} in two sentences.",
    "What are the pros and cons of {activity}?",
    "Write a polite email asking a colleague for help with {activity}.",
    "Is it true that {topic} is important for {activity}? Answer honestly.",
    "Describe a common mistake people make when {activity_ing}.",
    "List the steps needed for {activity}, in order.",
    "Correct the grammar in this sentence: 'me and him goes to {place} yesterday'.",
    "Write a python function that counts the words in a sentence about {topic}.",
    "Compare {topic} and {topic2} in a short paragraph.",
)
_TOPICS = ("photosynthesis", "the water cycle", "compound interest", "black holes", "the immune system",
           "machine learning", "volcanoes", "the printing press", "climate change", "bread baking",
           "electric cars", "the stock market", "honey bees", "sleep", "the internet", "recycling")
_ACTIVITIES = (("learning a new language", "learning a new language"), ("saving money", "saving money"),
               ("running a marathon", "training for a marathon"), ("planning a trip", "planning a trip"),
               ("writing a resume", "writing a resume"), ("cooking for a party", "cooking for a party"),
               ("studying for exams", "studying for exams"), ("growing tomatoes", "growing tomatoes"))
_PLACES = ("the market", "the library", "school", "the park", "the station")


def context_passage(rng: np.random.Generator, words: int) -> str:
    """A pseudo-document of ``words`` words (topic and activity vocabulary) that a prompt asks about: it
    gives generated prompts the paper's lengths (HelpSteer2 prompts run to ~1k tokens)."""
    vocabulary = [w for phrase in _TOPICS + tuple(a for a, _ in _ACTIVITIES) + _PLACES for w in phrase.split()]
    return " ".join(vocabulary[i] for i in rng.integers(len(vocabulary), size=words))


def generate_prompts(n: int, seed: int, context_words: int = 0) -> list[str]:
    """``n`` distinct instruction-style prompts (mini preset), deterministic given ``seed``; with
    ``context_words``, each preceded by notes of that many words (paper-shapes preset: long prompts)."""
    rng = np.random.default_rng(seed)
    prompts: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(prompts) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"cannot generate {n} distinct prompts from the templates; ask for fewer.")
        template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        t1, t2 = rng.choice(len(_TOPICS), size=2, replace=False)
        activity, activity_ing = _ACTIVITIES[rng.integers(len(_ACTIVITIES))]
        text = template.format(topic=_TOPICS[t1], topic2=_TOPICS[t2], activity=activity, activity_ing=activity_ing,
                               place=_PLACES[rng.integers(len(_PLACES))])
        if text not in seen:
            seen.add(text)
            prompts.append(text)
    if context_words:
        prompts = [f"Read these notes:\n{context_passage(rng, context_words)}\n\n{p}" for p in prompts]
    return prompts


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        from workflow_scripts.core.io import read_jsonl

        return read_jsonl(path)           # file:line on a malformed line
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[])
    return pd.read_parquet(path)


def _local_split(directory: Path, names: tuple[str, ...]) -> pd.DataFrame:
    for name in names:
        found = [directory / f"{name}.{fmt}" for fmt in FORMATS if (directory / f"{name}.{fmt}").is_file()]
        if len(found) > 1:
            raise ValueError(f"{directory}: several files for split '{name}' ({', '.join(p.name for p in found)}).")
        if found:
            return _read(found[0])
    raise ValueError(f"{directory}: no file for split {' or '.join(names)} (.jsonl/.csv/.parquet).")


def unique_prompts(df: pd.DataFrame, where: str) -> list[str]:
    """The ``prompt`` column, validated, each prompt kept once (first occurrence, order preserved)."""
    if "prompt" not in df.columns:
        raise ValueError(f"{where}: missing column 'prompt' (found {list(df.columns)}).")
    prompts = df["prompt"]
    bad = prompts.isna() | ~prompts.map(lambda p: isinstance(p, str) and p.strip() != "")
    if bad.any():
        raise ValueError(f"{where}: column 'prompt' has empty or non-string values at rows {list(prompts.index[bad][:5])}.")
    kept = list(dict.fromkeys(prompts.tolist()))
    logger.info("%s: %d rows, %d distinct prompts kept", where, len(prompts), len(kept))
    return kept


def load_prompts(source: str, seed: int = 0, n_generated: tuple[int, int] = (64, 16),
                 context_words: int = 0) -> dict[str, list[str]]:
    """``{"train": [...], "test": [...]}`` from a hub id, a local directory, or ``generated``."""
    if source == "generated":
        prompts = generate_prompts(sum(n_generated), seed, context_words)
        return {"train": prompts[:n_generated[0]], "test": prompts[n_generated[0]:]}
    path = Path(source).expanduser()
    if path.is_dir():
        return {"train": unique_prompts(_local_split(path, ("train",)), f"{path}/train"),
                "test": unique_prompts(_local_split(path, ("test", "validation")), f"{path}/test")}
    from datasets import load_dataset

    data = load_dataset(source)
    test_split = "test" if "test" in data else "validation"
    return {"train": unique_prompts(data["train"].to_pandas(), f"{source}:train"),
            "test": unique_prompts(data[test_split].to_pandas(), f"{source}:{test_split}")}


def hold_out(prompts: list[str], n_validation: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, validation): ``n_validation`` prompts drawn at random (seeded) out of ``prompts``, order kept."""
    if not 0 < n_validation < len(prompts):
        raise ValueError(f"cannot hold out {n_validation} validation prompts from {len(prompts)} training prompts.")
    held = np.zeros(len(prompts), dtype=bool)
    held[np.random.default_rng([seed, 4_999]).choice(len(prompts), size=n_validation, replace=False)] = True
    return [p for p, h in zip(prompts, held) if not h], [p for p, h in zip(prompts, held) if h]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="'generated', a local directory, or a hub dataset id")
    p.add_argument("--out-dir", required=True, help="writes train.parquet, validation.parquet, test.parquet")
    p.add_argument("--n-train", type=int, default=0, help="keep the first n training prompts, validation included "
                   "(0 = all); with 'generated', how many to make")
    p.add_argument("--n-validation", type=int, default=500, help="held out of the training prompts (seeded)")
    p.add_argument("--n-test", type=int, default=0, help="keep the first n test prompts (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="the validation hold-out; and the generated prompts")
    p.add_argument("--context-words", type=int, default=0, help="generated: notes of this many words before each "
                   "prompt (the paper's prompt lengths)")
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    if a.source == "generated" and (a.n_train <= 0 or a.n_test <= 0):
        raise SystemExit("--source generated needs --n-train and --n-test > 0.")
    if a.context_words and a.source != "generated":
        raise SystemExit("--context-words applies to --source generated only.")
    splits = load_prompts(a.source, a.seed, (a.n_train, a.n_test), a.context_words)
    train = splits["train"][:a.n_train] if a.n_train else splits["train"]
    test = splits["test"][:a.n_test] if a.n_test else splits["test"]
    train, validation = hold_out(train, a.n_validation, a.seed)
    for split, prompts in (("train", train), ("validation", validation), ("test", test)):
        out = Path(a.out_dir) / f"{split}.parquet"
        write_frame_atomic(pd.DataFrame({"prompt_idx": np.arange(len(prompts)), "prompt": prompts}), out)
        logger.info("%s prompts from %s: %d -> %s", split, a.source, len(prompts), out)


if __name__ == "__main__":
    run(main)
