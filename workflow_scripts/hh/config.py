"""The hh section of the config: its schema (``schema.yaml`` beside this file) and the checks a schema
cannot express. workflow_scripts/core/config merges the one and runs the other (every experiment's ``config``)."""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.core.config import read_schema
from workflow_scripts.core.config.checks import align_errors, align_procs, fits_errors, missing_directory, missing_splits


def schema() -> dict:
    """The schema of ``config["hh"]``."""
    return read_schema(Path(__file__).with_name("schema.yaml"))


def errors(config: dict) -> list[str]:
    """The HH checks a schema cannot express (one line each, in a fixed order)."""
    hh = config["hh"]
    # The hh_align rule gives each job the template's per-variant process count (hh/workflow.py runs these variants).
    prefs = hh["preferences"]
    variants = set(hh["variants"] or config["variants"])
    if any(a != "mixture" for a in prefs["aggregations"]):
        variants |= set(prefs["pessimistic_variants"])
    errors = align_errors("hh", hh["align"], align_procs(config, sorted(variants)))
    errors += fits_errors("hh", hh["completions"], "hh.align", hh["align"])
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
        if missing_directory(data["source"]):
            errors.append(f"config key 'hh.data.source': dialogue directory {data['source']!r} does not exist")
        elif path.is_dir():
            for subset in data["subsets"]:
                missing = missing_splits(path / subset, ("train", "test"))
                if missing:
                    errors.append(f"config key 'hh.data.source': {data['source']!r} has no {' and no '.join(missing)} "
                                  f"split for subset {subset!r} ({subset}/train.jsonl[.gz] and {subset}/test.jsonl[.gz] "
                                  "are needed)")
    return errors
