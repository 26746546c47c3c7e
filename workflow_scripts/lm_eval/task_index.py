"""The task names the installed lm-evaluation-harness knows, without importing it (config load must stay fast).

``lm_eval.tasks.TaskManager()`` indexes its ~14 000 task YAMLs on construction (10-20 s on 2 cores), far too
slow for a check that runs whenever Snakemake parses the workflow. The names are the ``task:``, ``group:`` and
``tag:`` values of those YAML files, which a plain scan reads in about half a second; the result is cached per
harness version under ``.snakemake/`` of the working directory. A local ``include_path`` is scanned each time.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from importlib import metadata
from pathlib import Path

_NAME = re.compile(r"^\s*-?\s*(task|group|tag):\s*(.+?)\s*$", re.M)


def _scan(root: Path) -> set[str]:
    names: set[str] = set()
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith((".yaml", ".yml")):
                continue
            text = (Path(directory) / name).read_text(encoding="utf-8", errors="ignore")
            for _, value in _NAME.findall(text):
                if value.startswith("!"):           # a YAML tag (e.g. !function): not a name
                    continue
                items = value.strip("[]").split(",") if value.startswith("[") else [value]
                names.update(v.strip().strip("'\"") for v in items if v.strip())
    return names


def known_tasks(include_path: str | None = None, cache_dir: str | os.PathLike = ".snakemake") -> set[str]:
    """Every task / group / tag name of the installed harness (cached per version) and of ``include_path``."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or spec.origin is None:
        raise ValueError("lm-evaluation-harness is not installed (pip install -e .): the lm_eval stage needs it")
    version = metadata.version("lm_eval")
    cache = Path(cache_dir) / f"dro_rebel_lm_eval_tasks_{version}.json"
    try:
        names = set(json.loads(cache.read_text()))
    except (OSError, ValueError):
        names = _scan(Path(spec.origin).parent / "tasks")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(sorted(names)))
        except OSError:
            pass                                    # a read-only working directory: scan again next time
    if include_path:
        names |= _scan(Path(include_path).expanduser())
    return names
