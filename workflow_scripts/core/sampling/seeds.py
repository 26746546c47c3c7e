"""Per-sample seeds and the counter-based uniforms the hf sampler draws from.

Why per sample: a job that is killed and resumed must write the same rows. Seeding one global stream
per call would make a row depend on every row sampled before it and on the batch size. Here sample ``s``
of prompt ``i`` draws from its own seed :func:`sample_seed` ``(seed, row_ids[i], s)`` (``row_ids``
default to the positions in the call): its completion depends only on (call seed, row id, sample index,
prompt, model) -- not on the batch it lands in, the length sorting, the order of the call, or the batch
size the free GPU memory allowed. It holds exactly where the model's logits do not depend on the batch
either (fp32 on CPU); on a GPU, kernels chosen per batch shape change logits by rounding, which can flip
a near-tie.
"""
from __future__ import annotations

from typing import Sequence

import torch

#: Completions per prompt are at most this: sample seeds of one prompt are ``row seed + s``, row seeds
#: are multiples of it (vLLM derives the seeds of an ``n``-sample request as ``seed + k``).
MAX_SAMPLES_PER_PROMPT = 1024

_M64 = (1 << 64) - 1
_M32 = 0xFFFFFFFF


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


def row_ids_of(prompt_ids, row_ids) -> list[int]:
    """What seeds each prompt: its position in the call, or the caller's ``row_ids`` (e.g. a global index)."""
    if row_ids is None:
        return list(range(len(prompt_ids)))
    if len(row_ids) != len(prompt_ids):
        raise ValueError(f"{len(row_ids)} row ids for {len(prompt_ids)} prompts.")
    return [int(r) for r in row_ids]


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (C. Wellons' lowbias32 constants, both < 2**31) on int64 tensors holding
    values in [0, 2**32): every product stays below 2**63, so it is exact on any device."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _M32
    return x ^ (x >> 15)


def row_keys(seeds: Sequence[int], device) -> torch.Tensor:
    """One 32-bit key per row from its 64-bit sample seed: what :func:`step_uniforms` hashes with the step."""
    lo = torch.tensor([s & _M32 for s in seeds], dtype=torch.long, device=device)
    hi = torch.tensor([(s >> 32) & _M32 for s in seeds], dtype=torch.long, device=device)
    return _mix32(lo ^ _mix32(hi ^ 0x68E31DA4))


def step_uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform in [0, 1 - 2**-24] per row for decoding step ``step``: a function of (row key, step)."""
    h = _mix32(keys ^ _mix32(torch.full_like(keys, (step * 0x9E3779B9 + 0x1B56C4E9) & _M32)))
    return (h >> 8).double() / float(1 << 24)
