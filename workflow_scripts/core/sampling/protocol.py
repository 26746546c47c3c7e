"""The interface every backend follows (:class:`Sampler`) and its tokens/s bookkeeping (:class:`Throughput`)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

logger = logging.getLogger("sampling")


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


def finish_call(sampler, out: list[list[int]], started: float, desc: str) -> list[list[int]]:
    """Count a finished ``sample`` call into the sampler's total and log its own tokens/s line."""
    seconds = time.perf_counter() - started
    sampler.throughput.add(out, seconds)
    logger.info(Throughput().add(out, seconds).line(sampler.backend, desc))
    return out


def log_total(sampler) -> None:
    """The job's tokens/s over all its calls (logged when the sampler closes)."""
    if sampler.throughput.calls:
        logger.info(sampler.throughput.line(sampler.backend, f"generation, job total over {sampler.throughput.calls} "
                                                             "call(s)"))
