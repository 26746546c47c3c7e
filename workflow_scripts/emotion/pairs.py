"""Preference pairs for emotion alignment (SPEC 5.1), made once from the SFT policy.

Prompts are the first ``prompt_tokens`` tokens of each text. Two completions per prompt are
sampled from the SFT policy (top-k 0, top-p 1), both are scored by the reward model, and a
Bradley-Terry label is drawn under the training mixture r*(alpha0). Reference log-probs are
not computed here: the alignment job computes them with the very forward it trains with (same
precision, attention kernel and truncation), so that they match the policy's numerics.

``--summary`` records how informative the pairs are: the spread of r1 and r2, of |r1 - r2|, and the
share of pairs whose Bradley-Terry label is not a coin flip (|P(y1 > y2) - 1/2| >= 0.1).

    python -m workflow_scripts.emotion.pairs --data DIR --policy sft/ --reward-model rm/ --out pairs.parquet
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

import numpy as np

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import write_frame_atomic, write_json_atomic
from workflow_scripts.core.mixtures import MIXTURES, preference_probability
from workflow_scripts.core.pairs import label_pairs
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import add_generation_args, sampler_from_args
from workflow_scripts.emotion.data import load_emotion_split
from workflow_scripts.emotion.reward import REWARD_EMOTIONS, EmotionScorer

logger = logging.getLogger("pairs")


def add_continuation_args(parser: argparse.ArgumentParser) -> None:
    """How the policy continues the first tokens of a text, the same for the pairs and the evaluation (config
    ``emotion.pairs``: prompt_tokens, top_k, top_p; max_new_tokens also per ``emotion.evaluate``), the batch
    size, then the generation backend's flags."""
    parser.add_argument("--prompt-tokens", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    add_generation_args(parser)


def make_prompts(tokenizer, texts: Sequence[str], prompt_tokens: int, limit: int = 0) -> list[list[int]]:
    """The first ``prompt_tokens`` tokens of each text long enough to have a continuation."""
    prompts = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        if len(ids) > prompt_tokens:
            prompts.append(ids[:prompt_tokens])
            if limit and len(prompts) == limit:
                break
    if not prompts:
        raise ValueError(f"no text has more than {prompt_tokens} tokens: cannot build prompts.")
    return prompts


#: A Bradley-Terry probability within this distance of 1/2 counts as a coin flip in the summary.
COIN_FLIP_MARGIN = 0.1


def spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    q = np.quantile(v, [0.05, 0.5, 0.95])
    return {"mean": float(v.mean()), "std": float(v.std()), "p05": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}


def pairs_summary(r1, r2, labels, scale: float, objectives: dict) -> dict:
    """How much signal the pairs carry: reward spread, gaps, and labels that are not coin flips."""
    p = preference_probability(r1, r2, scale)
    return {"n_pairs": int(len(r1)), "bt_scale": scale, "r1": spread(r1), "r2": spread(r2),
            "abs_gap": spread(np.abs(np.asarray(r1) - np.asarray(r2))),
            "objectives": {name: spread(values) for name, values in objectives.items()},
            "label_mean": float(np.mean(labels)),
            "coin_flip_margin": COIN_FLIP_MARGIN,
            "not_coin_flip_fraction": float(np.mean(np.abs(p - 0.5) >= COIN_FLIP_MARGIN))}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="emotion dataset (hub id or local directory)")
    p.add_argument("--split", default="train")
    p.add_argument("--policy", required=True, help="SFT policy directory (with its tokenizer)")
    p.add_argument("--reward-model", required=True)
    p.add_argument("--out", required=True, help="pairs parquet")
    p.add_argument("--summary", help="summary JSON: reward spread and label informativeness")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-prompts", type=int, default=0, help="0 = every text of the split")
    add_continuation_args(p)
    p.add_argument("--objectives", nargs=2, default=("anger", "fear"), metavar=("R1", "R2"))
    p.add_argument("--alpha0", type=float, default=0.1)
    p.add_argument("--mixture", default="convex", choices=MIXTURES)
    p.add_argument("--bt-scale", type=float, default=1.0)
    return p.parse_args(argv)


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    texts = load_emotion_split(a.data, a.split)["text"]
    prompts = make_prompts(tokenizer, texts, a.prompt_tokens, a.n_prompts)
    logger.info("%d prompts of %d tokens from the %s split", len(prompts), a.prompt_tokens, a.split)

    sampler = sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size,
                                stop_ids=[tokenizer.eos_token_id])
    completions = sampler.sample(prompts, n=2, temperature=1.0, top_k=a.top_k, top_p=a.top_p,
                                 max_new_tokens=a.max_new_tokens, seed=a.seed, desc="sampling pairs")
    sampler.close()                        # the policy's memory goes back before the reward model loads
    decode = lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True)  # noqa: E731
    df = label_pairs(EmotionScorer(a.reward_model, device), [decode(p) for p in prompts], prompts, completions[0::2],
                     completions[1::2], decode, objectives=a.objectives, alpha0=a.alpha0, mixture=a.mixture,
                     bt_scale=a.bt_scale, rng=np.random.default_rng([a.seed, 1]), score_columns=True)
    r1, r2, labels = df["r1"].to_numpy(), df["r2"].to_numpy(), df["label"].to_numpy()
    write_frame_atomic(df, a.out)
    summary = pairs_summary(r1, r2, labels, a.bt_scale,
                            {e: np.concatenate([df[f"y1_{e}"], df[f"y2_{e}"]]) for e in REWARD_EMOTIONS})
    if a.summary:
        write_json_atomic(a.summary, summary)
    logger.info("wrote %d pairs to %s: r1 %.4f +- %.4f, r2 %.4f +- %.4f, |r1 - r2| %.4f; %.1f%% of the labels are not "
                "coin flips (|P - 1/2| >= %.1f); P(label=1) %.3f", len(df), a.out, summary["r1"]["mean"],
                summary["r1"]["std"], summary["r2"]["mean"], summary["r2"]["std"], summary["abs_gap"]["mean"],
                100 * summary["not_coin_flip_fraction"], COIN_FLIP_MARGIN, labels.mean())


if __name__ == "__main__":
    run(main)
