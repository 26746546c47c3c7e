"""Split sizes and mean lengths of each experiment's data, from the config and the table's ``datasets``.

The work models need how many prompts / texts / pairs a job processes and how long they are, before any
data exist (a plan is made before the data stage runs). Generated corpora (mini) take their sizes from
the config; hub datasets from the throughput table's dataset statistics; a local directory is assumed
to be the size of the hub dataset it replaces (said in the plan's notes).
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


def _stats(table: dict, experiment: str, source: str) -> tuple[dict, bool]:
    """The dataset's statistics, and whether they were found under its own name."""
    block = table["datasets"][experiment]
    if source in block:
        return block[source], True
    hub = next(k for k, v in block.items() if isinstance(v, dict) and k != "generated")
    return block[hub], False


def emotion(config: dict, table: dict) -> Splits:
    cfg = config["emotion"]
    frac = table["datasets"]["emotion"]["response_fraction"]
    if cfg["dataset"] == "generated":
        gen = cfg["generate_dataset"]
        stats = table["datasets"]["emotion"]["generated"]
        return Splits(gen["n_train"], gen["n_validation"], gen["n_test"], cfg["pairs"]["prompt_tokens"],
                      stats["text_tokens"], frac)
    stats, _ = _stats(table, "emotion", cfg["dataset"])
    return Splits(stats["train"], stats["validation"], stats["test"], cfg["pairs"]["prompt_tokens"],
                  stats["text_tokens"], frac)


def armorm(config: dict, table: dict) -> Splits:
    cfg, block = config["armorm"], table["datasets"]["armorm"]
    p = cfg["prompts"]
    if p["source"] == "generated":
        stats = block["generated"]
        train, test = p["n_train"], p["n_test"]
    else:
        stats, _ = _stats(table, "armorm", p["source"])
        train = p["n_train"] or stats["train"]
        test = p["n_test"] or stats["test"]
    prompt = min(stats["prompt_tokens"], cfg["completions"]["max_prompt_tokens"]) + block["template_tokens"]
    return Splits(train - p["n_validation"], p["n_validation"], test, prompt, prompt, block["response_fraction"])


def hh(config: dict, table: dict) -> Splits:
    cfg, block = config["hh"], table["datasets"]["hh"]
    d = cfg["data"]
    subsets = d["subsets"]
    if d["source"] == "generated":
        stats = block["generated"]
        per_train = {s: d["generate"]["n_train"] for s in subsets}
        per_test = {s: d["generate"]["n_test"] for s in subsets}
    else:
        stats, _ = _stats(table, "hh", d["source"])
        keep = stats["keep_fraction"] if d.get("filter_tokenizer") else 1.0
        per_train = {s: int(stats["train"][s] * keep) for s in subsets}
        per_test = {s: int(stats["test"][s] * keep) for s in subsets}
    kept = sum(min(n, d["n_train"]) if d["n_train"] else n for n in per_train.values())
    train = kept - d["n_validation"] * len(subsets)
    test = sum(min(n, d["n_test"]) if d["n_test"] else n for n in per_test.values())
    prompt = min(stats["prompt_tokens"], d["max_prompt_tokens"])
    return Splits(train, d["n_validation"] * len(subsets), test, prompt, stats["dialogue_tokens"],
                  block["response_fraction"])


SPLITS = {"emotion": emotion, "armorm": armorm, "hh": hh}


def splits(experiment: str, config: dict, table: dict) -> Splits:
    return SPLITS[experiment](config, table)
