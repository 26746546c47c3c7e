"""The command line of every sampling job: the sampling and ``generation:`` flags, and the sampler they ask for."""
from __future__ import annotations

import argparse
import sys

from workflow_scripts.core.sampling.backends import BACKENDS, make_sampler
from workflow_scripts.core.sampling.protocol import Sampler
from workflow_scripts.core.sampling.vllm import VLLM_MISSING

#: Arguments that only size the work (batch, memory share), not the rows: left out of shard manifests.
CAPACITY_ARGS = ("hf_auto_batch", "hf_max_batch", "hf_memory_fraction", "vllm_gpu_memory_utilization")


def _bool(text: str) -> bool:
    if str(text).lower() in ("true", "1", "yes"):
        return True
    if str(text).lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_sampling_args(parser: argparse.ArgumentParser, *, temperature: float, max_new_tokens: int,
                      max_prompt_tokens: int, batch_size: int) -> None:
    """The sampling flags of the chat stages (ArmoRM and HH completions and evaluation; their config
    sections' keys), then the generation backend's (:func:`add_generation_args`)."""
    parser.add_argument("--temperature", type=float, default=temperature)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--max-prompt-tokens", type=int, default=max_prompt_tokens,
                        help="the prompt text is cut to this many tokens (before any chat template)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="prompts per generate() call")
    add_generation_args(parser)


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    """The ``generation:`` config block as flags (built by ``Workflow.generation_flags``)."""
    g = parser.add_argument_group("generation backend (config: generation)")
    g.add_argument("--generation-backend", default="hf", choices=BACKENDS)
    g.add_argument("--hf-auto-batch", type=_bool, default=True,
                   help="on a GPU, the largest batch the free memory holds (else --batch-size)")
    g.add_argument("--hf-max-batch", type=int, default=512, help="cap of the automatic batch (prompts)")
    g.add_argument("--hf-memory-fraction", type=float, default=0.8, help="share of the free GPU memory to fill")
    g.add_argument("--hf-compile", type=_bool, default=False, help="static KV cache + torch.compile (CUDA only)")
    g.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.8)
    g.add_argument("--vllm-enforce-eager", type=_bool, default=False, help="no CUDA graphs (faster start)")
    g.add_argument("--vllm-max-model-len", type=int, default=None, help="default: the model's context")


def sampler_from_args(args: argparse.Namespace, model_or_path, tokenizer, device, *, batch_size: int,
                      stop_ids=None) -> Sampler:
    """The sampler a CLI's generation flags ask for; a backend that cannot start stops the job with one line."""
    backend = args.generation_backend
    options = dict(batch_size=batch_size, auto_batch=args.hf_auto_batch, max_batch=args.hf_max_batch,
                   memory_fraction=args.hf_memory_fraction, compile=args.hf_compile, stop_ids=stop_ids)
    if backend == "vllm":
        options = dict(gpu_memory_utilization=args.vllm_gpu_memory_utilization,
                       enforce_eager=args.vllm_enforce_eager, max_model_len=args.vllm_max_model_len,
                       stop_ids=stop_ids)
    try:
        return make_sampler(backend, model_or_path, tokenizer, device, **options)
    except ValueError as error:
        if str(error) == VLLM_MISSING:
            sys.exit(VLLM_MISSING)
        raise
