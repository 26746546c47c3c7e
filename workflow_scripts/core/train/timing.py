"""Where a training job's wall time goes: its fixed cost, phase by phase, for ``run_info.json``.

Every training job pays a fixed cost (interpreter and imports, process group, model load, engine,
reference pass, saving) whatever the length of its training loop; on a CPU grid of short jobs that
cost, not the training, bounds how many seeds and steps fit. :class:`JobClock` measures it from the
moment the operating system started the process (so the interpreter and the imports before ``main``
count), one named phase at a time; ``run_info.json["timing"]`` holds the breakdown and
``fixed_seconds`` = total - training loop. ``workflow_scripts.tools.bench_startup`` compares that
figure with a bare ``import torch, transformers, deepspeed``.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

#: The phases in the order a job meets them (a job records those it has; ``training`` is the loop,
#: the only phase whose length grows with the number of steps). Imports a library makes lazily land in
#: the phase that triggers them: ``distributed_setup`` imports DeepSpeed, ``seeding`` torch's compiler
#: stack (``torch.use_deterministic_algorithms`` imports inductor's config; transformers' model classes
#: would import it anyway), ``model_load`` the model's architecture module.
PHASES = ("interpreter_and_imports", "distributed_setup", "seeding", "tokenizer_and_data", "model_load", "engine_init",
          "reference_pass", "training", "checkpoints", "evaluation", "final_save")
TRAINING = "training"


def process_start_time() -> float:
    """When this process was started (epoch seconds, 10 ms resolution), from the kernel's record."""
    import psutil       # a DeepSpeed dependency: always installed where training runs

    return psutil.Process().create_time()


class JobClock:
    """Wall-clock seconds per phase since the process started. Phases may repeat (they add up);
    ``checkpoints`` is carved out of ``training`` by :meth:`exclude`, so the loop's own time is exact."""

    def __init__(self) -> None:
        self.started = process_start_time()
        self.seconds: dict[str, float] = {"interpreter_and_imports": max(0.0, time.time() - self.started)}
        self._excluded = 0.0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; expected one of {PHASES}")
        begin, excluded = time.perf_counter(), self._excluded
        try:
            yield
        finally:
            # time spent in an excluded sub-phase (a checkpoint inside the loop) is not the loop's
            spent = time.perf_counter() - begin - (self._excluded - excluded)
            self.seconds[name] = self.seconds.get(name, 0.0) + spent

    @contextlib.contextmanager
    def exclude(self, name: str) -> Iterator[None]:
        """A sub-phase inside another one (checkpoints inside the training loop): counted as ``name``."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - begin
            self._excluded += spent
            self.seconds[name] = self.seconds.get(name, 0.0) + spent

    def report(self) -> dict:
        """``timing`` (seconds per phase, ``other`` = what no phase covers, ``total``) and ``fixed_seconds``."""
        total = time.time() - self.started
        phases = {name: round(self.seconds[name], 3) for name in PHASES if name in self.seconds}
        phases["other"] = round(max(0.0, total - sum(self.seconds.values())), 3)
        phases["total"] = round(total, 3)
        return {"timing": phases, "fixed_seconds": round(total - self.seconds.get(TRAINING, 0.0), 3)}


class _NoClock:
    """Stands in for a :class:`JobClock` where nobody measures (library use, tests)."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield

    exclude = phase


NO_CLOCK = _NoClock()
