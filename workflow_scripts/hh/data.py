"""HH-RLHF dialogues (SPEC 5.3): the subsets as prompt / response pairs (the ``"\\n\\nHuman: ... \\n\\nAssistant:
..."`` format: :mod:`.dialogue`), the prompt splits and the SFT corpus.

Sources: the hub dataset ``Anthropic/hh-rlhf`` (``data_dir=<subset>``), a local directory in the same
schema (``<dir>/<subset>/{train,test}.jsonl[.gz]`` or ``.parquet``, columns ``chosen`` and ``rejected``:
full dialogues), or ``generated`` (the mini corpus, :mod:`.corpus`).

The **prompt** of a dialogue is everything up to and including its last ``"\\n\\nAssistant:"``; the
response is what follows. Prompts are filtered by token length (RiC keeps 8 to 512); a validation
set is held out of the training prompts (seeded); the test prompts come from the ``test`` split.

Outputs of the data stage (one directory):

- ``prompts/{train,validation,test}.parquet``: ``prompt_idx, subset, prompt`` (the policy is prompted
  with these);
- ``sft/{train,validation}.jsonl``: ``text`` = the chosen dialogues of the training / validation
  prompts of every subset (the SFT corpus);
- ``preferences/{subset}/{train,validation}.parquet``: ``prompt, chosen, rejected`` responses (the
  training data of reward models trained here, one per subset).

    python -m workflow_scripts.hh.data --source Anthropic/hh-rlhf --subsets helpful-base harmless-base \\
        --tokenizer Qwen/Qwen2.5-1.5B-Instruct --out results/paper/hh/data
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.core.io import AtomicDirectory, read_jsonl, setup_logging, write_frame_atomic
from workflow_scripts.core.cli import run
from workflow_scripts.hh.corpus import generate_dialogues
from workflow_scripts.hh.dialogue import split_dialogue

logger = logging.getLogger("hh_data")

SPLITS = ("train", "test")
FORMATS = ("jsonl", "jsonl.gz", "parquet")


def pairs_of(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``prompt, chosen, rejected`` (responses) from ``chosen`` / ``rejected`` full dialogues that share a prompt."""
    missing = [c for c in ("chosen", "rejected") if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing} (found {list(frame.columns)}).")
    rows = []
    for i, (chosen, rejected) in enumerate(zip(frame["chosen"], frame["rejected"])):
        prompt, chosen_response = split_dialogue(chosen, f"{where} row {i} (chosen)")
        other_prompt, rejected_response = split_dialogue(rejected, f"{where} row {i} (rejected)")
        if other_prompt != prompt:
            # HH-RLHF has a few pairs whose dialogues differ before the last turn: no shared prompt, skip them.
            continue
        rows.append((prompt, chosen_response, rejected_response))
    return pd.DataFrame(rows, columns=["prompt", "chosen", "rejected"])


def _local_file(directory: Path, subset: str, split: str) -> Path:
    found = [directory / subset / f"{split}.{fmt}" for fmt in FORMATS if (directory / subset / f"{split}.{fmt}").is_file()]
    if len(found) != 1:
        raise ValueError(f"{directory / subset}: expected exactly one {split}.jsonl / .jsonl.gz / .parquet, "
                         f"found {[p.name for p in found]}.")
    return found[0]


def load_subset(source: str, subset: str, split: str) -> pd.DataFrame:
    """The ``chosen`` / ``rejected`` dialogues of one subset and split (local directory or hub id)."""
    path = Path(source).expanduser()
    if path.is_dir():
        file = _local_file(path, subset, split)
        return pd.read_parquet(file) if file.suffix == ".parquet" else read_jsonl(file)
    from datasets import load_dataset  # imported lazily: slow, and unused for local sources

    return load_dataset(source, data_dir=subset, split=split).to_pandas()


def keep_by_length(pairs: pd.DataFrame, tokenizer, min_tokens: int, max_tokens: int) -> pd.DataFrame:
    """Pairs whose prompt has between ``min_tokens`` and ``max_tokens`` tokens (RiC: 8 to 512)."""
    lengths = np.array([len(ids) for ids in tokenizer(list(pairs["prompt"]), add_special_tokens=False)["input_ids"]])
    return pairs[(lengths >= min_tokens) & (lengths <= max_tokens)].reset_index(drop=True)


