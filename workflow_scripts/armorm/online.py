"""The prompt pool of the ArmoRM online regime (the DRO-REBEL authors' runner, SPEC 5.2).

Each online iteration samples fresh completions for a batch of these prompts from pi_t, scores them
with ArmoRM (the text of the prompt and the response, through its chat template) and mixes two
objectives at alpha0. The pool holds, per training prompt, the chat-templated ids the policy is
prompted with (cut as the completions stage cuts them) and the prompt text the scorer reads.

    python -m workflow_scripts.armorm.online --prompts prompts/train.parquet --policy base_policy/ \
        --max-prompt-tokens 1024 --out online/prompts.parquet
"""
from __future__ import annotations

import argparse
import logging

import pandas as pd

from workflow_scripts.armorm.completions import chat_prompt_ids
from workflow_scripts.core.io import setup_logging, write_frame_atomic
from workflow_scripts.core.models import load_tokenizer
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_online")


def prompt_pool(tokenizer, prompts: pd.DataFrame, max_prompt_tokens: int) -> pd.DataFrame:
    return pd.DataFrame({"prompt_idx": prompts["prompt_idx"].to_numpy(), "prompt": prompts["prompt"].tolist(),
                         "prompt_ids": [chat_prompt_ids(tokenizer, p, max_prompt_tokens) for p in prompts["prompt"]]})


def main(argv=None):
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", required=True, help="training prompts parquet (columns prompt_idx, prompt)")
    p.add_argument("--policy", required=True, help="base policy directory (its tokenizer and chat template)")
    p.add_argument("--max-prompt-tokens", type=int, default=1024)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    pool = prompt_pool(load_tokenizer(a.policy), pd.read_parquet(a.prompts), a.max_prompt_tokens)
    write_frame_atomic(pool, a.out)
    logger.info("%d prompts for the online regime -> %s (%.1f tokens on average)", len(pool), a.out,
                pool["prompt_ids"].map(len).mean())


if __name__ == "__main__":
    run(main)
