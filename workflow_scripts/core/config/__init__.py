"""Config validation: the JSON schema plus the checks a schema cannot express.

The schema is composed: ``schema.yaml`` here holds the keys every experiment shares and the shared ``$defs``;
each experiment's ``workflow_scripts/<experiment>/config.py`` gives the schema of its own section
(``schema()``, merged into ``properties`` and ``required``, its ``$defs`` beside the shared ones) and its checks
(``errors(config)``, run after the schema passes, experiments in name order). Every problem becomes one line
naming the key (``ConfigError``); the Snakefile prints it and exits before any job is planned.
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


class ConfigError(ValueError):
    """A config mistake, described in one line that names the key."""


def read_schema(path: Path) -> dict:
    """A schema file (libyaml's parser where PyYAML has it: the workflow reads these on every load)."""
    import yaml

    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@lru_cache(maxsize=1)
def _schema() -> dict:
    """The workflow's schema: the shared keys, each experiment's section, the variant names taken from the loss
    registry (the one place they are listed)."""
    from workflow_scripts.core.experiments import experiment_modules
    from workflow_scripts.core.losses.registry import VARIANTS

    schema = read_schema(SCHEMA_PATH)
    schema["$defs"]["variant"]["enum"] = list(VARIANTS)
    for name, module in experiment_modules("config").items():
        section = module.schema()
        for def_name, definition in section.pop("$defs", {}).items():
            if def_name in schema["$defs"]:
                raise ValueError(f"the schema of {name} redefines $defs/{def_name}")
            schema["$defs"][def_name] = definition
        schema["properties"][name] = section
        schema["required"].append(name)
    return schema


def _semantic_errors(config: dict) -> list[str]:
    """The shared keys' checks a schema cannot express, then every experiment's, experiments in name order."""
    from workflow_scripts.core.experiments import experiment_modules

    return _canary_errors(config) + [e for module in experiment_modules("config").values()
                                     for e in module.errors(config)]


def _canary_errors(config: dict) -> list[str]:
    """``cluster.canary.like`` must name a job kind some experiment's ``cluster`` section defines: the canary is
    launched like it, and an unknown name would otherwise fail only on the cluster, when the DAG is built."""
    like = config["cluster"]["canary"]["like"]
    experiment, _, kind = like.partition(".")
    if kind in ((config.get(experiment) or {}).get("cluster") or {}):
        return []
    return [f"config key 'cluster.canary.like' ({like!r}) names no job kind of an experiment's cluster section "
            "(<experiment>.<kind>, e.g. the alignment jobs the canary stands for)"]


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


def _schema_errors(config: dict, cache_dir: str | os.PathLike = ".snakemake") -> list[str]:
    """The schema's verdict, one line per problem, the shallowest key first.

    Snakemake validates on every load (each dry run, each job's own parse), and importing jsonschema is most of
    that cost. A config that passed is marked under ``cache_dir`` by the digest of what decides the verdict (the
    config, the merged schema, the jsonschema version); the same config later passes without jsonschema. Only
    passes are marked: a failing config is always validated, so its messages are jsonschema's.
    """
    mark = Path(cache_dir) / "dro_rebel_valid_configs" / _digest(config)
    if mark.exists():
        return []
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except OSError:
            pass                                    # a read-only working directory: validate again next time
    return [_describe(e) for e in errors]


def _digest(config: dict) -> str:
    """A digest of the config, the merged schema and the jsonschema version. Values the schema might tell apart
    have different JSON text (1, true and "1"; a YAML date is its repr), so they never share a mark."""
    import hashlib
    import json
    from importlib import metadata

    text = json.dumps([config, _schema(), metadata.version("jsonschema")], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


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
