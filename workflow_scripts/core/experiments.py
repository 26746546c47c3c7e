"""The experiments of this workflow, found rather than listed: every subpackage of ``workflow_scripts`` other than
``core`` and ``tools``.

Core and the tools never name an experiment. Where they need one thing of every experiment (its config schema
and checks, its work models for the planner), the experiment provides it as a module of a conventional name in
its own package (``workflow_scripts/<experiment>/<kind>.py``) and :func:`experiment_modules` finds it: adding an
experiment touches its package, its rule file and the Snakefile, nothing here.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

import workflow_scripts

#: Subpackages that are not experiments.
NOT_EXPERIMENTS = frozenset({"core", "tools"})


def experiment_names() -> list[str]:
    """Every experiment package, sorted (a stable order for messages and merged schemas)."""
    return sorted(m.name for m in pkgutil.iter_modules(workflow_scripts.__path__)
                  if m.ispkg and m.name not in NOT_EXPERIMENTS)


def experiment_modules(kind: str) -> dict[str, ModuleType]:
    """``{experiment: workflow_scripts.<experiment>.<kind>}`` for every experiment that has such a module."""
    found = {}
    for name in experiment_names():
        module = f"workflow_scripts.{name}.{kind}"
        if importlib.util.find_spec(module) is not None:
            found[name] = importlib.import_module(module)
    return found
