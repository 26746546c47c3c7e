"""The armorm section of the config: its schema (``schema.yaml`` beside this file) and the checks a schema
cannot express. workflow_scripts/core/config merges the one and runs the other (every experiment's ``config``)."""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.core.config import read_schema
from workflow_scripts.core.config.checks import align_errors, fits_errors, missing_directory, missing_splits


def schema() -> dict:
    """The schema of ``config["armorm"]``."""
    return read_schema(Path(__file__).with_name("schema.yaml"))


def errors(config: dict) -> list[str]:
    """The ArmoRM checks a schema cannot express (one line each, in a fixed order)."""
    from workflow_scripts.core.grid import format_pair

    section = config["armorm"]
    errors = []
    names: dict[str, int] = {}
    for i, spec in enumerate(section["training_pairs"]):
        key = f"armorm.training_pairs[{i}]"
        first, second = spec["objectives"]
        if first == second:
            errors.append(f"config key '{key}.objectives' names the same objective twice ({first!r}); "
                          "pick two different ones")
        weights = spec.get("weights", [0.5, 0.5])
        if abs(sum(weights) - 1.0) > 1e-9:
            errors.append(f"config key '{key}.weights' must sum to 1, got {weights}")
        name = format_pair(spec["objectives"], weights, spec.get("id"))
        if name in names:
            errors.append(f"config key '{key}' has the same name {name!r} as armorm.training_pairs[{names[name]}]; "
                          "give one an 'id'")
        names.setdefault(name, i)
    prompts = section["prompts"]
    if prompts["source"] == "generated":
        if min(prompts["n_train"], prompts["n_test"]) <= 0:
            errors.append("config key 'armorm.prompts.source' is 'generated', which needs n_train and n_test > 0")
    else:
        path = Path(prompts["source"]).expanduser()
        if missing_directory(prompts["source"]):
            errors.append(f"config key 'armorm.prompts.source': prompt directory {prompts['source']!r} does not exist")
        elif path.is_dir() and (missing_splits(path, ("train",)) or
                                len(missing_splits(path, ("test", "validation"))) == 2):
            errors.append(f"config key 'armorm.prompts.source': prompt directory {prompts['source']!r} needs a train "
                          "split and a test (or validation) split (.jsonl / .csv / .parquet)")
    if prompts["n_train"] and prompts["n_validation"] >= prompts["n_train"]:
        errors.append(f"config key 'armorm.prompts.n_validation' ({prompts['n_validation']}) must be smaller than "
                      f"n_train ({prompts['n_train']}): the validation prompts are held out of the training prompts")
    errors += align_errors("armorm", section["align"], config["launch"]["cpu_procs"]["align"])
    errors += fits_errors("armorm", section["completions"], "armorm.align", section["align"])
    if "online" in section["regimes"]:
        errors += align_errors("armorm.online", section["online"]["align"], config["launch"]["cpu_procs"]["align"])
        if section["online"]["align"]["regime"] != "online":
            errors.append("config key 'armorm.online.align.regime' must be 'online'")
    if section["align"]["regime"] != "offline":
        errors.append("config key 'armorm.align.regime' must be 'offline' (the online runner is armorm.online)")
    if section["evaluate"]["selection"] == "best" and section["evaluate"]["samples_per_prompt"] < 2:
        errors.append("config key 'armorm.evaluate.selection' is 'best', which needs samples_per_prompt >= 2")
    return errors
