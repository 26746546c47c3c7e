"""Tiny models and data for fast alignment tests: a BPE tokenizer, a 2-layer GPT-2 policy, a 5-label
emotion reward model, and a pairs parquet in the alignment schema (all random, all local)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

WORDS = ("i feel so angry and scared today", "what a lovely sunny day with friends", "i am sad and lonely tonight",
         "this makes me furious", "i am terrified of the dark", "joy and love everywhere", "nothing much happened")


def build(directory: Path, *, n_pairs: int = 64, seed: int = 0) -> dict[str, Path]:
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    from workflow_scripts.core.tokenizer import train_bpe_tokenizer
    from workflow_scripts.emotion.reward import REWARD_EMOTIONS

    directory = Path(directory)
    tok = train_bpe_tokenizer(list(WORDS) * 20, 300, directory / "tokenizer")
    config = dict(vocab_size=len(tok), n_layer=2, n_embd=32, n_head=2, n_positions=64, bos_token_id=tok.eos_token_id,
                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    policy = GPT2LMHeadModel(GPT2Config(**config))
    policy.save_pretrained(directory / "policy")
    tok.save_pretrained(directory / "policy")
    reward = GPT2ForSequenceClassification(GPT2Config(**config, num_labels=len(REWARD_EMOTIONS),
                                                      problem_type="multi_label_classification",
                                                      id2label=dict(enumerate(REWARD_EMOTIONS)),
                                                      label2id={e: i for i, e in enumerate(REWARD_EMOTIONS)}))
    reward.save_pretrained(directory / "reward_model")
    tok.save_pretrained(directory / "reward_model")
    rng = np.random.default_rng(seed)
    ids = lambda lo, hi: [rng.integers(1, len(tok), size=rng.integers(lo, hi)).tolist() for _ in range(n_pairs)]  # noqa: E731
    pairs = pd.DataFrame({"prompt_ids": ids(3, 6), "y1_ids": ids(2, 12), "y2_ids": ids(2, 12),
                          "r1": rng.uniform(0, 1, n_pairs), "r2": rng.uniform(0, 1, n_pairs),
                          "label": rng.integers(0, 2, n_pairs)})
    pairs.to_parquet(directory / "pairs.parquet", index=False)
    return {"policy": directory / "policy", "reward_model": directory / "reward_model",
            "pairs": directory / "pairs.parquet"}
