"""Completions of the base policy on the ArmoRM prompts (SPEC 5.2), resumable per shard.

For each prompt: the policy's chat template is applied to a one-turn user conversation (the
prompt text first cut to ``--max-prompt-tokens`` tokens), ``n`` completions are sampled
(temperature, top-p) by the configured generation backend (:mod:`workflow_scripts.core.sampling`).
Reference log-probs are not computed here: the alignment job computes them with the forward it
trains with, so they share the policy's numerics. Shards of prompts
are written as they finish (:mod:`.shards`); each shard's sampling seed depends only on the run
seed and the shard index, and every completion has its own seed (shard seed, position, sample), so
an interrupted and resumed run gives the same rows as one that never stopped, whatever batch size.

Output columns: ``prompt_idx, sample, prompt, prompt_ids, response_ids, response, n_tokens,
finished``.

    python -m workflow_scripts.armorm.completions --prompts prompts/train.parquet --policy base_policy/ \
        --out completions/train.parquet --per-prompt 2 --temperature 0.7 --max-new-tokens 1024
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.core.completions import completion_frame
from workflow_scripts.core.policy_job import start_policy_job
from workflow_scripts.core.sampling import CAPACITY_ARGS, add_sampling_args, sampler_from_args
from workflow_scripts.core.shards import run_sharded
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_completions")


def chat_prompt_ids(tokenizer, prompt: str, max_prompt_tokens: int) -> list[int]:
    """Token ids of the chat-templated prompt (generation prompt appended); the text is cut first."""
    content_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(content_ids) > max_prompt_tokens:
        prompt = tokenizer.decode(content_ids[:max_prompt_tokens])
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def shard_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index * 7_919 + 17) % 2**31


def generate(sampler, tokenizer, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int,
             max_prompt_tokens: int, seed: int, desc: str = "sampling", keys=None) -> pd.DataFrame:
    """``n`` completions per prompt (prompt-major rows) from a :mod:`~workflow_scripts.core.sampling` sampler;
    ``keys``: the prompts' key columns (:func:`~workflow_scripts.core.completions.completion_frame`)."""
    prompt_ids = [chat_prompt_ids(tokenizer, p, max_prompt_tokens) for p in prompts]
    stops = sampler.stop_ids
    responses = sampler.sample(prompt_ids, n=n, temperature=temperature, top_k=0, top_p=top_p,
                               max_new_tokens=max_new_tokens, seed=seed, desc=desc)
    return completion_frame(prompts, prompt_ids, responses,
                            [tokenizer.decode(r, skip_special_tokens=True) for r in responses], n, keys=keys,
                            finished=[bool(r) and r[-1] in stops for r in responses])


def fingerprint(prompts: list[str], policy_dir: str) -> dict:
    """What the shards depend on besides the settings: the prompts and the policy files."""
    digest = hashlib.sha256("\x00".join(prompts).encode()).hexdigest()
    policy = Path(policy_dir)
    files = {p.name: p.stat().st_size for p in sorted(policy.iterdir()) if p.is_file()} if policy.is_dir() else {}
    config = (policy / "config.json").read_text() if (policy / "config.json").is_file() else ""
    return {"prompts_sha256": digest, "policy_files": files,
            "policy_config_sha256": hashlib.sha256(config.encode()).hexdigest()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", required=True, help="prompts parquet (column 'prompt')")
    p.add_argument("--policy", required=True, help="base policy directory (model + tokenizer with a chat template)")
    p.add_argument("--out", required=True, help="completions parquet")
    p.add_argument("--per-prompt", type=int, default=2, help="completions per prompt")
    add_sampling_args(p, temperature=0.7, max_new_tokens=1024, max_prompt_tokens=1024, batch_size=32)
    p.add_argument("--shard-size", type=int, default=512, help="prompts per shard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after-shards", type=int, default=None, help=argparse.SUPPRESS)   # test hook: a "kill"
    return p.parse_args(argv)


def main(argv=None):
    a, device, tokenizer = start_policy_job(parse_args, argv)
    prompts_df = pd.read_parquet(a.prompts)
    prompts = prompts_df["prompt"].tolist()
    prompt_idx = prompts_df["prompt_idx"].to_numpy() if "prompt_idx" in prompts_df else np.arange(len(prompts))
    sampler = None
    timing = {"rows": 0, "seconds": 0.0}

    def work(index: int, lo: int, hi: int) -> pd.DataFrame:
        nonlocal sampler
        if sampler is None:
            sampler = sampler_from_args(a, a.policy, tokenizer, device, batch_size=a.batch_size)
        started = time.time()
        frame = generate(sampler, tokenizer, prompts[lo:hi], n=a.per_prompt, temperature=a.temperature, top_p=a.top_p,
                         max_new_tokens=a.max_new_tokens, max_prompt_tokens=a.max_prompt_tokens,
                         seed=shard_seed(a.seed, index), desc=f"shard {index}", keys={"prompt_idx": prompt_idx[lo:hi]})
        timing["rows"] += len(frame)
        timing["seconds"] += time.time() - started
        return frame

    # batch size and memory shares size the work, not the rows (every completion has its own seed)
    settings = {k: v for k, v in vars(a).items() if k not in ("out", "stop_after_shards", "batch_size", *CAPACITY_ARGS)}
    merged = run_sharded(a.out, len(prompts), a.shard_size, work, {**settings, **fingerprint(prompts, a.policy)},
                         stop_after=a.stop_after_shards)
    if sampler is not None:
        sampler.close()
    logger.info("this process: %d completions in %.1fs, %.2f completions/s "
                "(model loading excluded)", timing["rows"], timing["seconds"],
                timing["rows"] / max(timing["seconds"], 1e-9))
    if merged is not None:
        logger.info("%d completions of %d prompts: %.1f tokens on average, %.1f%% ended with eos", len(merged),
                    len(prompts), merged["n_tokens"].mean(), 100 * merged["finished"].mean())


if __name__ == "__main__":
    run(main)
