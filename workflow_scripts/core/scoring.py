"""The Scorer protocol: every reward model of the project, seen one way.

A scorer maps (prompt, completion) texts to a DataFrame with one column per objective it knows
(``objectives``), in input order. The emotion classifier (five emotion probabilities), ArmoRM
(19 heads and its gated score) and the HH reward models all implement it, so pair building,
evaluation and the online regime of the alignment entry point accept any of them.

The online regime names its scorer on the command line as ``package.module:Class`` (the class's
``load(path, device, **options)`` builds it): the core never imports an experiment.
"""
from __future__ import annotations

import importlib
from typing import Protocol, Sequence, runtime_checkable

import pandas as pd


@runtime_checkable
class Scorer(Protocol):
    """Texts in, one named column per objective out."""

    objectives: Sequence[str]

    def score(self, prompts: Sequence[str], completions: Sequence[str], desc: str = "scoring") -> pd.DataFrame:
        """``len(prompts)`` rows, columns ``objectives`` (at least), in input order."""
        ...


def load_scorer(spec: str, path: str, device="cpu", **options) -> Scorer:
    """Build the scorer class named ``package.module:Class`` from ``path`` (its ``load`` classmethod)."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"a scorer is named 'package.module:Class', got {spec!r}.")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import the scorer {spec!r}: {error}") from error
    scorer = cls.load(path, device=device, **options)
    if not isinstance(scorer, Scorer):
        raise TypeError(f"{spec} does not implement the Scorer protocol (objectives, score(prompts, completions)).")
    return scorer


def check_scores(scores: pd.DataFrame, scorer: Scorer, n: int, objectives: Sequence[str] = ()) -> pd.DataFrame:
    """One line of error when a scorer returns the wrong number of rows or lacks an objective column."""
    if len(scores) != n:
        raise ValueError(f"{type(scorer).__name__} returned {len(scores)} rows for {n} texts.")
    missing = [o for o in objectives if o not in scores.columns]
    if missing:
        raise ValueError(f"{type(scorer).__name__} has no objective {missing}; it scores {list(scorer.objectives)}.")
    return scores
