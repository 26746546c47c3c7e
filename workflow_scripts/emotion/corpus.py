"""Generated emotion-like corpus for the mini preset (no hub access needed).

The mini preset must run end to end on a CPU without downloading
``dair-ai/emotion``, yet the reward model trained on it has to learn something
real, otherwise the whole DRO-REBEL pipeline is untestable.  This module builds
a seeded, template-based corpus with the same schema and six labels:

* the label is carried only by emotion *words* (per-label lexicons), never by a
  sentence position or length: frames, optional openers, intensifiers, time
  phrases and neutral event clauses move the emotion word around and make
  sentences 6-25 words long;
* neutral words (subjects, verbs, fillers, events) are drawn independently of
  the label, so they are shared by all classes;
* a small fraction of "hard" sentences also mention a negated or contrasted
  word of another emotion ("i am not scared at all, just happy"), so the
  strongest cue is not simply "any emotion word";
* the label mix follows dair-ai/emotion roughly (joy and sadness most
  frequent, surprise least) and is configurable.

Texts are lowercase, like dair-ai/emotion.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.emotion.data import EMOTION_LABELS, FORMATS, SPLITS, write_split
from workflow_scripts.core.cli import run

logger = logging.getLogger(__name__)

#: Label frequencies of the dair-ai/emotion train split, in EMOTION_LABELS order.
DEFAULT_LABEL_PROBS = (0.29, 0.335, 0.08, 0.135, 0.12, 0.04)

#: Fraction of sentences that also contain a contrasted word of another emotion.
DEFAULT_HARD_FRACTION = 0.05

MIN_WORDS, MAX_WORDS = 6, 25

LEXICON: dict[str, tuple[str, ...]] = {
    "sadness": (
        "sad", "unhappy", "depressed", "miserable", "lonely", "heartbroken",
        "gloomy", "hopeless", "down", "devastated", "disappointed", "empty",
        "crushed", "defeated", "discouraged", "homesick", "regretful",
        "grief stricken", "low", "melancholy",
    ),
    "joy": (
        "happy", "glad", "cheerful", "delighted", "joyful", "content",
        "thrilled", "pleased", "ecstatic", "elated", "satisfied", "relaxed",
        "grateful", "optimistic", "proud", "energetic", "over the moon",
        "on cloud nine", "peaceful", "hopeful",
    ),
    "love": (
        "loving", "affectionate", "romantic", "tender", "adored", "caring",
        "passionate", "devoted", "in love", "cherished", "sweet",
        "warm hearted", "longing", "sympathetic", "deeply attached",
        "fond of them", "supported", "accepted",
    ),
    "anger": (
        "angry", "furious", "annoyed", "outraged", "irritated", "fed up",
        "resentful", "bitter", "mad", "enraged", "frustrated", "hostile",
        "livid", "cranky", "grumpy", "insulted", "offended", "agitated",
    ),
    "fear": (
        "scared", "terrified", "anxious", "afraid", "nervous", "frightened",
        "worried", "panicked", "uneasy", "tense", "insecure", "paranoid",
        "shaky", "apprehensive", "on edge", "threatened", "alarmed",
        "vulnerable",
    ),
    "surprise": (
        "surprised", "amazed", "astonished", "shocked", "stunned", "startled",
        "speechless", "dazed", "taken aback", "curious", "impressed",
        "caught off guard", "blown away", "bewildered", "awestruck",
        "overwhelmed",
    ),
}

# Label-independent building blocks, shared by every class.
OPENERS = ("", "", "", "honestly", "to be honest", "well", "i guess",
           "you know", "lately", "somehow", "for some reason", "ok so")
VERBS = ("feel", "felt", "am feeling", "have been feeling", "was", "am",
         "keep feeling", "started to feel", "still feel", "get", "seem to feel")
INTENSIFIERS = ("", "", "", "so", "really", "very", "a bit", "quite",
                "incredibly", "kind of", "pretty", "a little", "totally")
TIMES = ("", "", "today", "this morning", "tonight", "right now",
         "all week", "these days", "after work", "since yesterday",
         "on the way home", "every time it happens")
CONTEXTS = ("", "", "about my job", "about the whole thing", "with my family",
            "about the new apartment", "about school", "around them",
            "about what happened", "about my friends", "at the office",
            "about the future")
EVENTS = ("my sister called me", "the meeting ran late", "i finished the project",
          "we moved to a new city", "my boss sent an email", "i read the news",
          "the package arrived", "i saw an old friend", "the results came back",
          "nobody answered my message", "the train was delayed", "i got home",
          "we talked about the past", "the semester started",
          "my phone rang at midnight", "i looked at the old photos")

FRAMES = (
    "{opener} i {verb} {intens} {emo} {context} {time}",
    "{time} i {verb} {intens} {emo} {context}",
    "{opener} {event} and i {verb} {intens} {emo} {time}",
    "i {verb} {intens} {emo} because {event} {time}",
    "{event} so i {verb} {intens} {emo} {context} {time}",
    "whenever {event} i {verb} {intens} {emo} {context}",
    "{opener} it has been a long day and i {verb} {intens} {emo} {context}",
    "i can not explain why but i {verb} {intens} {emo} {time}",
    "{opener} after {event} i {verb} {intens} {emo} {context}",
)
HARD_FRAMES = (
    "i am not {other} at all {time} i {verb} just {emo} {context}",
    "i expected to be {other} when {event} but instead i {verb} {emo} {time}",
    "{opener} less {other} and more {emo} {context} {time}",
)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _sentence(rng: np.random.Generator, label: int, hard: bool) -> str:
    """One sentence for ``label``; resampled until its length is in range."""
    name = EMOTION_LABELS[label]
    while True:
        slots = {
            "opener": _pick(rng, OPENERS),
            "verb": _pick(rng, VERBS),
            "intens": _pick(rng, INTENSIFIERS),
            "emo": _pick(rng, LEXICON[name]),
            "time": _pick(rng, TIMES),
            "context": _pick(rng, CONTEXTS),
            "event": _pick(rng, EVENTS),
        }
        if hard:
            other = _pick(rng, [n for n in EMOTION_LABELS if n != name])
            slots["other"] = _pick(rng, LEXICON[other])
            frame = _pick(rng, HARD_FRAMES)
        else:
            frame = _pick(rng, FRAMES)
        words = frame.format(**slots).split()  # split() drops the empty slots
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            return " ".join(words)


def generate_split(
    n: int,
    rng: np.random.Generator,
    label_probs: Sequence[float] = DEFAULT_LABEL_PROBS,
    hard_fraction: float = DEFAULT_HARD_FRACTION,
) -> pd.DataFrame:
    """``n`` sentences with labels drawn from ``label_probs``."""
    probs = np.asarray(label_probs, dtype=float)
    if probs.shape != (len(EMOTION_LABELS),) or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"label_probs must be {len(EMOTION_LABELS)} non-negative weights, got {label_probs}.")
    labels = rng.choice(len(EMOTION_LABELS), size=n, p=probs / probs.sum())
    hard = rng.random(n) < hard_fraction
    texts = [_sentence(rng, int(y), bool(h)) for y, h in zip(labels, hard)]
    return pd.DataFrame({"text": texts, "label": labels.astype("int64")})


def generate_corpus(
    n_train: int,
    n_validation: int,
    n_test: int,
    seed: int,
    label_probs: Sequence[float] = DEFAULT_LABEL_PROBS,
    hard_fraction: float = DEFAULT_HARD_FRACTION,
) -> dict[str, pd.DataFrame]:
    """All three splits from one seeded generator (same seed, same corpus)."""
    rng = np.random.default_rng(seed)
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    return {
        split: generate_split(sizes[split], rng, label_probs, hard_fraction)
        for split in SPLITS
    }


def _label_counts(df: pd.DataFrame) -> str:
    counts = np.bincount(df["label"].to_numpy(), minlength=len(EMOTION_LABELS))
    return " ".join(f"{name}={c}" for name, c in zip(EMOTION_LABELS, counts))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.emotion.corpus",
        description="Write the generated mini emotion corpus (train/validation/test) to a directory.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-validation", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=FORMATS, default="jsonl")
    parser.add_argument(
        "--label-probs", type=lambda s: [float(x) for x in s.split(",")],
        default=list(DEFAULT_LABEL_PROBS),
        help="six comma-separated label weights in order " + ",".join(EMOTION_LABELS),
    )
    parser.add_argument("--hard-fraction", type=float, default=DEFAULT_HARD_FRACTION)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    corpus = generate_corpus(
        args.n_train, args.n_validation, args.n_test, args.seed,
        label_probs=args.label_probs, hard_fraction=args.hard_fraction,
    )
    for split, df in corpus.items():
        write_split(df, args.out, split, args.format)
    logger.info(
        "wrote %s (%s, seed %d): %s; train labels %s",
        args.out, args.format, args.seed,
        " ".join(f"{s}={len(df)}" for s, df in corpus.items()),
        _label_counts(corpus["train"]),
    )


if __name__ == "__main__":
    run(main, sys.argv[1:])
