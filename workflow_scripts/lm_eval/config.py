"""The lm_eval section of the config: its schema (``schema.yaml`` beside this file) and the checks a schema
cannot express. workflow_scripts/core/config merges the one and runs the other (every experiment's ``config``)."""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.core.config import read_schema


def schema() -> dict:
    """The schema of ``config["lm_eval"]``."""
    return read_schema(Path(__file__).with_name("schema.yaml"))


def errors(config: dict) -> list[str]:
    """The leaderboard stage's checks a schema cannot express (which runs exist, which tasks run)."""
    lm = config["lm_eval"]
    if not lm["enabled"]:
        return []
    errors = []
    unknown = sorted(set(lm["skip_tasks"]) - set(lm["tasks"]))
    if unknown:
        errors.append(f"config key 'lm_eval.skip_tasks' names {unknown}, not in lm_eval.tasks {lm['tasks']}")
    if not lm["demo_task"] and not set(lm["tasks"]) - set(lm["skip_tasks"]):
        errors.append("config key 'lm_eval.skip_tasks' skips every task of lm_eval.tasks")
    if isinstance(lm["armorm_pairs"], list) and "armorm" in lm["experiments"]:
        from workflow_scripts.core.grid import training_pairs

        names = [p["name"] for p in training_pairs(config["armorm"])]
        missing = sorted(set(lm["armorm_pairs"]) - set(names))
        if missing:
            errors.append(f"config key 'lm_eval.armorm_pairs' names {missing}; the training pairs are {names}")
    if "hh" in lm["experiments"]:
        hh, chosen = config["hh"], lm["hh_preferences"]
        for key, have in (("aggregations", hh["preferences"]["aggregations"]), ("scales", hh["preferences"]["scales"])):
            missing = sorted(set(chosen[key]) - set(have), key=str)
            if missing:
                errors.append(f"config key 'lm_eval.hh_preferences.{key}' names {missing}, not in hh.preferences.{key} "
                              f"{have}")
    include = lm["include_path"]
    if include and not Path(include).expanduser().is_dir():
        errors.append(f"config key 'lm_eval.include_path': task directory {include!r} does not exist")
    elif not lm["demo_task"]:
        from workflow_scripts.lm_eval.task_index import known_tasks

        try:
            known = known_tasks(include)
        except ValueError as problem:
            errors.append(f"config key 'lm_eval.enabled': {problem}")
        else:
            for i, task in enumerate(lm["tasks"]):
                if task not in known:
                    close = sorted(k for k in known if task.split("_")[0] in k)[:5]
                    errors.append(f"config key 'lm_eval.tasks[{i}]': the installed lm-eval knows no task {task!r}"
                                  + (f" (similar: {', '.join(close)})" if close else ""))
    return errors
