"""The jobs Snakemake plans for a config and targets, read from Snakemake's own DAG.

Why the Python API and not ``snakemake -n`` output: the dry-run text is meant for people (its layout
changes between releases, wildcards and resources are printed as free text, dependencies not at all),
while the DAG object gives every job's rule, wildcards, threads, benchmark path and dependencies
exactly as the scheduler would see them. ``snakemake.api`` exposes the workflow but not the job list,
so this uses the two calls its own ``printdag`` / ``printrulegraph`` make (``_prepare_dag`` and
``_build_dag``, Snakemake 9); tests/tools/test_plan.py exercises them, so a Snakemake upgrade that moves
them fails there, not silently.

The DAG is built with ``forceall`` in an empty scratch directory: the plan is the cost of the whole
grid for that config, whatever already exists where the command runs, and nothing is written in the
user's working directory (no ``.snakemake/`` lock or metadata). Building it imports the rule files only
(no torch): the paper preset plans in a few seconds.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[3]


@dataclass
class JobSpec:
    id: int
    rule: str
    wildcards: dict
    threads: int
    benchmark: Optional[str]       # relative path of the job's benchmark TSV ("benchmarks/<preset>/...")
    deps: list = field(default_factory=list)   # ids of the jobs it waits for
    devices: int = 0               # GPUs (or CPU processes, --gpu cpu) it runs on; set by the planner
    gpu: int = 0                   # its `gpu` resource (0 unless planned with cluster.enabled)
    runtime: Optional[float] = None  # its `runtime` resource: the cluster's time limit, minutes (None: none)

    @property
    def label(self) -> str:
        wildcards = ",".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule}[{wildcards}]" if wildcards else self.rule


def plan_jobs(configfiles: Sequence[str | Path] = (), targets: Sequence[str] = ("all",),
              config: Optional[dict] = None, snakefile: Path = REPO / "Snakefile") -> tuple[dict, list[JobSpec]]:
    """(the config the workflow saw, its jobs in a topological order) for ``targets`` under ``configfiles``
    (merged over the Snakefile's config.yaml, like ``--configfile``) and ``config`` (like ``--config``)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings

    files = []
    for f in configfiles:
        path = Path(f).resolve()
        if not path.is_file():
            raise SystemExit(f"config file {f} not found.")
        files.append(path)
    import snakemake.workflow as sm_workflow

    cwd = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="dro_rebel_plan_")
    sink = io.StringIO()
    # Snakemake runs a Snakefile in the globals of its own `snakemake.workflow` module: every name our rule
    # files import lands there (rules/common.smk once shadowed Snakemake's own `Workflow`, which broke the
    # next plan in this process; calibration plans twice). Restored below, whatever the rule files define.
    module_globals = dict(vars(sm_workflow))
    try:
        # Snakemake prints its config-validation errors (sys.exit in rules/common.smk) and warnings; keep
        # the planner's own output clean, show them only when planning fails.
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            wf = api.workflow(resource_settings=ResourceSettings(),
                              config_settings=ConfigSettings(configfiles=files, config=dict(config or {})),
                              snakefile=Path(snakefile), workdir=Path(scratch))
            wf.dag(DAGSettings(targets=set(targets), forceall=True))
            workflow = wf._workflow
            workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            workflow._build_dag()
            dag = workflow.dag
            jobs = list(dag.jobs)
            ids = {job: i for i, job in enumerate(_topological(jobs, dag))}
            specs = sorted((JobSpec(ids[job], job.rule.name, dict(job.wildcards), int(job.threads),
                                    _benchmark(job), sorted(ids[d] for d in dag.dependencies[job] if d in ids),
                                    **_cluster_resources(job))
                            for job in jobs), key=lambda s: s.id)
            planned_config = _plain(workflow.config)
    except SystemExit as exc:
        message = str(exc.code) if exc.code not in (None, 0, 1) else sink.getvalue().strip().splitlines()[-1:]
        raise SystemExit(f"planning failed: {message if isinstance(message, str) else ' '.join(message)}")
    except Exception as exc:  # a Snakemake error (unknown target, bad config file): one line
        lines = [line for line in sink.getvalue().strip().splitlines() if line.strip()]
        raise SystemExit(f"planning failed: {type(exc).__name__}: {exc}" + (f" ({lines[-1]})" if lines else ""))
    finally:
        os.chdir(cwd)
        vars(sm_workflow).clear()
        vars(sm_workflow).update(module_globals)
        with contextlib.suppress(OSError):
            import shutil
            shutil.rmtree(scratch)
    return planned_config, specs


def _topological(jobs, dag) -> list:
    """Jobs ordered so that each comes after its dependencies (Kahn's algorithm, ties by rule then label)."""
    pending = {job: {d for d in dag.dependencies[job] if d in dag.dependencies} for job in jobs}
    order, ready = [], sorted((j for j, d in pending.items() if not d), key=str)
    users: dict = {}
    for job, deps in pending.items():
        for d in deps:
            users.setdefault(d, []).append(job)
    while ready:
        job = ready.pop(0)
        order.append(job)
        for user in users.get(job, []):
            pending[user].discard(job)
            if not pending[user]:
                ready.append(user)
    return order


def _cluster_resources(job) -> dict:
    """A job's GPUs and time limit, as its rule's resources give them (``Workflow.resources``)."""
    runtime = job.resources.get("runtime")
    return {"gpu": int(job.resources.get("gpu", 0) or 0),
            "runtime": float(runtime) if isinstance(runtime, (int, float)) else None}


def _benchmark(job) -> Optional[str]:
    bench = getattr(job, "benchmark", None)
    return str(bench) if bench else None


def _plain(value):
    """Snakemake's config (its own dict subclasses) as plain dicts and lists (JSON / YAML-safe)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
