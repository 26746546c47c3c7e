"""What the rule files share, as plain Python (imported by rules/common.smk while Snakemake plans).

Keeping these out of the .smk files keeps the rule files rules-only and lets the helpers be
unit-tested. Nothing here imports torch or pandas: planning a grid must stay fast.

- :data:`LAUNCH` / :func:`launch`: the ONE launcher line of every job that may run several processes;
- :func:`cli_flags`: a config section as command-line flags (every rule builds its flags with it);
- :class:`Workflow`: the config-bound helpers (grid, flags of trainers and alignment jobs, resources, and the
  outputs / log / benchmark of a templated job, derived from one path);
- input/params functions Snakemake calls with a job's wildcards: :func:`hparam_flag`, :func:`run_label`,
  :func:`output_stem`.
"""
from __future__ import annotations

import itertools
import json
import os
import shlex
from typing import Any, Mapping

from snakemake.io import directory

from workflow_scripts.core.grid import Run, expand_grid, parse_hparam

#: Evaluation splits: radii and base hyperparameters are selected on validation, results reported on test.
EVAL_SPLITS = ("validation", "test")

# The launcher of every job that may use several processes: one per GPU the job was given, or `nproc`
# CPU processes (gloo) when it has none. Inside a SLURM GPU job step the count is the GPUs SLURM actually
# granted on the node (SLURM_GPUS_ON_NODE), else the `gpu` resource. One process runs as plain `python`
# (no torchrun agent: seconds saved per job); several under `torchrun --standalone` (single node, a free
# rendezvous port, so concurrent local jobs do not collide), each with its share of the job's threads.
# The shell runs with `set -u`, hence ${VAR:-}. Placeholders are Snakemake's ({resources.gpu}, ...).
LAUNCH = (
    "gpus={resources.gpu}; "
    'if [ "$gpus" -gt 0 ]; then nproc=${{SLURM_GPUS_ON_NODE:-$gpus}}; else nproc={resources.nproc}; fi; '
    'echo "launch: $nproc process(es); gpu resource $gpus, SLURM job ${{SLURM_JOB_ID:-none}}, '
    'CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" >&2; '
    "threads=$(( {threads} / nproc )); export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 )); "
    'if [ "$nproc" -gt 1 ]; then launcher="python -m torch.distributed.run --standalone --nproc_per_node $nproc"; '
    "else launcher=python; fi; $launcher -m"
)


def launch(command: str) -> str:
    """A rule's shell line: the launcher, then ``command`` (a module and its arguments)."""
    return f"{LAUNCH} {command}"


def cli_flags(section: Mapping[str, Any], keys=None, **renamed) -> str:
    """Config entries as command-line flags: ``key: v`` -> ``--key v`` (underscores become dashes; lists
    space-separated; values shell-quoted; booleans as ``true`` / ``false``; null values left out, so the
    program's default applies).
    ``keys`` selects and orders; ``renamed`` maps key -> flag name."""
    keys = list(section) if keys is None else keys
    parts = []
    for key in keys:
        value = section[key]
        if value is None:
            continue
        flag = "--{}".format(renamed.get(key, key).replace("_", "-"))
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.append(" ".join([flag, *(shlex.quote(str(v).lower() if isinstance(v, bool) else str(v))
                                       for v in values)]))
    return " ".join(parts)


def model_spec_arg(spec) -> str:
    """A model spec on the command line: hub id / path as is, a config mapping as JSON."""
    return json.dumps(spec, sort_keys=True) if isinstance(spec, dict) else str(spec)


# ----------------------------------------------------------------------------- local data sources
#: File formats of local data splits.
DATA_FORMATS = ("jsonl", "jsonl.gz", "csv", "parquet")


