# Config validation, the experiment grid and path helpers, shared by every rule file.
import json
import os
import sys

sys.path.insert(0, workflow.basedir)

from workflow_scripts.config import ConfigError, coerce_cli_strings, prepare_job_environment, validate_config

# Nested --config values (and a profile's `config:` mapping) arrive as strings: type them first.
coerce_cli_strings(config)
try:
    validate_config(config)
except ConfigError as error:
    # One line, no traceback, before any job is planned.
    sys.exit(f"Config error: {error}")


# Imported after validation: they load torch, and a config mistake should fail fast.
from workflow_scripts.grid import expand_grid, format_radius
from workflow_scripts.losses import VARIANTS

prepare_job_environment(workflow.basedir)

PRESET = config["preset"]
RESULTS = f"results/{PRESET}"
LOGS = f"logs/{PRESET}"
BENCHMARKS = f"benchmarks/{PRESET}"
EMOTION = f"{RESULTS}/emotion"
EMOTION_GRID = expand_grid(config["variants"], config["radii"], config["seeds"])


wildcard_constraints:
    variant="|".join(list(VARIANTS) + ["sft"]),
    radius=r"[0-9][0-9.e+-]*",
    seed=r"\d+",


def emotion_cfg(section):
    return config["emotion"][section]


def model_spec_arg(spec):
    """A model spec on the command line: hub id / path as is, a config mapping as JSON."""
    return json.dumps(spec, sort_keys=True) if isinstance(spec, dict) else str(spec)


def train_procs(stage, variant=None):
    """CPU processes of a training job (a GPU job uses its `gpu` resource instead)."""
    procs = config["launch"]["cpu_procs"][stage]
    if stage == "align" and variant in config["launch"]["align_two_process_variants"]:
        procs = 2
    return procs


# The launcher line of every training rule: one process per GPU the job was given, or
# `nproc` CPU processes (gloo) when it has none. Inside a SLURM GPU job step the count is the
# GPUs SLURM actually granted on the node (SLURM_GPUS_ON_NODE), else the `gpu` resource. The
# shell runs with `set -u`, hence ${VAR:-}. --standalone: single node, a free rendezvous port,
# so concurrent local jobs do not collide.
LAUNCH = (
    "gpus={resources.gpu}; "
    'if [ "$gpus" -gt 0 ]; then nproc=${{SLURM_GPUS_ON_NODE:-$gpus}}; else nproc={resources.nproc}; fi; '
    'echo "launch: $nproc process(es); gpu resource $gpus, SLURM job ${{SLURM_JOB_ID:-none}}, '
    'CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" >&2; '
    "export OMP_NUM_THREADS=1; "
    "python -m torch.distributed.run --standalone --nproc_per_node $nproc -m"
)


def emotion_eval_csvs():
    rows = [f"{EMOTION}/eval/sft/0/{seed}.csv" for seed in config["seeds"]]
    rows += [f"{EMOTION}/eval/{r.variant}/{r.radius}/{r.seed}.csv" for r in EMOTION_GRID.itertuples()]
    return rows


def emotion_report_outputs():
    return expand(f"{RESULTS}/figures/emotion_alpha_sweep.{{ext}}", ext=["pdf", "png"]) + expand(
        f"{RESULTS}/tables/emotion_robustness.{{ext}}", ext=["csv", "md", "tex"]
    )


def emotion_policy(wildcards):
    """The policy an evaluation job scores: the SFT model for the baseline, else an aligned one."""
    if wildcards.variant == "sft":
        return f"{EMOTION}/sft/model"
    return f"{EMOTION}/align/{wildcards.variant}/{wildcards.radius}/{wildcards.seed}/policy"


def canary_path():
    return f"{RESULTS}/canary/gpu_job.json"


def canary_input():
    """The canary as an extra input of GPU training rules, when `launch.canary` is on (SLURM profile)."""
    return {"canary": canary_path()} if config["launch"]["canary"] else {}


# ----------------------------------------------------------------------------- radius-coverage study
RADIUS_COVERAGE = f"{RESULTS}/radius_coverage"


def rc_cfg(key):
    return config["radius_coverage"][key]


def radius_coverage_constant(set_name, base):
    """The radius constant c of a set: one number, or one per base."""
    c = rc_cfg("c")[set_name]
    return c[base] if isinstance(c, dict) else c


def radius_coverage_csvs():
    return expand(f"{RADIUS_COVERAGE}/{{rc_set}}_{{rc_base}}.csv", rc_set=rc_cfg("sets"), rc_base=rc_cfg("bases"))


def radius_coverage_outputs():
    return expand(f"{RESULTS}/figures/radius_coverage.{{ext}}", ext=["pdf", "png"]) + expand(
        f"{RESULTS}/tables/radius_coverage_rates.{{ext}}", ext=["csv", "md", "tex"]
    )


# ----------------------------------------------------------------------------- ArmoRM multi-objective alignment
from workflow_scripts.grid import training_pairs

ARMORM = f"{RESULTS}/armorm"
ARMORM_PAIRS = training_pairs(config["armorm"])
ARMORM_PAIR = {spec["name"]: spec for spec in ARMORM_PAIRS}
ARMORM_GRID = expand_grid(config["variants"], config["armorm"]["radii"], config["seeds"])


def armorm_cfg(key):
    return config["armorm"][key]


def armorm_pair(wildcards):
    """The training pair named by the `pair` wildcard: {name, objectives, weights}."""
    if wildcards.pair not in ARMORM_PAIR:
        raise ValueError(f"unknown ArmoRM training pair {wildcards.pair!r}; configured: {sorted(ARMORM_PAIR)}")
    return ARMORM_PAIR[wildcards.pair]


def armorm_builds_reward_model():
    """The mini preset's reward model is a stand-in the workflow builds; the paper's is a hub id."""
    return isinstance(armorm_cfg("reward_model"), dict)


def armorm_reward_input():
    return {"reward_model": f"{ARMORM}/reward_model"} if armorm_builds_reward_model() else {}


def armorm_reward_source(wildcards, input):
    return input.reward_model if armorm_builds_reward_model() else armorm_cfg("reward_model")


def armorm_eval_csvs():
    rows = [f"{ARMORM}/eval/sft/0/{seed}.csv" for seed in config["seeds"]]
    rows += [
        f"{ARMORM}/eval/{pair['name']}/{r.variant}/{r.radius}/{r.seed}.csv"
        for pair in ARMORM_PAIRS
        for r in ARMORM_GRID.itertuples()
    ]
    return rows


def armorm_report_outputs():
    """The ArmoRM figures and table, when `armorm.enabled` (for `rule all`)."""
    if not config["armorm"]["enabled"]:
        return []
    return expand(f"{RESULTS}/figures/{{name}}.{{ext}}", name=["armorm_spider", "armorm_alpha_sweep"],
                  ext=["pdf", "png"]) + expand(f"{RESULTS}/tables/armorm_objectives.{{ext}}", ext=["csv", "md", "tex"])


def shell_join(*parts):
    """One shell command from pieces (shared prefixes and argument groups), joined by spaces."""
    return " ".join(part.strip() for part in parts)
