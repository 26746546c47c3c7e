"""The ``hf`` backend: transformers ``generate`` with per-sample seeded draws.

Prompts sorted by length (fewer pad tokens), left padding, KV cache, restored order; the batch is the
stage's ``batch_size`` on CPU, and on a GPU the largest that the free memory holds (:mod:`.memory`'s
estimate, capped by ``max_batch``, halved on out-of-memory). Sampling goes through HF's greedy loop with
a logits processor that draws each row's token by inverse CDF from a counter-based uniform (hash of the
sample seed and the step, :mod:`.seeds`): temperature, then top-k, then top-p, as HF's warpers.
``compile``: static KV cache + ``torch.compile`` (CUDA only).
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

import torch

from workflow_scripts.core.sampling.memory import row_bytes
from workflow_scripts.core.sampling.protocol import Throughput, finish_call, log_total
from workflow_scripts.core.sampling.seeds import row_ids_of, row_keys, sample_seed, step_uniforms
from workflow_scripts.core.sampling.stops import cut_at_stop

logger = logging.getLogger("sampling")


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts padded on the left (every prompt ends at the same column, so the KV cache is used) and their
    attention mask."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s):
            ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s):] = 1
    return ids, mask


class RowSeededSampling:
    """A logits processor that turns HF's greedy loop into per-row seeded ancestral sampling.

    Each row's token is drawn by inverse CDF from :func:`step_uniforms` of its own key, after HF's
    warpers in HF's order (temperature, top-k, top-p); the chosen token gets score 0, the rest -inf,
    so greedy decoding takes it. ``temperature <= 0`` is greedy decoding.
    """

    def __init__(self, seeds: Sequence[int], prompt_width: int, *, temperature: float, top_k: int, top_p: float,
                 device):
        self.keys = row_keys(seeds, device)
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
        rows_of = row_ids_of(prompt_ids, row_ids)
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
        return finish_call(self, out, started, f"{desc} ({len(batches)} batch(es), up to {largest} prompts)")

    def close(self) -> None:
        log_total(self)
        self.model = None
        if self.on_gpu:
            torch.cuda.empty_cache()
