"""Command line of the planner (``python -m workflow_scripts.tools.plan``) and :func:`plan`, its library form.

Put targets BEFORE ``--configfile`` (it takes several files, as Snakemake's does)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from workflow_scripts.tools.plan import calibrate as cal
from workflow_scripts.tools.plan import report, schedule
from workflow_scripts.tools.plan.dag import plan_jobs
from workflow_scripts.tools.plan.estimate import estimate_jobs
from workflow_scripts.tools.plan.resources import DEFAULT_PROFILE, site_overrides, with_profile_config
from workflow_scripts.tools.plan.throughput import DEFAULT_TABLE, Throughput, write_estimates
from workflow_scripts.tools.plan.inputs import Context


@dataclass
class Plan:
    config: dict
    estimates: list
    gpu: str
    gpus_available: int
    table: Throughput
    fits: Optional[dict] = None
    notes: list = field(default_factory=list)
    header: list = field(default_factory=list)

    @property
    def rows(self) -> list[dict]:
        return report.rule_rows(self.estimates)

    def wall_seconds(self) -> float:
        return schedule.makespan(self.estimates, self.gpus_available)

    def critical_path_seconds(self) -> float:
        return schedule.makespan(self.estimates, 10 ** 9)

    def markdown(self) -> str:
        return report.markdown(self.rows, self.estimates, header=self.header, wall_s=self.wall_seconds(),
                               critical_s=self.critical_path_seconds(), gpus_available=self.gpus_available,
                               device=self.gpu, notes=self.notes)


def plan(configfiles: Sequence[str | Path] = (), targets: Sequence[str] = ("all",), *, gpu: str = "h100",
         gpus_available: Optional[int] = None, profile: Path | str = DEFAULT_PROFILE,
         throughput: Path | str = DEFAULT_TABLE, config: Optional[dict] = None,
         calibrate=None, calibrate_config: Sequence[str | Path] = ()) -> Plan:
    """Plan ``targets`` under ``configfiles`` (+ ``config`` overrides) on ``gpu``; with ``calibrate`` (a
    finished pilot run's directory, or a list of runs of the same config, run under ``calibrate_config``)
    every rule is recalibrated on it."""
    table = Throughput.load(throughput)
    table.check_gpu(gpu)
    runs = [] if calibrate is None else [calibrate] if isinstance(calibrate, (str, Path)) else list(calibrate)
    # fail on a wrong directory before planning anything
    roots = [cal.benchmark_root(r).resolve() for r in runs]
    # On GPUs, the DAG of the cluster run: the profile's config (cluster.enabled, site settings) gives every job
    # the GPUs and runtime limit it would be submitted with.
    overrides = with_profile_config(config, profile) if gpu != "cpu" else config
    if gpus_available is None:
        gpus_available = (os.cpu_count() or 1) if gpu == "cpu" else 8
    cfg, jobs = plan_jobs(configfiles, targets, overrides)
    estimates = estimate_jobs(Context(cfg, table.data), jobs, table, gpu)
    result = Plan(cfg, estimates, gpu, gpus_available, table)
    measured_entries = sum(e["source"] == "measured" for e in table.entries.values())
    result.header = [
        f"# Plan: preset `{cfg['preset']}`, targets `{' '.join(targets)}`: "
        f"{sum(e.job.benchmark is not None for e in estimates)} jobs on "
        f"{'local CPU processes' if gpu == 'cpu' else gpu.upper() + ' GPUs'}",
        "",
        f"Throughput table version {table.version} ({measured_entries} measured entries; the rest estimated by "
        f"its FLOPs model); " + ("GPU counts: the jobs' resources under the SLURM profile's config." if gpu != "cpu"
                                 else "processes: the jobs' threads."),
    ]
    if roots:
        pilot_cfg, pilot_jobs = plan_jobs(calibrate_config, ("all",),
                                          with_profile_config(None, profile) if gpu != "cpu" else None)
        pilot = estimate_jobs(Context(pilot_cfg, table.data), pilot_jobs, table, gpu)
        seconds = cal.measured(pilot, roots)
        if not seconds:
            raise SystemExit(f"no benchmark file under {' '.join(map(str, roots))} matches a job of the pilot's "
                             f"config (--calibrate-config {' '.join(map(str, calibrate_config)) or '(none)'}).")
        result.fits = cal.fit(pilot, seconds)
        cal.apply(estimates, result.fits)
        rules = [r for r in result.fits if not r.startswith("family:")]
        result.header.append(f"Calibrated on the benchmark files of {len(seconds)} jobs of {' '.join(map(str, runs))} "
                             f"(preset `{pilot_cfg['preset']}`): {len(rules)} rules fitted.")
    result.notes = _notes(result)
    return result


def _notes(result: Plan) -> list[str]:
    notes = []
    per_rule: dict[str, set] = {}
    for e in result.estimates:
        for n in e.notes:
            per_rule.setdefault(n, set()).add(e.rule)
    notes += [f"{', '.join(sorted(rules))}: {n}" for n, rules in per_rule.items()]
    if result.gpu != "cpu":
        worst: dict[str, tuple[float, float]] = {}
        for e in result.estimates:
            limit = e.job.runtime
            if e.on_gpu and limit is not None and e.seconds > 60 * limit and e.seconds > worst.get(e.rule, (0.0,))[0]:
                worst[e.rule] = (e.seconds, limit)
        for rule, (s, limit) in worst.items():
            notes.append(f"`{rule}`: a job is estimated at {report.human_time(s)}, over its runtime limit of "
                         f"{limit:.0f} min (raise its `runtime` in the experiment's config section `cluster`, or "
                         f"rely on the retries of resumable jobs)")
        overrides = site_overrides()
        if overrides:
            notes.append("site settings from the environment: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    notes.append("token counts use the dataset statistics and response lengths of the throughput table "
                 "(`datasets`), estimates; queue waits are not modelled")
    return notes


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workflow_scripts.tools.plan",
                                description="GPU-hours, wall time and memory fit of a grid, from its DAG.",
                                epilog="Put targets before --configfile (it takes several files).")
    p.add_argument("targets", nargs="*", help="Snakemake targets (rules or files); default: all")
    p.add_argument("--configfile", nargs="+", action="extend", default=[], metavar="FILE",
                   help="config files merged over config.yaml, as snakemake --configfile")
    p.add_argument("--config-json", help="config values as JSON, merged like snakemake --config (the plan rule "
                   "passes the whole config it runs with)")
    p.add_argument("--gpu", default="h100", help="GPU type of the throughput table (h200, h100, a100) or cpu "
                   "(a local run: processes instead of GPUs); default h100")
    p.add_argument("--gpus-available", type=int, help="GPUs (cpu: processes) the grid may use at once; "
                   "default 8 (cpu: this machine's cores)")
    p.add_argument("--profile", default=str(DEFAULT_PROFILE), help="SLURM profile whose `config:` (cluster.enabled, "
                   "site settings) the plan's DAG is built with: each job's GPUs and runtime limit are those its rule "
                   "asks the cluster for (default profiles/slurm; not used with --gpu cpu)")
    p.add_argument("--throughput", default=str(DEFAULT_TABLE), help="throughput table (YAML)")
    p.add_argument("--calibrate", nargs="+", metavar="RUN_DIR", help="a finished pilot run (its directory, with "
                   "benchmarks/); several runs of the same config: each job's seconds averaged over them")
    p.add_argument("--calibrate-config", nargs="+", action="extend", default=[], metavar="FILE",
                   help="the config files the pilot ran with (merged over config.yaml)")
    p.add_argument("--compare", metavar="RUN_DIR", help="a finished run of THIS config: per-rule predicted vs "
                   "measured seconds")
    p.add_argument("--out-md", help="write the plan (Markdown) here")
    p.add_argument("--out-csv", help="write the per-rule table (CSV) here")
    p.add_argument("--show-throughput", action="store_true", help="print the throughput table's entries and exit")
    p.add_argument("--write-throughput", action="store_true",
                   help="recompute the table file's estimate entries from its FLOPs model (measured ones kept), "
                   "then exit")
    return p.parse_args(argv)


def main(argv=None) -> None:
    a = parse_args(argv)
    if a.write_throughput:
        n = write_estimates(Path(a.throughput))
        print(f"{a.throughput}: {n} estimate entries written")
        return
    if a.show_throughput:
        for e in Throughput.load(a.throughput).table_rows():
            print("\t".join(str(e.get(k, "")) for k in ("gpu", "model", "phase", "family", "tokens_per_s", "source",
                                                        "where", "when")))
        return
    for f in a.configfile:
        if not Path(f).is_file():
            sys.exit(f"config file {f} not found (targets go before --configfile, which takes several files).")
    config = json.loads(a.config_json) if a.config_json else None
    if a.calibrate_config and not a.calibrate:
        sys.exit("--calibrate-config needs --calibrate RUN_DIR.")
    result = plan(a.configfile, a.targets or ["all"], gpu=a.gpu, gpus_available=a.gpus_available, profile=a.profile,
                  throughput=a.throughput, config=config, calibrate=a.calibrate, calibrate_config=a.calibrate_config)
    text = result.markdown()
    if a.compare:
        seconds = cal.measured(result.estimates, a.compare)
        text += "\n## Predicted vs measured (" + str(a.compare) + ")\n\n" + report.comparison_markdown(
            report.comparison(result.estimates, seconds))
    print(text, end="")
    if a.out_md:
        Path(a.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out_md).write_text(text)
    if a.out_csv:
        Path(a.out_csv).parent.mkdir(parents=True, exist_ok=True)
        report.write_csv(result.rows, a.out_csv)
