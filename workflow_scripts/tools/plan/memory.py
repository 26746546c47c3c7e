"""Peak memory of one job per device, checked against the GPU's memory BEFORE anything is submitted.

A training job that does not fit fails minutes after it started, after its queue wait, on every seed;
the planner flags it at plan time with the knob that makes it fit. The model (an estimate, stated):

- training (DeepSpeed ZeRO-2, bf16 autocast over fp32 parameters, engine.py): fp32 parameters 4N and
  their bf16 autocast copies 2N on every rank, fp32 gradients and Adam's two moments (4N + 8N) sharded
  over the job's g ranks; activations of one micro-batch: per layer and token ``16 d + 8 d_ff`` bytes
  (Korthikanti et al.'s count, gated MLPs included; fp32 layer inputs ``4 d`` only under gradient
  checkpointing, plus one layer's full set), eager attention's scores ``6 heads L^2`` bytes per layer and
  sequence (the Wasserstein variants run eager: they need a double backward), the LM head's logits
  ``10 V`` bytes per scored position (bf16 logits, fp32 log-softmax and its gradient); the Wasserstein
  double backward keeps the input gradient's graph (activations x2); frozen models resident on every
  rank (online: the reference and the scorer) in bf16;
- inference: bf16 weights of every model loaded, the KV cache of one decode batch, one batch of logits;
- plus ``RESERVE_GB`` per device (CUDA context, allocator fragmentation).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from workflow_scripts.tools.plan.work import InferMemory, TrainMemory

RESERVE_GB = 2.0
GB = 1e9
MAX_GPUS = 8     # one node (jobs are single-node: docs/cluster.md)


@dataclass(frozen=True)
class Fit:
    peak_gb: float
    capacity_gb: float
    advice: str = ""          # empty when it fits

    @property
    def fits(self) -> bool:
        return self.peak_gb <= self.capacity_gb


def train_peak(m: TrainMemory, gpus: int, cpu: bool = False) -> float:
    """Bytes per device of a training job (module docstring)."""
    s, n = m.model, m.model.params
    g = max(1, gpus)
    states = 4 * n + (0 if cpu else 2 * n) + 12 * n / g
    seqs, L = m.micro_batch * m.per_item, m.length
    per_layer_token = 16 * s.d_model + 8 * s.d_ff
    if m.checkpointing:
        acts = seqs * L * (s.n_layer * 4 * s.d_model + per_layer_token)
        attn_layers = 1
    else:
        acts = seqs * L * s.n_layer * per_layer_token
        attn_layers = s.n_layer
    if m.eager_attention:
        acts += seqs * attn_layers * 6 * s.n_heads * L * L
    if m.double_backward:
        acts *= 2
    logits = seqs * m.logit_tokens * s.vocab * 10
    resident = sum(r.weight_bytes(4 if cpu else 2) for r in m.resident)
    return states + acts + logits + resident + RESERVE_GB * GB


def infer_peak(m: InferMemory, cpu: bool = False) -> float:
    weights = sum(r.weight_bytes(4 if cpu else 2) for r in m.models)
    first = m.models[0]
    kv = m.batch * m.length * first.kv_bytes_per_token(4 if cpu else 2)
    logits = m.batch * max(r.vocab for r in m.models) * 4
    return weights + kv + logits + RESERVE_GB * GB


def check(memory, gpus: int, capacity_gb: float, cpu: bool = False) -> Optional[Fit]:
    """Peak vs capacity, and for a training job that does not fit the first knob that makes it fit."""
    if memory is None:
        return None
    if isinstance(memory, InferMemory):
        peak = infer_peak(memory, cpu) / GB
        advice = "" if peak <= capacity_gb else \
            "the loaded models and one decode batch exceed the GPU: lower the batch_size"
        return Fit(peak, capacity_gb, advice)
    peak = train_peak(memory, gpus, cpu) / GB
    if peak <= capacity_gb:
        return Fit(peak, capacity_gb)
    return Fit(peak, capacity_gb, _advice(memory, gpus, capacity_gb, cpu))


def _advice(m: TrainMemory, gpus: int, capacity_gb: float, cpu: bool) -> str:
    fits = lambda mm, g: train_peak(mm, g, cpu) / GB <= capacity_gb  # noqa: E731
    micro = m.micro_batch
    while micro > 1:
        micro //= 2
        if fits(replace(m, micro_batch=micro), gpus):
            return f"{m.knobs}.micro_batch: {m.micro_batch} -> {micro}"
    if not m.checkpointing:
        on = replace(m, checkpointing=True)
        if fits(on, gpus):
            return f"{m.knobs}.gradient_checkpointing: true"
        micro = m.micro_batch
        while micro > 1:
            micro //= 2
            if fits(replace(on, micro_batch=micro), gpus):
                return f"{m.knobs}.gradient_checkpointing: true and micro_batch: {m.micro_batch} -> {micro}"
    for g in range(gpus + 1, MAX_GPUS + 1):
        if fits(m, g):
            return f"more GPUs per job: {g} (its `gpu` in the experiment's config section `cluster`)"
    return "does not fit even at micro_batch 1 with gradient checkpointing on 8 GPUs (ZeRO-3 / offload: unsupported)"
