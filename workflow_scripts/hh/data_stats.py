"""What the HH data stage makes of a split of real dialogues, before anything trains on it.

For one subset and split of a local directory (``<dir>/<subset>/<split>.jsonl[.gz]``): how many records become
pairs and how many are dropped, and why (chosen and rejected differ before their last turn; the prompt is
shorter or longer than the configured token limits); turns per prompt; prompt and response token lengths
against the limits the workflow applies (``hh.data.min/max_prompt_tokens``, ``hh.completions.max_new_tokens``,
the alignment's ``max_length``, the reward models' ``max_length``); how many inputs each limit would truncate;
and whether the reward models' input (the prompt and the response as a text pair, the model-card call) decodes
back to the dialogue.

    python -m workflow_scripts.hh.data_stats --source ../shared/data/hh-rlhf --subset harmless-base --split test \\
        --tokenizer gpt2 --out stats.json

``--tokenizer train-bpe`` trains a byte-level BPE on the split itself (offline; its counts differ from a hub
tokenizer's, and the JSON says which was used).
"""
from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.hh.data import keep_by_length, load_subset, pairs_of
from workflow_scripts.hh.dialogue import HUMAN
from workflow_scripts.core.cli import run

logger = logging.getLogger("hh_data_stats")


def spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    q = np.percentile(v, [50, 90, 99])
    return {"n": int(v.size), "mean": float(v.mean()), "p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2]),
            "max": float(v.max())}


def dialogue_stats(raw: pd.DataFrame, tokenizer, *, min_prompt_tokens: int, max_prompt_tokens: int,
                   max_new_tokens: int, align_max_length: int, score_max_length: int) -> dict:
    """The statistics of one split (see the module docstring); every count is over the split's records."""
    pairs = pairs_of(raw, "dialogues")                       # the loader's own parsing and pairing
    differ = len(raw) - len(pairs)
    tokens = lambda texts: np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])  # noqa: E731
    p_len = tokens(list(pairs["prompt"]))
    too_short, too_long = int((p_len < min_prompt_tokens).sum()), int((p_len > max_prompt_tokens).sum())
    kept_pairs = keep_by_length(pairs, tokenizer, min_prompt_tokens, max_prompt_tokens)    # the loader's filter
    kept = (p_len >= min_prompt_tokens) & (p_len <= max_prompt_tokens)
    assert kept.sum() == len(kept_pairs)
    prompts, chosen, rejected = (list(pairs[c]) for c in ("prompt", "chosen", "rejected"))
    c_len, r_len = tokens(chosen), tokens(rejected)
    turns = np.array([p.count(HUMAN) for p in prompts])
    responses = np.concatenate([c_len[kept], r_len[kept]])
    # the reward models' input: prompt and response as a text pair (special tokens as the model card's call)
    pair = tokenizer([p for p, k in zip(prompts, kept) if k] * 2,
                     [x for x, k in zip(chosen, kept) if k] + [x for x, k in zip(rejected, kept) if k])["input_ids"]
    score_len = np.array([len(ids) for ids in pair])
    texts = [p + x for p, x in zip([p for p, k in zip(prompts, kept) if k] * 2,
                                   [x for x, k in zip(chosen, kept) if k] + [x for x, k in zip(rejected, kept) if k])]
    round_trip = np.mean([tokenizer.decode(ids, skip_special_tokens=True) == t for ids, t in zip(pair, texts)])
    kept_total = p_len[kept][:, None] + np.stack([c_len[kept], r_len[kept]], axis=1)
    return {
        "records": int(len(raw)), "pairs_kept": int(kept.sum()),
        "dropped": {"chosen_and_rejected_differ_before_the_last_turn": differ,
                    f"prompt_shorter_than_{min_prompt_tokens}_tokens": too_short,
                    f"prompt_longer_than_{max_prompt_tokens}_tokens": too_long},
        "human_turns_per_prompt": {**spread(turns[kept]), "counts": {int(k): int(v) for k, v in
                                                                   zip(*np.unique(turns[kept], return_counts=True))}},
        "prompt_tokens": spread(p_len[kept]), "response_tokens": spread(responses),
        "limits": {"min_prompt_tokens": min_prompt_tokens, "max_prompt_tokens": max_prompt_tokens,
                   "max_new_tokens": max_new_tokens, "align_max_length": align_max_length,
                   "score_max_length": score_max_length},
        "responses_longer_than_max_new_tokens": int((responses > max_new_tokens).sum()),
        "pairs_longer_than_align_max_length": int((kept_total.max(axis=1) > align_max_length).sum()),
        "score_inputs_longer_than_score_max_length": int((score_len > score_max_length).sum()),
        "score_input_tokens": spread(score_len),
        "score_input_round_trip_fraction": float(round_trip),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="a local directory <dir>/<subset>/<split>.jsonl[.gz]")
    p.add_argument("--subset", default="harmless-base")
    p.add_argument("--split", default="test")
    p.add_argument("--tokenizer", required=True, help="hub id / directory, or train-bpe (trained on the split)")
    p.add_argument("--vocab-size", type=int, default=8192, help="train-bpe only")
    p.add_argument("--min-prompt-tokens", type=int, default=8)
    p.add_argument("--max-prompt-tokens", type=int, default=512)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--align-max-length", type=int, default=1024)
    p.add_argument("--score-max-length", type=int, default=1024)
    p.add_argument("--out", help="statistics JSON")
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    raw = load_subset(a.source, a.subset, a.split)
    if a.tokenizer == "train-bpe":
        from transformers import PreTrainedTokenizerFast

        from workflow_scripts.core.tokenizer import SPECIAL_TOKEN, byte_level_bpe

        tokenizer = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(list(raw["chosen"]), a.vocab_size,
                                                                            [SPECIAL_TOKEN]),
                                            eos_token=SPECIAL_TOKEN, pad_token=SPECIAL_TOKEN)
    else:
        from workflow_scripts.core.models import load_tokenizer

        tokenizer = load_tokenizer(a.tokenizer)
    stats = dialogue_stats(raw, tokenizer, min_prompt_tokens=a.min_prompt_tokens, max_prompt_tokens=a.max_prompt_tokens,
                           max_new_tokens=a.max_new_tokens, align_max_length=a.align_max_length,
                           score_max_length=a.score_max_length)
    stats.update(source=a.source, subset=a.subset, split=a.split, tokenizer=a.tokenizer,
                 vocab_size=len(tokenizer))
    if a.out:
        write_json_atomic(a.out, stats)
    logger.info("%s/%s: %d records -> %d pairs; dropped %s; turns per prompt %s; prompt tokens %s; response tokens "
                "%s; truncated: %d responses at max_new_tokens %d, %d pairs at align max_length %d, %d reward inputs "
                "at %d; reward input round trip %.3f", a.subset, a.split, stats["records"], stats["pairs_kept"],
                stats["dropped"], stats["human_turns_per_prompt"]["counts"], stats["prompt_tokens"],
                stats["response_tokens"], stats["responses_longer_than_max_new_tokens"], a.max_new_tokens,
                stats["pairs_longer_than_align_max_length"], a.align_max_length,
                stats["score_inputs_longer_than_score_max_length"], a.score_max_length,
                stats["score_input_round_trip_fraction"])


if __name__ == "__main__":
    run(main)
