"""Checks that several experiments' config sections share (each experiment's ``config.errors`` calls them).

Every function returns one-line messages naming the key, in the form :func:`workflow_scripts.core.config.validate_config`
reports; the caller passes the key prefix, since only it knows where its section sits in the config.
"""
from __future__ import annotations

import re
from pathlib import Path

#: A hub id (``name`` or ``owner/name``): a data source that is neither a directory nor this is a typo.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def align_procs(config: dict, variants) -> int:
    """The most CPU processes an alignment job of the ``align`` template runs on over ``variants``, as the rules
    give them (``Workflow.procs``): 2 for a variant in ``launch.align_two_process_variants``, else
    ``launch.cpu_procs.align``. The batch arithmetic is checked against it, so a grid whose two-process variant cannot
    split its batch stops at config load, not in a job's DeepSpeed assertion hours later."""
    launch = config["launch"]
    return max(2 if v in launch["align_two_process_variants"] else launch["cpu_procs"]["align"] for v in variants)


def align_errors(experiment: str, align: dict, procs: int) -> list[str]:
    """The alignment section's batch arithmetic and iteration structure (every experiment)."""
    from workflow_scripts.core.train.schedule import check_iteration_structure

    key = f"{experiment}.align"
    errors = []
    g, m = align["global_batch"], align["micro_batch"]
    if g % (m * procs):
        errors.append(f"config key '{key}.global_batch' ({g}) must be divisible by micro_batch ({m}) x processes ({procs})")
    try:
        check_iteration_structure(align["anchor"], align["iteration_batch"], g, align["updates_per_iteration"])
    except ValueError as problem:
        field = "iteration_batch" if "multiple" in str(problem) else "anchor"
        errors.append(f"config key '{key}.{field}': {str(problem).rstrip('.')}")
    if align["regime"] == "online" and align["iterations"] <= 0:
        errors.append(f"config key '{key}.iterations' must be > 0 in the online regime")
    return errors


def fits_errors(experiment: str, completions: dict, align_key: str, align: dict) -> list[str]:
    """Training truncates prompt + response to align.max_length: a longer sampled pair would train on tokens its
    reward never scored all of (the reward is the full response's)."""
    longest = completions["max_prompt_tokens"] + completions["max_new_tokens"]
    if longest > align["max_length"]:
        return [f"config key '{align_key}.max_length' ({align['max_length']}) must be >= {experiment}.completions."
                f"max_prompt_tokens + max_new_tokens ({longest}): responses would be cut in training but not when scored"]
    return []


def missing_splits(directory: Path, splits) -> list[str]:
    """The splits among ``splits`` that have no file (``<split>.jsonl[.gz]/.csv/.parquet``) in ``directory``."""
    from workflow_scripts.core.workflow import split_files

    return [s for s in splits if not split_files(directory, s)]


def missing_directory(source: str, file_suffixes: tuple[str, ...] = ()) -> bool:
    """Whether a data source names no local directory and cannot be a hub id either: it is written as a path
    (``/``, ``./``, ``../``, ``~``, or ends in one of ``file_suffixes``) or is no valid hub id.

    A source that is no directory but could be a hub id is left to the job that downloads it.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return False
    looks_like_path = source.startswith(("/", "./", "../", "~")) or path.suffix in file_suffixes
    return looks_like_path or not HUB_ID.match(source)
