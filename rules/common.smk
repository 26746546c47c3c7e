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
from workflow_scripts.grid import expand_grid, format_radius, parse_hparam
from workflow_scripts.losses import VARIANTS

prepare_job_environment(workflow.basedir)

PRESET = config["preset"]
RESULTS = f"results/{PRESET}"
LOGS = f"logs/{PRESET}"
BENCHMARKS = f"benchmarks/{PRESET}"
EMOTION = f"{RESULTS}/emotion"
EMOTION_GRID = expand_grid(config["variants"], config["emotion"]["radii"], config["emotion"]["hparams"], config["seeds"])
#: Evaluation splits: radii and base hyperparameters are selected on validation, results reported on test.
EVAL_SPLITS = ["validation", "test"]


wildcard_constraints:
    variant="|".join(VARIANTS),
    radius=r"[0-9][0-9.e+-]*",
    hp=r"(eta|beta)[0-9][0-9.e+-]*",
    seed=r"\d+",
    data_seed=r"\d+",
    split="|".join(EVAL_SPLITS),


def cli_flags(section, keys=None, **renamed):
    """Config entries as command-line flags: `key: v` -> `--key v` (underscores become dashes; lists
    space-separated; values shell-quoted; null values left out, so the program's default applies).
    `keys` selects and orders; `renamed` maps key -> flag name."""
    import shlex

    keys = list(section) if keys is None else keys
    parts = []
    for key in keys:
        value = section[key]
        if value is None:
            continue
        flag = "--{}".format(renamed.get(key, key).replace("_", "-"))
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.append(" ".join([flag, *(shlex.quote(str(v)) for v in values)]))
    return " ".join(parts)


def hparam_flag(wildcards):
    """The base hyperparameter of an alignment job, from its `hp` wildcard: `--eta=10` or `--beta=0.1`."""
    name, value = parse_hparam(wildcards.hp)
    return f"--{name}={value:g}"


def train_flags(section):
    """A supervised trainer's flags (SFT, reward model): its config section, DeepSpeed and checkpointing."""
    return " ".join([
        cli_flags(section),
        cli_flags(config["deepspeed"]),
        cli_flags(config["checkpoint"], every_steps="checkpoint_every", keep="checkpoint_keep"),
    ])


def align_flags(experiment):
    """The flags every alignment job of an experiment shares: its align and losses sections, DeepSpeed and
    checkpointing (the variant, radius, base hyperparameter and seed come from the job's wildcards)."""
    section = config[experiment]
    return " ".join([cli_flags(section["losses"]), train_flags(section["align"])])


def run_label(wildcards):
    """How an evaluation job names the policy it scores in its rows: the alignment run, or the SFT baseline."""
    if "variant" not in wildcards.keys():
        return "--variant sft --radius 0 --hp sft"
    return f"--variant {wildcards.variant} --radius {wildcards.radius} --hp {wildcards.hp}"


def data_seed(experiment, seed):
    """The seed whose preference data a training seed uses: itself (per_seed), or the first seed."""
    section = config[experiment]["pairs" if experiment == "emotion" else "completions"]
    return int(seed) if section["per_seed"] else int(config["seeds"][0])


def data_seeds(experiment):
    return sorted({data_seed(experiment, s) for s in config["seeds"]})


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
# GPUs SLURM actually granted on the node (SLURM_GPUS_ON_NODE), else the `gpu` resource. One
# process runs as plain `python` (no torchrun agent: seconds saved per job); several under
# `torchrun --standalone` (single node, a free rendezvous port, so concurrent local jobs do not
# collide). The shell runs with `set -u`, hence ${VAR:-}.
LAUNCH = (
    "gpus={resources.gpu}; "
    'if [ "$gpus" -gt 0 ]; then nproc=${{SLURM_GPUS_ON_NODE:-$gpus}}; else nproc={resources.nproc}; fi; '
    'echo "launch: $nproc process(es); gpu resource $gpus, SLURM job ${{SLURM_JOB_ID:-none}}, '
    'CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" >&2; '
    "export OMP_NUM_THREADS=1; "
    'if [ "$nproc" -gt 1 ]; then launcher="python -m torch.distributed.run --standalone --nproc_per_node $nproc"; '
    "else launcher=python; fi; $launcher -m"
)