def hold_out(pairs: pd.DataFrame, n_validation: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation): ``n_validation`` prompts drawn at random (seeded) out of ``pairs``, order kept."""
    if not 0 < n_validation < len(pairs):
        raise ValueError(f"cannot hold out {n_validation} validation prompts from {len(pairs)} training prompts.")
    held = np.zeros(len(pairs), dtype=bool)
    held[np.random.default_rng([seed, 8_128]).choice(len(pairs), size=n_validation, replace=False)] = True
    return pairs[~held].reset_index(drop=True), pairs[held].reset_index(drop=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="'generated', a local directory, or a hub dataset id")
    p.add_argument("--subsets", nargs="+", default=["helpful-base", "harmless-base"])
    p.add_argument("--tokenizer", help="tokenizer for the prompt-length filter (hub id or directory); none: no filter")
    p.add_argument("--min-prompt-tokens", type=int, default=8)
    p.add_argument("--max-prompt-tokens", type=int, default=512)
    p.add_argument("--n-train", type=int, default=0, help="per subset: keep the first n training pairs (0 = all)")
    p.add_argument("--n-validation", type=int, default=500, help="per subset: held out of the training pairs")
    p.add_argument("--n-test", type=int, default=0, help="per subset: keep the first n test pairs (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generate", nargs=3, type=int, metavar=("N_TRAIN", "N_TEST", "SEED"),
                   help="--source generated: pairs per subset and split, and the corpus seed")
    p.add_argument("--out", required=True, help="directory: prompts/ and preferences/")
    p.add_argument("--sft-out", required=True, help="directory: the SFT corpus (train / validation .jsonl)")
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    tokenizer = None
    if a.tokenizer:
        from workflow_scripts.core.models import load_tokenizer

        tokenizer = load_tokenizer(a.tokenizer)
    splits: dict[str, dict[str, pd.DataFrame]] = {"train": {}, "validation": {}, "test": {}}
    for subset in a.subsets:
        for split in SPLITS:
            if a.source == "generated":
                if not a.generate:
                    raise SystemExit("--source generated needs --generate N_TRAIN N_TEST SEED.")
                n_train, n_test, corpus_seed = a.generate
                raw = generate_dialogues(subset, n_train if split == "train" else n_test, [corpus_seed, split == "test"])
            else:
                raw = load_subset(a.source, subset, split)
            pairs = pairs_of(raw, f"{a.source}:{subset}/{split}")
            if tokenizer is not None:
                pairs = keep_by_length(pairs, tokenizer, a.min_prompt_tokens, a.max_prompt_tokens)
            limit = a.n_train if split == "train" else a.n_test
            pairs = pairs.head(limit) if limit else pairs
            if split == "train":
                splits["train"][subset], splits["validation"][subset] = hold_out(pairs, a.n_validation, a.seed)
            else:
                splits["test"][subset] = pairs
            logger.info("%s/%s: %d pairs (of %d dialogues)", subset, split, len(pairs), len(raw))
    with AtomicDirectory(a.out) as tmp, AtomicDirectory(a.sft_out) as sft_tmp:
        tmp, sft_tmp = Path(tmp), Path(sft_tmp)
        for split, by_subset in splits.items():
            frame = pd.concat([f.assign(subset=s) for s, f in by_subset.items()], ignore_index=True)
            frame.insert(0, "prompt_idx", np.arange(len(frame)))
            write_frame_atomic(frame[["prompt_idx", "subset", "prompt"]], tmp / "prompts" / f"{split}.parquet")
            if split != "test":
                write_frame_atomic(pd.DataFrame({"text": frame["prompt"] + frame["chosen"]}),
                                   sft_tmp / f"{split}.jsonl")
                for subset, pairs in by_subset.items():
                    write_frame_atomic(pairs[["prompt", "chosen", "rejected"]],
                                       tmp / "preferences" / subset / f"{split}.parquet")
    logger.info("HH data -> %s: %s", a.out, {k: sum(len(f) for f in v.values()) for k, v in splits.items()})


if __name__ == "__main__":
    run(main)
