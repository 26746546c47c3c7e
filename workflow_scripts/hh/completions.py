"""Completions of the SFT policy on the HH prompts, scored by both reward models; resumable per shard.

For every prompt: ``n`` responses sampled from the policy (the dialogue continues after the last
``"\\n\\nAssistant:"``; a response ends at the end-of-text token or where the model starts a new
``"\\n\\nHuman:"`` turn), then each (prompt, response) is scored by the ensemble of reward models
(one column per objective). Shards are written as they finish (:mod:`workflow_scripts.core.shards`);
each shard's sampling seed depends only on the run seed and the shard index.

Output columns: ``prompt_idx, subset, sample, prompt, prompt_ids, response_ids, response, n_tokens``
and one column per objective (``helpful``, ``harmless``).

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

from workflow_scripts.core.io import setup_logging
from workflow_scripts.core.models import job_device, load_tokenizer, resolve_dtype
from workflow_scripts.core.runinfo import seed_everything
from workflow_scripts.core.sampling import CAPACITY_ARGS, add_sampling_args, sampler_from_args
from workflow_scripts.core.shards import run_sharded
from workflow_scripts.hh.data import HUMAN
from workflow_scripts.hh.reward import ensemble

logger = logging.getLogger("hh_completions")


def cut_turn(response: str) -> str:
    """The assistant's turn only: everything before a new ``"\\n\\nHuman:"`` the model may have started."""
    return response.split(HUMAN, 1)[0]


def sample(sampler, tokenizer, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int,
           max_prompt_tokens: int, seed: int, desc: str = "sampling") -> pd.DataFrame:
    """``n`` responses per prompt (prompt-major rows) from a :mod:`~workflow_scripts.core.sampling` sampler."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for p in prompts]
    responses = sampler.sample(ids, n=n, temperature=temperature, top_k=0, top_p=top_p, max_new_tokens=max_new_tokens,
                               seed=seed, desc=desc)
    texts = [cut_turn(tokenizer.decode(r, skip_special_tokens=True)) for r in responses]
    return pd.DataFrame({"sample": np.tile(np.arange(n), len(prompts)),
                         "prompt": [p for p in prompts for _ in range(n)],
                         "prompt_ids": [p for p in ids for _ in range(n)], "response_ids": responses,
                         "response": texts, "n_tokens": [len(r) for r in responses]})


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
    setup_logging()
    a = parse_args(argv)
    seed_everything(a.seed)
    device = job_device()
    prompts = pd.read_parquet(a.prompts)
    tokenizer = load_tokenizer(a.policy)
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
                       seed=(a.seed * 1_000_003 + index * 7_919 + 29) % 2**31, desc=f"shard {index}")
        frame.insert(0, "subset", np.repeat(rows["subset"].to_numpy(), a.per_prompt))
        frame.insert(0, "prompt_idx", np.repeat(rows["prompt_idx"].to_numpy(), a.per_prompt))
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
    main()
