"""Config validation: the JSON schema plus the checks a schema cannot express.

Every problem becomes one line naming the key (``ConfigError``); the Snakefile prints it and
exits before any job is planned.
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ConfigError(ValueError):
    """A config mistake, described in one line that names the key."""


@lru_cache(maxsize=1)
def _schema() -> dict:
    """The schema, with the variant names taken from the loss registry (the one place they are listed)."""
    from workflow_scripts.core.losses.registry import VARIANTS

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    schema["$defs"]["variant"]["enum"] = list(VARIANTS)
    return schema


def _key(path) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


#: One sentence per JSON-schema keyword: {limit} is the schema's value, {got} the config's.
_TEMPLATES = {
    "enum": "must be one of {limit}, got {got!r}",
    "type": "must be of type {limit}, got {got!r}",
    "exclusiveMinimum": "must be > {limit}, got {got!r}",
    "minimum": "must be >= {limit}, got {got!r}",
    "maximum": "must be <= {limit}, got {got!r}",
    "minItems": "must list at least {limit} item(s), got {got!r}",
    "maxItems": "must list at most {limit} item(s), got {got!r}",
    "uniqueItems": "has duplicate entries: {got!r}",
}


def _describe(error) -> str:
    """One line for a jsonschema error."""
    key = _key(error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        where = f"{key}." if error.absolute_path else ""
        return f"unknown config key '{where}{extra[0]}' (a typo?); allowed keys here: {allowed}"
    if v == "required":
        return f"config key '{key}' is missing a required entry: {error.message.split(' is ')[0]}"
    if v == "oneOf":
        # the alternative that came closest (e.g. a list whose one entry is wrong): name that entry
        deepest = max(error.context or [], key=lambda e: len(e.absolute_path), default=None)
        if deepest is not None and len(deepest.absolute_path) > len(error.absolute_path):
            return _describe(deepest)
        return f"config key '{key}' has an invalid value {error.instance!r}: {error.schema.get('description', 'see the schema')}"
    if v in _TEMPLATES:
        return f"config key '{key}' " + _TEMPLATES[v].format(limit=error.validator_value, got=error.instance)
    return f"config key '{key}': {error.message}"


def _schema_errors(config: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    return [_describe(e) for e in errors]


def _armorm_errors(config: dict) -> list[str]:
    """The ArmoRM checks a schema cannot express."""
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
        looks_like_path = prompts["source"].startswith(("/", "./", "../", "~"))
        if not path.is_dir() and (looks_like_path or not _HUB_ID.match(prompts["source"])):
            errors.append(f"config key 'armorm.prompts.source': prompt directory {prompts['source']!r} does not exist")
        elif path.is_dir() and (_missing_splits(path, ("train",)) or
                                len(_missing_splits(path, ("test", "validation"))) == 2):
            errors.append(f"config key 'armorm.prompts.source': prompt directory {prompts['source']!r} needs a train "
                          "split and a test (or validation) split (.jsonl / .csv / .parquet)")
    if prompts["n_train"] and prompts["n_validation"] >= prompts["n_train"]:
        errors.append(f"config key 'armorm.prompts.n_validation' ({prompts['n_validation']}) must be smaller than "
                      f"n_train ({prompts['n_train']}): the validation prompts are held out of the training prompts")
    errors += _align_errors("armorm", section["align"], config["launch"]["cpu_procs"]["align"])
    errors += [e for e in [_fits_error("armorm", section["completions"], "armorm.align", section["align"])] if e]
    if "online" in section["regimes"]:
        errors += _align_errors("armorm.online", section["online"]["align"], config["launch"]["cpu_procs"]["align"])
        if section["online"]["align"]["regime"] != "online":
            errors.append("config key 'armorm.online.align.regime' must be 'online'")
    if section["align"]["regime"] != "offline":
        errors.append("config key 'armorm.align.regime' must be 'offline' (the online runner is armorm.online)")
    if section["evaluate"]["selection"] == "best" and section["evaluate"]["samples_per_prompt"] < 2:
        errors.append("config key 'armorm.evaluate.selection' is 'best', which needs samples_per_prompt >= 2")
    return errors


def _align_errors(experiment: str, align: dict, procs: int) -> list[str]:
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


def _fits_error(experiment: str, completions: dict, align_key: str, align: dict) -> str | None:
    """Training truncates prompt + response to align.max_length: a longer sampled pair would train on tokens its
    reward never scored all of (the reward is the full response's)."""
    longest = completions["max_prompt_tokens"] + completions["max_new_tokens"]
    if longest > align["max_length"]:
        return (f"config key '{align_key}.max_length' ({align['max_length']}) must be >= {experiment}.completions."
                f"max_prompt_tokens + max_new_tokens ({longest}): responses would be cut in training but not when scored")
    return None


def _missing_splits(directory: Path, splits) -> list[str]:
    """The splits among ``splits`` that have no file (``<split>.jsonl[.gz]/.csv/.parquet``) in ``directory``."""
    from workflow_scripts.core.workflow import split_files

    return [s for s in splits if not split_files(directory, s)]


def _dataset_error(key: str, source: str, generated: Any) -> str | None:
    if source == "generated":
        return None if generated else f"config key '{key}' is 'generated' but 'emotion.generate_dataset' is not set"
    path = Path(source).expanduser()
    if path.is_dir():
        missing = _missing_splits(path, ("train", "validation"))
        if missing:
            return (f"config key '{key}': dataset directory {source!r} has no {' and no '.join(missing)} split "
                    "(train.jsonl and validation.jsonl, or .csv / .parquet, are needed; test is optional)")
        return None
    looks_like_path = source.startswith(("/", "./", "../", "~")) or path.suffix in (".jsonl", ".csv", ".parquet")
    if looks_like_path or not _HUB_ID.match(source):
        return f"config key '{key}': dataset directory {source!r} does not exist"
    return None


def _radius_coverage_errors(section: dict) -> list[str]:
    """The radius-coverage checks a schema cannot express."""
    errors = []
    grid = section["n_grid"]
    if any(b <= a for a, b in zip(grid, grid[1:])):
        errors.append(f"config key 'radius_coverage.n_grid' must be strictly increasing, got {grid}")
    for name in section["sets"]:
        if name not in section["c"]:
            errors.append(f"config key 'radius_coverage.c' has no radius constant for the set {name!r}")
    if section["K"] < section["d"]:
        errors.append(f"config key 'radius_coverage.K' ({section['K']}) must be >= d ({section['d']}) "
                      "so that the atoms identify theta*")
    if sum(n >= section["fit_from"] for n in grid) < 2:
        errors.append(f"config key 'radius_coverage.fit_from' ({section['fit_from']}) leaves fewer than 2 "
                      f"sample sizes of n_grid {grid} to fit the tail slope on")
    return errors


def _semantic_errors(config: dict) -> list[str]:
    errors = []
    emotion = config["emotion"]
    first, second = emotion["mixture"]["objectives"]
    if first == second:
        errors.append(f"config key 'emotion.mixture.objectives' names the same objective twice ({first!r}); pick two different ones")
    problem = _dataset_error("emotion.dataset", emotion["dataset"], emotion.get("generate_dataset"))
    if problem:
        errors.append(problem)
    errors += _armorm_errors(config)
    two_procs = config["launch"]["align_two_process_variants"]
    for stage in ("sft", "reward"):
        section = emotion[stage]
        procs = config["launch"]["cpu_procs"]["sft" if stage == "sft" else "reward_model"]
        g, m = section["global_batch"], section["micro_batch"]
        if g % (m * procs):
            errors.append(f"config key 'emotion.{stage}.global_batch' ({g}) must be divisible by micro_batch ({m}) "
                          f"x processes ({procs})")
    align = emotion["align"]
    errors += _align_errors("emotion", align, max([config["launch"]["cpu_procs"]["align"]] + ([2] if two_procs else [])))
    # Training truncates prompt + completion to align.max_length: a completion that does not fit would be
    # scored (reward) on more text than the policy is trained on.
    longest = emotion["pairs"]["prompt_tokens"] + max(emotion["pairs"]["max_new_tokens"], align["max_new_tokens"])
    if longest > align["max_length"]:
        errors.append(f"config key 'emotion.align.max_length' ({align['max_length']}) must be >= pairs.prompt_tokens "
                      f"+ max_new_tokens ({longest}): completions would be cut in training but not when scored")
    if "online" in emotion["regimes"]:
        online = emotion["online"]["align"]
        errors += _align_errors("emotion.online", online, config["launch"]["cpu_procs"]["align"])
        if online["regime"] != "online":
            errors.append("config key 'emotion.online.align.regime' must be 'online'")
        if align["regime"] != "offline":
            errors.append("config key 'emotion.align.regime' must be 'offline' when emotion.regimes lists online "
                          "(the online grid is emotion.online)")
        if emotion["pairs"]["prompt_tokens"] + online["max_new_tokens"] > online["max_length"]:
            errors.append(f"config key 'emotion.online.align.max_length' ({online['max_length']}) must be >= "
                          f"pairs.prompt_tokens + max_new_tokens ({emotion['pairs']['prompt_tokens'] + online['max_new_tokens']}): "
                          "completions would be cut in training but not when scored")
    if emotion["tokenizer"] == "train-bpe" and not isinstance(emotion["policy_model"], dict):
        errors.append("config key 'emotion.tokenizer' is 'train-bpe', which only fits models built from a config "
                      "(emotion.policy_model must then be a mapping of GPT2Config arguments)")
    errors += _radius_coverage_errors(config["radius_coverage"])
    errors += _hh_errors(config)
    errors += _lm_eval_errors(config)
    return errors


def _hh_errors(config: dict) -> list[str]:
    """The HH checks a schema cannot express."""
    hh = config["hh"]
    errors = _align_errors("hh", hh["align"], config["launch"]["cpu_procs"]["align"])
    errors += [e for e in [_fits_error("hh", hh["completions"], "hh.align", hh["align"])] if e]
    rm = hh["reward_models"]
    if set(rm["pretrained"]) != set(rm["subsets"]):
        errors.append(f"config key 'hh.reward_models.pretrained' names objectives {sorted(rm['pretrained'])} but "
                      f"hh.reward_models.subsets names {sorted(rm['subsets'])}")
    unknown = sorted(set(rm["subsets"].values()) - set(hh["data"]["subsets"]))
    if unknown:
        errors.append(f"config key 'hh.reward_models.subsets' uses subset(s) {unknown} that hh.data.subsets lacks")
    names = [p["name"] for p in hh["policies"]]
    if len(set(names)) != len(names):
        errors.append(f"config key 'hh.policies' has duplicate names {names}")
    data = hh["data"]
    if data["source"] == "generated" and not data["generate"]:
        errors.append("config key 'hh.data.source' is 'generated' but 'hh.data.generate' is not set")
    elif data["source"] != "generated":
        path = Path(data["source"]).expanduser()
        looks_like_path = data["source"].startswith(("/", "./", "../", "~"))
        if path.is_dir():
            for subset in data["subsets"]:
                missing = _missing_splits(path / subset, ("train", "test"))
                if missing:
                    errors.append(f"config key 'hh.data.source': {data['source']!r} has no {' and no '.join(missing)} "
                                  f"split for subset {subset!r} ({subset}/train.jsonl[.gz] and {subset}/test.jsonl[.gz] "
                                  "are needed)")
        elif looks_like_path or not _HUB_ID.match(data["source"]):
            errors.append(f"config key 'hh.data.source': dialogue directory {data['source']!r} does not exist")
    return errors


def _lm_eval_errors(config: dict) -> list[str]:
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


def _resolve(schema: dict) -> dict:
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return _schema()["$defs"][ref.split("/")[-1]]
    return schema


def _coerce_scalar(value: str, kind: str | list | None):
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "integer" in kinds and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            pass
    return value


def coerce_cli_strings(config: dict) -> dict:
    """Type the strings Snakemake's ``--config`` leaves in nested values, following the schema.

    ``--config launch="{canary: true}"`` (and a profile's ``config:`` mapping, which becomes that)
    parses nested values with YAML's BaseLoader, so ``canary`` arrives as the string ``"True"``.
    Strings where the schema wants a boolean or a number are converted in place; anything else
    is left for :func:`validate_config` to report.
    """

    def walk(node, schema):
        schema = _resolve(schema)
        if isinstance(node, dict):
            props = schema.get("properties", {})
            for key, value in node.items():
                if key in props:
                    node[key] = walk(value, props[key])
            return node
        if isinstance(node, list) and "items" in schema:
            return [walk(v, schema["items"]) for v in node]
        if isinstance(node, str) and "type" in schema:
            return _coerce_scalar(node, schema["type"])
        return node

    return walk(config, _schema())


def validate_config(config: dict) -> None:
    """Raise :class:`ConfigError` with one line for the first problem found."""
    errors = _schema_errors(config)
    if not errors:
        errors = _semantic_errors(config)
    if errors:
        extra = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(errors[0] + extra)


def prepare_job_environment(basedir: str) -> None:
    """Make jobs run the interpreter Snakemake runs under, with this checkout importable.

    ``python`` in a rule's shell then resolves to the project's environment whether or not it
    is activated, and ``workflow_scripts`` imports even under ``--directory elsewhere``. Local
    and SLURM jobs inherit this environment (sbatch exports it by default).
    """
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bindir]:
        os.environ["PATH"] = os.pathsep.join([bindir] + path)
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if basedir not in pythonpath:
        os.environ["PYTHONPATH"] = os.pathsep.join([basedir] + pythonpath)
