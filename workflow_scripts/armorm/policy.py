"""The base policy of the ArmoRM experiment, as one directory (model + tokenizer with a chat template).

- a hub id or directory (paper: ``meta-llama/Llama-3.2-1B-Instruct``): loaded and saved locally,
  with a pad token set when the tokenizer has none (Llama 3.2's reserved
  ``<|finetune_right_pad_id|>`` when present, else its eos token);
- a mapping of ``LlamaConfig`` arguments (mini): a byte-level BPE is trained on the training
  prompts, given Llama-3-style special tokens and chat template, and a small randomly
  initialised ``LlamaForCausalLM`` is built on it. The mini policy is not instruction-tuned:
  it exercises the machinery, nothing more.

Every later stage (completions, alignment through ``workflow_scripts.core.train.align``, evaluation)
loads this directory with ``AutoModelForCausalLM`` / ``AutoTokenizer``; it is also the reference
policy (DPO's reference, REBEL's ``anchor: reference``).

    python -m workflow_scripts.armorm.policy --source meta-llama/Llama-3.2-1B-Instruct --out base_policy/
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workflow_scripts.core.io import AtomicDirectory, setup_logging
from workflow_scripts.core.tokenizer import byte_level_bpe
from workflow_scripts.core.models import FAST_ATTENTION
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_policy")

BOS, EOT, START, END, PAD = "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|pad|>"
SPECIAL_TOKENS = (BOS, EOT, START, END, PAD)

#: A Llama-3-style chat template (the layout ArmoRM's gating token relies on).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def train_chat_tokenizer(texts: Sequence[str], vocab_size: int, model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """A byte-level BPE with Llama-3-style special tokens (bos, eot = eos, headers, pad) and chat template."""
    backend = byte_level_bpe(list(texts) + ["user", "assistant"], vocab_size, SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOT, pad_token=PAD,
                                        unk_token=None, model_max_length=model_max_length)
    tokenizer.add_special_tokens({"additional_special_tokens": [START, END]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_llama_policy(spec: Mapping[str, Any], tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    spec = dict(spec)
    vocab = max(len(tokenizer), int(spec.pop("vocab_size", 0)))   # the real model's vocabulary (paper-shapes)
    config = LlamaConfig(vocab_size=vocab, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **spec)
    config._attn_implementation = FAST_ATTENTION
    model = LlamaForCausalLM(config)
    logger.info("built a Llama policy from config %s (%.3fM parameters, random init, seed %d)",
                dict(spec), sum(p.numel() for p in model.parameters()) / 1e6, seed)
    return model


def load_hub_policy(source: str):
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        reserved = "<|finetune_right_pad_id|>"
        tokenizer.pad_token = reserved if reserved in tokenizer.get_vocab() else tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"{source}: the tokenizer has no chat template; the ArmoRM protocol applies one.")
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="hub id / directory, or a JSON mapping of LlamaConfig arguments")
    p.add_argument("--prompts", help="training prompts parquet (mini: the tokenizer's corpus)")
    p.add_argument("--vocab-size", type=int, default=512, help="mini: BPE vocabulary size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    source = a.source.strip()
    if source.startswith("{"):
        if not a.prompts:
            raise SystemExit("--prompts is needed to train the tokenizer of a policy built from a config.")
        texts = pd.read_parquet(a.prompts)["prompt"].tolist()
        tokenizer = train_chat_tokenizer(texts, a.vocab_size)
        model = build_llama_policy(json.loads(source), tokenizer, a.seed)
    else:
        model, tokenizer = load_hub_policy(source)
    with AtomicDirectory(a.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    logger.info("base policy (%s, vocab %d) -> %s", source if not source.startswith("{") else "built from config",
                len(tokenizer), a.out)


if __name__ == "__main__":
    run(main)
