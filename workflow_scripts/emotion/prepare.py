"""The emotion data stage: one local directory of train/validation/test jsonl for every preset.

- ``--source generated``: the mini preset's synthetic corpus (:mod:`.corpus`);
- ``--source <directory>``: a local copy in the hub schema, validated and copied; a directory
  without a test split (e.g. ``../shared/data/emotion``, whose test split is held back) gets one
  carved out of validation (``--test-from-validation``, seeded), the rest staying validation;
- ``--source <hub id>`` (paper: ``dair-ai/emotion``): downloaded once with ``datasets``.

Downstream rules then read one validated directory, whatever the source.

    python -m workflow_scripts.emotion.prepare --source dair-ai/emotion --out results/paper/emotion/data
"""
from __future__ import annotations

import argparse
import logging

from pathlib import Path

import numpy as np

from workflow_scripts.core.io import AtomicDirectory, setup_logging
from workflow_scripts.emotion.data import FORMATS, SPLITS, is_local_source, load_emotion_split, write_split
from workflow_scripts.emotion.corpus import generate_corpus
from workflow_scripts.core.cli import run

logger = logging.getLogger("data")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="'generated', a local directory, or a hub dataset id")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-validation", type=int, default=300)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-from-validation", type=float, default=0.5,
                   help="a local source without a test split: this fraction of validation becomes the test split")
    return p.parse_args(argv)


def has_split(source: str, split: str) -> bool:
    return not is_local_source(source) or any((Path(source).expanduser() / f"{split}.{f}").is_file() for f in FORMATS)


def carve_test(validation, fraction: float, seed: int):
    """Split validation into (validation, test) at random (seeded): selection never sees the test rows."""
    if not 0 < fraction < 1:
        raise ValueError(f"--test-from-validation must be in (0, 1), got {fraction}.")
    order = np.random.default_rng([seed, 20_251]).permutation(len(validation))
    n_test = int(round(fraction * len(validation)))
    if n_test == 0 or n_test == len(validation):
        raise ValueError(f"cannot carve {fraction:.0%} of {len(validation)} validation rows into a test split.")
    test, kept = np.sort(order[:n_test]), np.sort(order[n_test:])
    return validation.iloc[kept].reset_index(drop=True), validation.iloc[test].reset_index(drop=True)


def load_splits(source: str, fraction: float, seed: int) -> dict:
    splits = {split: load_emotion_split(source, split) for split in SPLITS if has_split(source, split)}
    if "test" not in splits:
        splits["validation"], splits["test"] = carve_test(splits["validation"], fraction, seed)
        logger.warning("%s has no test split: carved %d of its validation rows into a test split (seed %d); %d stay "
                       "validation. Put the real test file next to the others to report on it.", source,
                       len(splits["test"]), seed, len(splits["validation"]))
    return splits


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    if a.source == "generated":
        splits = generate_corpus(a.n_train, a.n_validation, a.n_test, a.seed)
    else:
        splits = load_splits(a.source, a.test_from_validation, a.seed)
    with AtomicDirectory(a.out) as tmp:
        for split, df in splits.items():
            write_split(df, tmp, split, fmt="jsonl")
    logger.info("emotion data from %s -> %s: %s", a.source, a.out, {k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    run(main)