def run_path(row):
    """variant/radius/hp/seed: the canonical path of one alignment run."""
    return f"{row.variant}/{row.radius}/{row.hp}/{row.seed}"


def emotion_eval_csvs():
    rows = [f"{EMOTION}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in config["seeds"]]
    rows += [f"{EMOTION}/eval/{split}/{run_path(r)}.csv" for split in EVAL_SPLITS for r in EMOTION_GRID.itertuples()]
    return rows


def emotion_histories():
    return [f"{EMOTION}/align/{run_path(r)}/history.csv" for r in EMOTION_GRID.itertuples()]


def emotion_report_outputs():
    if not config["emotion"]["enabled"]:
        return []
    return expand(f"{RESULTS}/figures/{{name}}.{{ext}}", name=["emotion_alpha_sweep", "emotion_training"],
                  ext=["pdf", "png"]) + expand(f"{RESULTS}/tables/{{name}}.{{ext}}", name=["emotion_robustness", "emotion_verdict"],
                                       ext=["csv", "md", "tex"])


def emotion_pairs(wildcards):
    return f"{EMOTION}/pairs/{data_seed('emotion', wildcards.seed)}/train.parquet"


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
    if not rc_cfg("enabled"):
        return []
    return expand(f"{RESULTS}/figures/radius_coverage.{{ext}}", ext=["pdf", "png"]) + expand(
        f"{RESULTS}/tables/radius_coverage_rates.{{ext}}", ext=["csv", "md", "tex"]
    )


# ----------------------------------------------------------------------------- ArmoRM multi-objective alignment
from workflow_scripts.grid import training_pairs

ARMORM = f"{RESULTS}/armorm"
ARMORM_PAIRS = training_pairs(config["armorm"])
ARMORM_PAIR = {spec["name"]: spec for spec in ARMORM_PAIRS}
ARMORM_GRID = expand_grid(config["variants"], config["armorm"]["radii"], config["armorm"]["hparams"], config["seeds"])


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


def armorm_reward_flags(wildcards, input):
    """The reward-model flags of scoring and evaluation: which model, how it loads, how it batches."""
    source = input.reward_model if armorm_builds_reward_model() else armorm_cfg("reward_model")
    scoring = armorm_cfg("scoring")
    return " ".join([
        cli_flags({"reward_model": source, "allowlist": armorm_cfg("trust_remote_code_allowlist"),
                   "loader": armorm_cfg("reward_loader"), "dtype": armorm_cfg("reward_dtype")}),
        cli_flags(scoring, ["batch_size", "max_length"], batch_size="score_batch_size", max_length="score_max_length"),
    ])


def armorm_prefs_for_seed(wildcards):
    return f"{ARMORM}/prefs/{wildcards.pair}/{data_seed('armorm', wildcards.seed)}/train.parquet"


def armorm_run_label(wildcards):
    """The evaluation rows' labels: the training pair and alignment run, or the base policy."""
    return run_label(wildcards) + (f" --pair={wildcards.pair}" if "pair" in wildcards.keys() else "")


def armorm_eval_csvs():
    rows = [f"{ARMORM}/eval/{split}/sft/{seed}.csv" for split in EVAL_SPLITS for seed in config["seeds"]]
    rows += [
        f"{ARMORM}/eval/{split}/{pair['name']}/{run_path(r)}.csv"
        for split in EVAL_SPLITS
        for pair in ARMORM_PAIRS
        for r in ARMORM_GRID.itertuples()
    ]
    return rows


def armorm_histories():
    return [f"{ARMORM}/align/{pair['name']}/{run_path(r)}/history.csv" for pair in ARMORM_PAIRS for r in ARMORM_GRID.itertuples()]


def armorm_report_outputs():
    """The ArmoRM figures and table, when `armorm.enabled` (for `rule all`)."""
    if not config["armorm"]["enabled"]:
        return []
    return expand(f"{RESULTS}/figures/{{name}}.{{ext}}", name=["armorm_spider", "armorm_alpha_sweep", "armorm_training"],
                  ext=["pdf", "png"]) + expand(f"{RESULTS}/tables/armorm_objectives.{{ext}}", ext=["csv", "md", "tex"])


def shell_join(*parts):
    """One shell command from pieces (shared prefixes and argument groups), joined by spaces."""
    return " ".join(part.strip() for part in parts)
