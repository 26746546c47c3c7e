"""Completions of the SFT policy on the HH prompts, scored by both reward models; resumable per shard.

For every prompt: ``n`` responses sampled from the policy (the dialogue continues after the last
``"\\n\\nAssistant:"``; a response ends at the end-of-text token or where the model starts a new
``"\\n\\nHuman:"`` turn), then each (prompt, response) is scored by the ensemble of reward models
(one column per objective). Shards are written as they finish (:mod:`workflow_scripts.core.shards`);
each shard's sampling seed depends only on the run seed and the shard index.

Output columns: ``prompt_idx, subset, sample, prompt, prompt_ids, response_ids, response, n_tokens,
cut_at_human_turn`` and one column per objective (``helpful``, ``harmless``); ``response`` is the decoding of
``response_ids``: what the reward models score is what the policy trains on (:func:`cut_turn`).

    python -m workflow_scripts.hh.completions --prompts data/prompts/train.parquet --policy sft/model \\
        --reward-models '{"helpful": "Ray2333/gpt2-large-helpful-reward_model", ...}' --out completions/0/train.parquet
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging

import numpy as np
import pandas as pd

from workflow_scripts.core.completions import completion_frame
from workflow_scripts.core.models import resolve_dtype
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import CAPACITY_ARGS, add_sampling_args, sampler_from_args
from workflow_scripts.core.shards import run_sharded
from workflow_scripts.hh.dialogue import HUMAN
from workflow_scripts.hh.reward import ensemble
from workflow_scripts.core.cli import run

logger = logging.getLogger("hh_completions")


def cut_turn(tokenizer, ids: list[int]) -> tuple[list[int], str, bool]:
    """The assistant's turn only, as token ids AND text that agree: ``(ids, text, cut)``.

    A response that goes on into a new ``"\n\nHuman:"`` turn (the model inventing the user's next message)
    is cut at the last token boundary before that turn begins, and ``text`` is the decoding of the ids kept:
    the reward models score exactly the tokens the policy is trained on (a token that straddles the
    boundary, e.g. ``".\n\n"``, goes with the invented turn). ``cut`` says whether anything was removed.
    """
    decode = lambda k: tokenizer.decode(ids[:k], skip_special_tokens=True)  # noqa: E731
    text = decode(len(ids))
    at = text.find(HUMAN)
    if at < 0:
        return list(ids), text, False
    first = next(k for k in range(1, len(ids) + 1) if HUMAN in decode(k))     # the token that completes the marker
    for k in range(first - 1, -1, -1):
        kept = decode(k)
        if len(kept) <= at and text.startswith(kept):
            return list(ids[:k]), kept, True
    return [], "", True


def sample(sampler, tokenizer, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int,
           max_prompt_tokens: int, seed: int, desc: str = "sampling", keys=None) -> pd.DataFrame:
    """``n`` responses per prompt (prompt-major rows) from a :mod:`~workflow_scripts.core.sampling` sampler,
    each cut where the model starts a new human turn (generation stops there: ``stop_strings``); ``keys``: the
    prompts' key columns (:func:`~workflow_scripts.core.completions.completion_frame`)."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for p in prompts]
    responses = sampler.sample(ids, n=n, temperature=temperature, top_k=0, top_p=top_p, max_new_tokens=max_new_tokens,
                               seed=seed, desc=desc, stop_strings=[HUMAN])
    turns = [cut_turn(tokenizer, r) for r in responses]
    cut = [c for _, _, c in turns]
    logger.info("%s: %d of %d responses (%.1f %%) went on into a new human turn and were cut before it", desc,
                sum(cut), len(cut), 100 * np.mean(cut) if cut else 0.0)
    return completion_frame(prompts, ids, [r for r, _, _ in turns], [t for _, t, _ in turns], n, keys=keys,
                            cut_at_human_turn=cut)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", required=True, help="prompts parquet (prompt_idx, subset, prompt)")
    p.add_argument("--policy", required=True, help="the SFT policy directory")
    p.add_argument("--reward-models", required=True, help="JSON mapping objective -> reward model (hub id or directory)")
    p.add_argument("--reward-dtype", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--out", required=True)
    p.add_argument("--per-prompt", type=int, default=2)
    add_sampling_args(p, temperature=1.0, max_new_tokens=128, max_prompt_tokens=512, batch_size=32)
    p.add_argument("--score-batch-size", type=int, default=16)
    p.add_argument("--score-max-length", type=int, default=1024)
    p.add_argument("--shard-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    prompts = pd.read_parquet(a.prompts)
    tokenizer.padding_side = "left"
    models = json.loads(a.reward_models)
    state: dict = {}

    def work(index: int, lo: int, hi: int) -> pd.DataFrame:
        if not state:
            state["sampler"] = sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size)
            state["scorer"] = ensemble(models, device, max_length=a.score_max_length, batch_size=a.score_batch_size,
                                       dtype=resolve_dtype(a.reward_dtype, device))
        rows = prompts.iloc[lo:hi]
        frame = sample(state["sampler"], tokenizer, rows["prompt"].tolist(), n=a.per_prompt, temperature=a.temperature,
                       top_p=a.top_p, max_new_tokens=a.max_new_tokens, max_prompt_tokens=a.max_prompt_tokens,
                       seed=(a.seed * 1_000_003 + index * 7_919 + 29) % 2**31, desc=f"shard {index}",
                       keys=rows[["prompt_idx", "subset"]])
        scores = state["scorer"].score(frame["prompt"].tolist(), frame["response"].tolist(), desc=f"shard {index}")
        return pd.concat([frame.reset_index(drop=True), scores], axis=1)

    digest = hashlib.sha256("\x00".join(prompts["prompt"]).encode()).hexdigest()
    settings = {k: v for k, v in vars(a).items() if k not in ("out", "batch_size", "score_batch_size", *CAPACITY_ARGS)}
    merged = run_sharded(a.out, len(prompts), a.shard_size, work, {**settings, "prompts_sha256": digest})
    if state:
        state["sampler"].close()
    if merged is not None:
        logger.info("%d responses to %d prompts (%.1f tokens on average); means %s", len(merged), len(prompts),
                    merged["n_tokens"].mean(), {o: round(float(merged[o].mean()), 4) for o in models})


if __name__ == "__main__":
    run(main)
