"""The emotion data stage: one local directory of train/validation/test jsonl for every preset.

- ``--source generated``: the mini preset's synthetic corpus (:mod:`.mini_emotion`);
- ``--source <directory>``: a local copy in the hub schema, validated and copied;
- ``--source <hub id>`` (paper: ``dair-ai/emotion``): downloaded once with ``datasets``.

Downstream rules then read one validated directory, whatever the source.

    python -m workflow_scripts.data.prepare_emotion --source dair-ai/emotion --out results/paper/emotion/data
"""
from __future__ import annotations

import argparse
import logging

from ..common.io import AtomicDirectory, setup_logging
from .emotion import SPLITS, load_emotion_split, write_split
from .mini_emotion import generate_corpus

logger = logging.getLogger("data")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="'generated', a local directory, or a hub dataset id")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-validation", type=int, default=300)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    if a.source == "generated":
        splits = generate_corpus(a.n_train, a.n_validation, a.n_test, a.seed)
    else:
        splits = {split: load_emotion_split(a.source, split) for split in SPLITS}
    with AtomicDirectory(a.out) as tmp:
        for split, df in splits.items():
            write_split(df, tmp, split, fmt="jsonl")
    logger.info("emotion data from %s -> %s: %s", a.source, a.out, {k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    main()
