"""Build models from a config (mini preset, random init) or load them by hub id / path (paper).

A *model spec* in config is either a string (a hub id such as ``gpt2`` or a local
directory) or a mapping of ``transformers.GPT2Config`` arguments (``n_layer``, ``n_embd``,
...), which builds a small GPT-2-architecture model with random weights.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Union

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerBase,
)

logger = logging.getLogger(__name__)

ModelSpec = Union[str, Mapping[str, Any]]

#: Attention kernel for training. Eager attention supports the double backward that the
#: Wasserstein penalty needs (grad of a grad), on CPU and GPU alike; fused kernels do not.
TRAIN_ATTENTION = "eager"


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _gpt2_config(spec: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase, **extra) -> GPT2Config:
    return GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **dict(spec),
        **extra,
    )


def build_causal_lm(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, seed: int = 0):
    """The policy to fine-tune: hub id / directory, or a random-init GPT-2 from a config mapping."""
    if isinstance(spec, str):
        model = AutoModelForCausalLM.from_pretrained(spec, attn_implementation=TRAIN_ATTENTION)
    else:
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(_gpt2_config(spec, tokenizer, attn_implementation=TRAIN_ATTENTION))
        logger.info("built a GPT-2 policy from config %s (%.2fM parameters, random init)",
                    dict(spec), sum(p.numel() for p in model.parameters()) / 1e6)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def build_sequence_classifier(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, num_labels: int,
                              problem_type: str = "multi_label_classification", seed: int = 0):
    """A classifier with ``num_labels`` outputs on a GPT-2 trunk (hub id / directory / config mapping)."""
    if isinstance(spec, str):
        model = AutoModelForSequenceClassification.from_pretrained(
            spec, num_labels=num_labels, problem_type=problem_type, attn_implementation=TRAIN_ATTENTION)
    else:
        torch.manual_seed(seed)
        model = GPT2ForSequenceClassification(
            _gpt2_config(spec, tokenizer, num_labels=num_labels, problem_type=problem_type,
                         attn_implementation=TRAIN_ATTENTION))
    # GPT-2 classifiers read the last non-pad token: they must know the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_causal_lm(path: str, dtype: torch.dtype = torch.float32):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=TRAIN_ATTENTION)
    return model


# --------------------------------------------------------------------------- where and in what a job runs
def job_device() -> torch.device:
    """This process's device: its own GPU under a launcher (LOCAL_RANK), else the CPU. Every
    non-training job (sampling, scoring, evaluation) asks here, so they all agree."""
    import os

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """Inference dtype: ``bf16`` on a GPU that has it (fp32 elsewhere), ``fp32``, or ``auto`` (= bf16 where possible)."""
    if dtype not in ("bf16", "fp32", "auto"):
        raise ValueError(f"dtype must be bf16, fp32 or auto, got {dtype!r}.")
    on_gpu = torch.device(device).type == "cuda"
    if dtype in ("bf16", "auto") and on_gpu and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_sampling_policy(path: str, device: torch.device):
    """A policy for sampling (not training): bf16 on a GPU that has it, fp32 on CPU, in eval mode."""
    return load_causal_lm(path, dtype=resolve_dtype("auto", device)).to(device).eval()
