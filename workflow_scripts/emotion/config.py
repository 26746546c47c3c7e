"""The emotion section of the config: its schema (``schema.yaml`` beside this file) and the checks a schema
cannot express. workflow_scripts/core/config merges the one and runs the other (every experiment's ``config``)."""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.core.config import read_schema
from workflow_scripts.core.config.checks import align_errors, align_procs, missing_directory, missing_splits


def schema() -> dict:
    """The schema of ``config["emotion"]``."""
    return read_schema(Path(__file__).with_name("schema.yaml"))


def _dataset_error(key: str, source: str, generated) -> str | None:
    """A local dataset must exist and hold train and validation; "generated" needs generate_dataset."""
    if source == "generated":
        return None if generated else f"config key '{key}' is 'generated' but 'emotion.generate_dataset' is not set"
    if missing_directory(source, (".jsonl", ".csv", ".parquet")):
        return f"config key '{key}': dataset directory {source!r} does not exist"
    path = Path(source).expanduser()
    missing = missing_splits(path, ("train", "validation")) if path.is_dir() else []
    if missing:
        return (f"config key '{key}': dataset directory {source!r} has no {' and no '.join(missing)} split "
                "(train.jsonl and validation.jsonl, or .csv / .parquet, are needed; test is optional)")
    return None


def errors(config: dict) -> list[str]:
    """The emotion checks a schema cannot express (one line each, in a fixed order)."""
    errors = []
    emotion = config["emotion"]
    first, second = emotion["mixture"]["objectives"]
    if first == second:
        errors.append(f"config key 'emotion.mixture.objectives' names the same objective twice ({first!r}); pick two different ones")
    problem = _dataset_error("emotion.dataset", emotion["dataset"], emotion.get("generate_dataset"))
    if problem:
        errors.append(problem)
    for stage in ("sft", "reward"):
        section = emotion[stage]
        procs = config["launch"]["cpu_procs"]["sft" if stage == "sft" else "reward_model"]
        g, m = section["global_batch"], section["micro_batch"]
        if g % (m * procs):
            errors.append(f"config key 'emotion.{stage}.global_batch' ({g}) must be divisible by micro_batch ({m}) "
                          f"x processes ({procs})")
    align = emotion["align"]
    errors += align_errors("emotion", align, align_procs(config, config["variants"]))
    # Training truncates prompt + completion to align.max_length: a completion that does not fit would be
    # scored (reward) on more text than the policy is trained on.
    longest = emotion["pairs"]["prompt_tokens"] + max(emotion["pairs"]["max_new_tokens"], align["max_new_tokens"])
    if longest > align["max_length"]:
        errors.append(f"config key 'emotion.align.max_length' ({align['max_length']}) must be >= pairs.prompt_tokens "
                      f"+ max_new_tokens ({longest}): completions would be cut in training but not when scored")
    if "online" in emotion["regimes"]:
        online = emotion["online"]["align"]
        errors += align_errors("emotion.online", online, align_procs(config, emotion["online"]["variants"]))
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
    return errors
