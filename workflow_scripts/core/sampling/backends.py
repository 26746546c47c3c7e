"""The backend names and :func:`make_sampler`, the one constructor every stage's sampler comes from."""
from __future__ import annotations

import os

import torch

from workflow_scripts.core.sampling.hf import HFSampler
from workflow_scripts.core.sampling.protocol import Sampler
from workflow_scripts.core.sampling.stops import stop_ids_of
from workflow_scripts.core.sampling.vllm import VLLMSampler, require_vllm

BACKENDS = ("hf", "vllm")


def make_sampler(backend: str, model_or_path, tokenizer, device, **options) -> Sampler:
    """A sampler for ``backend``: ``hf`` takes a loaded model or a directory (loaded for sampling: bf16 on a
    GPU, the fused attention kernel); ``vllm`` takes a directory. Options: ``batch_size``, ``auto_batch``,
    ``max_batch``, ``memory_fraction``, ``compile`` (hf); ``gpu_memory_utilization``, ``enforce_eager``,
    ``max_model_len`` and any other ``vllm.LLM`` argument (vllm)."""
    stops = options.pop("stop_ids", None)
    if backend == "hf":
        hf_keys = ("batch_size", "auto_batch", "max_batch", "memory_fraction", "compile")
        model = model_or_path
        if isinstance(model, (str, os.PathLike)):
            from workflow_scripts.core.models import load_sampling_policy

            model = load_sampling_policy(str(model), torch.device(device))
        return HFSampler(model, tokenizer.pad_token_id, stops if stops is not None else stop_ids_of(model, tokenizer),
                         device=device, tokenizer=tokenizer,
                         **{k: v for k, v in options.items() if k in hf_keys and v is not None})
    if backend == "vllm":
        require_vllm()
        if not isinstance(model_or_path, (str, os.PathLike)):
            raise ValueError("the vllm backend loads the policy itself: give it the model directory, not a model.")
        vllm_options = {k: v for k, v in options.items()
                        if k not in ("batch_size", "auto_batch", "max_batch", "memory_fraction", "compile")
                        and v is not None}
        return VLLMSampler(str(model_or_path), stops if stops is not None else stop_ids_of(model_or_path, tokenizer),
                           **vllm_options)
    raise ValueError(f"generation backend must be one of {BACKENDS}, got {backend!r}.")
