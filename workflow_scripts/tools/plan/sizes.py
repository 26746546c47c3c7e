"""Split sizes and mean lengths of an experiment's data, as the work models need them.

The work models need how many prompts / texts / pairs a job processes and how long they are, before any
data exist (a plan is made before the data stage runs). Each experiment's ``plan`` module computes its
:class:`Splits` from the config and the throughput table's ``datasets`` statistics: generated corpora (mini)
take their sizes from the config, hub datasets from the table; a local directory is assumed to be the size
of the hub dataset it replaces (:func:`dataset_stats`; said in the plan's notes).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Splits:
    train: int          # training texts / prompts (after any validation hold-out)
    validation: int
    test: int
    prompt_tokens: float  # mean prompt (emotion: the prompt prefix) length
    text_tokens: float    # mean training text (emotion: a text; HH: a chosen dialogue)
    response_fraction: float


def dataset_stats(table: dict, experiment: str, source: str) -> tuple[dict, bool]:
    """The statistics of ``experiment``'s dataset ``source`` in the table's ``datasets``, and whether they were
    found under its own name (else: the experiment's hub dataset, which a local directory stands in for)."""
    block = table["datasets"][experiment]
    if source in block:
        return block[source], True
    hub = next(k for k, v in block.items() if isinstance(v, dict) and k != "generated")
    return block[hub], False
