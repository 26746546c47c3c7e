"""Per-job cost: device count, compute seconds per phase (tokens / throughput), start-up, memory fit.

``compute_s`` is the throughput model's time for the job's tokens; ``seconds`` the predicted wall time
(start-up + compute, or the calibrated ``overhead + factor x compute`` of :mod:`.calibrate`). On a GPU
type the devices of a job are its ``gpu`` resource, planned with ``cluster.enabled`` (0: a CPU job, e.g. data
and reports); with
``--gpu cpu`` (a local run) they are the job's threads (its CPU processes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from workflow_scripts.tools.plan import memory
from workflow_scripts.tools.plan.dag import JobSpec
from workflow_scripts.tools.plan.throughput import Throughput
from workflow_scripts.tools.plan.inputs import Context
from workflow_scripts.tools.plan.work import Work, family_of, work_of


@dataclass
class JobEstimate:
    job: JobSpec
    work: Work
    on_gpu: bool                  # runs on GPUs of the given type (False: CPU partition / local CPU)
    compute_s: float
    startup_s: float
    phase_s: dict = field(default_factory=dict)   # phase -> compute seconds
    source: str = "estimate"      # estimate, measured (a table entry), calibrated
    seconds: float = 0.0
    fit: Optional[memory.Fit] = None
    notes: list = field(default_factory=list)

    @property
    def rule(self) -> str:
        return self.job.rule

    @property
    def family(self) -> str:
        return family_of(self.job.rule)

    @property
    def devices(self) -> int:
        return self.job.devices

    @property
    def device_hours(self) -> float:
        """GPU-hours (CPU-process-hours with --gpu cpu) of the job; 0 for a CPU job on a GPU cluster."""
        return self.seconds * self.devices / 3600 if self.on_gpu else 0.0

    def phase_shares(self) -> dict:
        """Predicted seconds per phase (calibration scales compute and start-up alike), start-up included."""
        total = self.compute_s + self.startup_s
        scale = self.seconds / total if total > 0 else 0.0
        shares = {p: s * scale for p, s in self.phase_s.items()}
        shares["start-up"] = self.startup_s * scale
        return shares


def _batch(phase, work: Work, capacity_gb: float) -> Optional[int]:
    """Sequences per decode step on a GPU: a sampler that sizes its batch to the memory (``phase.auto``)
    fills ``fraction`` of what the job's models leave free with KV caches of ``row_tokens``."""
    auto = phase.auto
    if phase.phase != "generation" or auto is None:
        return phase.batch
    free = auto.fraction * capacity_gb * 1e9 - sum(s.weight_bytes() for s in work.loads)
    per_row = auto.row_tokens * phase.model.kv_bytes_per_token() + phase.model.vocab * 4
    return int(max(1, min(auto.max_sequences, free // per_row)))


def estimate_jobs(ctx: Context, jobs: list[JobSpec], table: Throughput, gpu: str) -> list[JobEstimate]:
    table.check_gpu(gpu)
    cpu_mode = gpu == "cpu"
    capacity = float(table.gpus[gpu]["memory_gb"])
    out = []
    for job in jobs:
        if cpu_mode:
            job.devices = max(1, job.threads)
            on_gpu = True                     # "device" = a local CPU process: counted like a GPU
        else:
            job.devices = job.gpu
            on_gpu = job.devices > 0
        work = work_of(ctx, job)
        device = gpu if on_gpu else "cpu"
        est = JobEstimate(job, work, on_gpu, 0.0, 0.0, notes=list(work.notes))
        if job.benchmark is None:             # a target rule (all, emotion, ...): no command runs
            out.append(est)
            continue
        if work.phases and not on_gpu:
            est.notes.append("has model work but no GPU in the profile: costed on CPU")
        speedup = table.parallel(max(1, job.devices), work.training)
        for ph in work.phases:
            batch = _batch(ph, work, capacity) if device != "cpu" else ph.batch
            rate = table.rate(ph.model, ph.phase, device, ph.family, batch)
            if ph.phase == "generation":
                seconds = table.decode_seconds(ph.model, ph.tokens, device, rate, batch, ph.context) / speedup
            else:
                seconds = ph.tokens / (rate.tokens_per_s * speedup)
            est.phase_s[ph.phase] = est.phase_s.get(ph.phase, 0.0) + seconds
            if rate.source == "measured" and est.source == "estimate":
                est.source = "measured"
        if work.micro_batches:
            # Launch-bound small steps: a micro-batch takes at least micro_step_s (the GPU hides launches
            # behind larger steps, so this is a floor, not an addition).
            floor = table.model["micro_step_s"] * work.micro_batches / max(1, job.devices)
            busy = est.phase_s.get("train_step", 0.0) + est.phase_s.get("forward", 0.0)
            if floor > busy:
                est.phase_s["train_step"] = est.phase_s.get("train_step", 0.0) + floor - busy
        if work.cpu_seconds:
            est.phase_s["cpu"] = work.cpu_seconds
        est.compute_s = sum(est.phase_s.values())
        est.startup_s = table.startup(device, work.loads, on_gpu)
        est.seconds = est.compute_s + est.startup_s
        if on_gpu:
            est.fit = memory.check(work.memory, job.devices, capacity, cpu=cpu_mode)
        out.append(est)
    return out
