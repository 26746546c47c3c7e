"""A STAND-IN for ArmoRM, for tests and the mini preset only: its scores are NOT a result.

The mini preset cannot download ``RLHFlow/ArmoRM-Llama3-8B-v0.1`` (8B parameters, hub access).
This module builds a tiny model of the same architecture and the same output interface
(:class:`~workflow_scripts.armorm.model.ArmoRMGatingRewardModel`: ``output.rewards`` of shape
(B, 19) and a gated ``output.score``), so the scoring code path the workflow runs on the mini
preset is the one it runs with the real model.

Design (our choice):

- a Llama trunk from a small config (mini: 2 layers x 32 dims), the 19-way regression layer,
  the gating MLP and the reward transform matrix, all **randomly initialised** from a seed, so
  the same seed gives the same model byte for byte. Nothing is trained: the 19 "objectives" are
  19 fixed random functions of the text, correlated with each other through the shared trunk
  but different between completions, which is all the pipeline (z-scoring, mixing, argmax /
  argmin pairs, evaluation averages) needs to be exercised;
- the regression layer is drawn with a larger standard deviation (``head_std``) than the trunk,
  so the 19 heads spread over O(1) instead of sitting near 0;
- its tokenizer is the mini policy's (a byte-level BPE with a Llama-3-style chat template), and
  its ``gating_token_pattern`` is that template's end-of-prompt tokens;
- it is saved with ``save_pretrained`` and reloads from its directory through
  ``ArmoRMGatingRewardModel.from_pretrained`` without ``trust_remote_code``.

    python -m workflow_scripts.armorm.standin --tokenizer base_policy/ --spec '{"hidden_size": 32}' --out rm/
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any, Mapping

import torch
from transformers import AutoTokenizer, LlamaConfig

from workflow_scripts.core.io import AtomicDirectory, setup_logging
from workflow_scripts.armorm.model import OBJECTIVES, ArmoRMGatingRewardModel
from workflow_scripts.core.cli import run

logger = logging.getLogger("armorm_standin")

#: The text that ends a prompt in the mini chat template (ArmoRM gates on the same spot).
GATING_TEXT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"

#: Defaults of the stand-in's config (any LlamaConfig argument can be overridden).
DEFAULT_SPEC: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 2, "max_position_embeddings": 512,
    "gating_hidden_dim": 32, "gating_n_hidden": 1, "gating_temperature": 1.0, "head_std": 1.0,
}


def build_standin(tokenizer, spec: Mapping[str, Any] | None = None, seed: int = 0,
                  device: torch.device | str = "cpu") -> ArmoRMGatingRewardModel:
    """A random-init ArmoRM-architecture model for ``tokenizer``; deterministic given ``seed`` (and device).

    ``dtype`` in the spec (e.g. ``bfloat16``) is the dtype it is kept and saved in: the paper-shapes
    preset's 8B stand-in is 15 GB in bf16 instead of 30 GB; ``device`` builds it where it is fast to
    initialise (a GPU when the job has one)."""
    spec = {**DEFAULT_SPEC, **dict(spec or {})}
    head_std = float(spec.pop("head_std"))
    dtype = getattr(torch, str(spec.pop("dtype", "float32")))
    pattern = tokenizer(GATING_TEXT, add_special_tokens=False)["input_ids"]
    vocab = max(len(tokenizer), int(spec.pop("vocab_size", 0)))   # the real model's vocabulary (paper-shapes)
    config = LlamaConfig(
        vocab_size=vocab, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, num_objectives=len(OBJECTIVES), gating_token_pattern=pattern,
        architectures=[ArmoRMGatingRewardModel.__name__], **spec)
    torch.manual_seed(seed)
    with torch.device(device):
        model = ArmoRMGatingRewardModel(config)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed + 1)
        model.regression_layer.weight.copy_(
            torch.randn(model.regression_layer.weight.shape, generator=generator) * head_std / config.hidden_size ** 0.5)
    return model.to(dtype).eval()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True, help="directory of the tokenizer (with its chat template)")
    p.add_argument("--spec", default="{}", help="JSON mapping of LlamaConfig / gating arguments")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (save_pretrained)")
    return p.parse_args(argv)


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(a.tokenizer)
    from workflow_scripts.core.models import job_device

    model = build_standin(tokenizer, json.loads(a.spec), a.seed, device=job_device())
    with AtomicDirectory(a.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    logger.info("ArmoRM STAND-IN (random init, seed %d, %.3fM parameters; for tests, not a result) -> %s",
                a.seed, sum(p.numel() for p in model.parameters()) / 1e6, a.out)


if __name__ == "__main__":
    run(main)