def split_files(directory, split: str) -> list[str]:
    """The files that hold ``split`` in a local data directory (``<split>.jsonl``, ``.jsonl.gz``, ``.csv`` or
    ``.parquet``): a rule lists them as inputs, so editing one reruns what depends on it."""
    from pathlib import Path

    base = Path(directory).expanduser()
    return [str(base / f"{split}.{fmt}") for fmt in DATA_FORMATS if (base / f"{split}.{fmt}").is_file()]


def local_directory(source) -> bool:
    """Whether a data source names an existing local directory (else a hub id or "generated")."""
    from pathlib import Path

    return source not in (None, "generated") and Path(str(source)).expanduser().is_dir()


#: The commands each cluster executor plugin calls on the submit host.
SCHEDULER_COMMANDS = {"slurm": ("sbatch", "sacct", "squeue", "scancel")}


def missing_scheduler_commands(executor: str | None) -> str | None:
    """A one-line reason not to start, when the executor's scheduler commands are not on PATH (e.g. ``--profile
    slurm`` on a laptop: without this, every job's submission fails after retries, one by one)."""
    import shutil

    needed = SCHEDULER_COMMANDS.get(executor or "", ())
    missing = [c for c in needed if shutil.which(c) is None]
    if not missing:
        return None
    return (f"the {executor} executor needs {', '.join(needed)} on PATH, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: run on the cluster's login node, or leave out "
            f"--profile {executor} (profiles/local runs here)")


def cluster_off_problem(executor: str | None, config: Mapping[str, Any]) -> str | None:
    """A one-line reason not to start, when a cluster executor would submit GPU jobs without their GPUs: the rules
    ask for GPUs only with ``cluster.enabled``, which profiles/slurm sets in its ``config:``, and a ``--config`` on
    the command line replaces that whole mapping (Snakemake's rule for a profile's options)."""
    if executor not in SCHEDULER_COMMANDS or config["cluster"]["enabled"]:
        return None
    return (f"the {executor} executor runs with cluster.enabled false, so every GPU job would ask for no GPU: "
            "a --config on the command line replaces the profile's config (cluster, launch); add "
            "cluster='{enabled: true}' launch='{canary: true}' to it, or put the overrides in a --configfile")


# ----------------------------------------------------------------------------- functions of a job
def hparam_flag(wildcards) -> str:
    """The base hyperparameter of an alignment job, from its ``hp`` wildcard: ``--eta=10`` or ``--beta=0.1``."""
    name, value = parse_hparam(wildcards.hp)
    return f"--{name}={value:g}"


def run_label(wildcards) -> str:
    """How an evaluation job names the policy it scores in its rows: the alignment run, or the SFT baseline."""
    if "variant" not in wildcards.keys():
        return "--variant sft --radius 0 --hp sft"
    return f"--variant {wildcards.variant} --radius {wildcards.radius} --hp {wildcards.hp}"


class _InputName(str):
    """One named input in place of its path(s): a string, and, where a flags function zips a list-valued input
    with config keys, that same string for every element."""

    def __iter__(self):
        return itertools.repeat(str(self))


class _InputPaths:
    """A job's input as a params function sees it, every path replaced by its name (``<input.reward_model>``)."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        return _InputName(f"<input.{name}>")

    __getitem__ = __getattr__


def settings_of(flags_function):
    """A params function of the wildcards alone: what ``flags_function(wildcards, input)`` makes of the config,
    with the input paths left out.

    Snakemake reruns a job whose params changed, but it deems a params function that reads ``input`` derived
    from the inputs and leaves it out of that check: without this, a changed config section (an alignment's
    epochs, an evaluation's prompt count) would not rerun the jobs whose flags come from it, and their old
    results would stand for the new config. Each rule with such flags declares ``settings=settings_of(...)``.
    """

    def settings(wildcards) -> str:
        return flags_function(wildcards, _InputPaths())

    return settings


def output_stem(name: str):
    """A params function: the path of output ``name`` (one file, or the first of a multiext group) without
    its extension; reports write ``<stem>.csv/.md/.tex`` or ``<stem>.pdf/.png`` from it."""

    def stem(wildcards, output):
        value = output[name]
        return os.path.splitext(value if isinstance(value, str) else value[0])[0]

    return stem


def input_parent(name: str):
    """A params function: the directory of input ``name`` (one file, or the first of a list)."""

    def parent(wildcards, input):
        value = input[name]
        return os.path.dirname(value if isinstance(value, str) else value[0])

    return parent


# ----------------------------------------------------------------------------- bound to the config
class Workflow:
    """The config-bound helpers every rule file uses (``W`` in the rule files)."""

    #: One alignment run below an experiment's align/ or eval/<split>/ directory: :attr:`grid.Run.path`, as wildcards.
    RUN = "{variant}/{radius}/{hp}/{seed}"

    def __init__(self, config: dict):
        self.config = config
        self.results = f"results/{config['preset']}"
        self.logs = f"logs/{config['preset']}"
        self.benchmarks = f"benchmarks/{config['preset']}"

    # ------------------------------------------------------------------------- the paths of a job
    # A job's log and benchmark mirror where its results live: results/<preset>/<path>[/...] is logged to
    # logs/<preset>/<path>.log and timed in benchmarks/<preset>/<path>.tsv. Each helper takes that path relative to
    # the preset's results, in parts joined by "/" (plain strings: wildcards in single braces), so a templated rule
    # names its place once instead of spelling every output, its log and its benchmark.
    def log(self, *path: str) -> str:
        return f"{self.logs}/{'/'.join(path)}.log"

    def benchmark(self, *path: str) -> str:
        return f"{self.benchmarks}/{'/'.join(path)}.tsv"

    def train_outputs(self, *path: str) -> dict:
        """A trainer's outputs (the ``sft`` and ``reward_model`` templates) in results/<preset>/<path>/."""
        base = f"{self.results}/{'/'.join(path)}"
        return {"model": directory(f"{base}/model"), "metrics": f"{base}/metrics.json",
                "run_info": f"{base}/run_info.json"}

    def align_outputs(self, *path: str) -> dict:
        """An alignment run's outputs (the ``align`` template) in results/<preset>/<path>/:attr:`RUN`/."""
        base = f"{self.results}/{'/'.join(path)}/{self.RUN}"
        return {"policy": directory(f"{base}/policy"), "metrics": f"{base}/metrics.json",
                "history": f"{base}/history.csv", "run_info": f"{base}/run_info.json"}

    def eval_outputs(self, path: str, *run: str) -> dict:
        """An evaluation's outputs (the ``evaluate`` template): results/<preset>/<path>/{validation,test}/<run>.csv
        and <path>/completions/<run>.parquet; its log and benchmark are ``log(path, *run)``."""
        base, name = f"{self.results}/{path}", "/".join(run)
        return {**{split: f"{base}/{split}/{name}.csv" for split in EVAL_SPLITS},
                "completions": f"{base}/completions/{name}.parquet"}

    def grid(self, experiment: str) -> list[Run]:
        """The alignment runs of an experiment: variant x its radii x its eta/beta grid x seeds."""
        block = self.config[experiment]
        return expand_grid(self.config["variants"], block["radii"], block["hparams"], self.config["seeds"])

    def data_seed(self, per_seed: bool, seed) -> int:
        """The seed whose preference data a training seed uses: itself (per_seed), or the first seed."""
        return int(seed) if per_seed else int(self.config["seeds"][0])

    def outputs(self, experiment: str, figures, tables, stem: str | None = None) -> list[str]:
        """An experiment's figures (.pdf, .png) and tables (.csv, .md, .tex), named ``<stem>[_<name>]`` (the stem
        defaults to the experiment's name), or nothing when it is disabled."""
        if not self.config[experiment]["enabled"]:
            return []
        prefix = stem or experiment

        def stem(name):
            return "_".join([prefix, name] if name else [prefix])

        return [f"{self.results}/figures/{stem(n)}.{ext}" for n in figures for ext in ("pdf", "png")] + [
            f"{self.results}/tables/{stem(n)}.{ext}" for n in tables for ext in ("csv", "md", "tex")]

    def train_flags(self, section: Mapping[str, Any]) -> str:
        """A trainer's flags (SFT, reward models, alignment): its section, DeepSpeed and checkpointing."""
        return " ".join([
            cli_flags(section),
            cli_flags(self.config["deepspeed"]),
            cli_flags(self.config["checkpoint"], every_steps="checkpoint_every", keep="checkpoint_keep"),
        ])

    def align_flags(self, experiment: str) -> str:
        """What every alignment job of an experiment shares: its losses and align sections, DeepSpeed and
        checkpointing (variant, radius, eta/beta and seed come from the job's wildcards)."""
        block = self.config[experiment]
        online = [self.generation_flags()] if block["align"]["regime"] == "online" else []   # it samples
        return " ".join([cli_flags(block["losses"]), self.train_flags(block["align"]), *online])

    def procs(self, stage: str, variant: str | None = None) -> int:
        """CPU processes of a training job (a GPU job uses its ``gpu`` resource instead)."""
        launch_cfg = self.config["launch"]
        procs = launch_cfg["cpu_procs"][stage]
        if stage == "align" and variant in launch_cfg["align_two_process_variants"]:
            procs = 2
        return procs

    def align_procs(self, wildcards) -> int:
        return self.procs("align", wildcards.variant)

    def resources(self, experiment: str, kind: str, **local) -> dict:
        """A GPU rule's resources: ``gpu=0`` and ``local`` (``nproc``: its CPU processes) for a local run; with
        ``cluster.enabled`` (profiles/slurm) also what the experiment's ``cluster.<kind>`` asks for, on the site of
        the top-level ``cluster`` section. Rules declare ``resources: **W.resources(...)``, so what a job needs on
        a cluster lives with the experiment's config, and the planner reads the same numbers from the DAG.

        ``gpu`` is the standard resource the SLURM plugin turns into ``--gpus=N`` (``--gpus=<gpu_model>:N``); the
        launcher starts one process per GPU the job step was granted. ``mem_mb`` is ``memory`` x
        ``mem_mb_per_gpu``, ``runtime`` minutes."""
        site = self.config["cluster"]
        if not site["enabled"]:
            return {"gpu": 0, **local}
        job = self.config[experiment]["cluster"][kind]
        optional = {"slurm_partition": site["gpu_partition"], "gpu_model": site["gpu_model"],
                    "slurm_account": site["account"]}
        return {"gpu": int(job["gpu"]), **local, "mem_mb": round(job["memory"] * site["mem_mb_per_gpu"]),
                "runtime": int(job["runtime"]), "cpus_per_gpu": int(site["cpus_per_gpu"]),
                **{key: value for key, value in optional.items() if value}}

    def canary_resources(self) -> dict:
        """The GPU canary's resources: launched like the job kind ``cluster.canary.like`` names (its GPUs and
        memory; 2 CPU processes locally), for ``cluster.canary.runtime`` minutes."""
        canary = self.config["cluster"]["canary"]
        res = self.resources(*canary["like"].split("."), nproc=2)
        if "runtime" in res:
            res["runtime"] = int(canary["runtime"])
        return res

    def canary_input(self) -> dict:
        """The canary as an extra input of GPU training rules, when ``launch.canary`` is on (SLURM profile)."""
        return {"canary": f"{self.results}/canary/gpu_job.json"} if self.config["launch"]["canary"] else {}

    def generation_flags(self) -> str:
        """The ``generation`` block as the flags of every sampling job (``sampling.add_generation_args``)."""
        g = self.config["generation"]
        return " ".join([
            f"--generation-backend {g['backend']}",
            cli_flags(g["hf"], **{k: f"hf_{k}" for k in g["hf"]}),
            cli_flags(g["vllm"], **{k: f"vllm_{k}" for k in g["vllm"]}),
        ])
