"""Calibration on a finished pilot run: Snakemake's own ``benchmarks/`` files -> per-rule time model.

Every rule writes ``benchmarks/<preset>/...tsv`` (column ``s``: the job's wall seconds; several runs of the
pilot's config can be given: each job's seconds are averaged over them). Planning the
pilot's config gives each of its jobs a benchmark path and a modelled compute time ``x`` (tokens over the
throughput table, :mod:`.estimate`); matching the two gives pairs (x, measured s) per rule, and the fit

    predicted s = overhead + factor * x

is what the planner then applies to another config's jobs of the same rule (on the same hardware). For a
single-phase rule ``factor * x`` is seconds-per-token x tokens; ``x`` weighs the phases of a mixed job
(generation + scoring) by their modelled cost, so one factor covers them.

How the two numbers are fitted (per rule; :data:`MIN_SPREAD`, :data:`SHORT_JOB_S`):

- a least-squares line when the pilot's jobs of the rule differ enough in work (Wasserstein vs base
  variants, data scales) and the line is sensible (0 <= overhead <= the shortest job, factor > 0);
- otherwise the start-up of the throughput table is taken as the overhead (capped at half the mean job)
  and the factor is what makes the pilot's mean job come out exactly;
- jobs without modelled work (data, reports) or whose mean is under ``SHORT_JOB_S`` are overhead-only:
  every job is predicted at the pilot's mean (their time is start-up and noise, not tokens).

Either way the pilot's own total per rule is reproduced exactly. A rule the pilot did not run borrows
its family's factor (sft, align, evaluate, ...); with no family either, it keeps the uncalibrated estimate.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

#: least-squares only when the pilot's largest job has this much more modelled work than its smallest.
MIN_SPREAD = 1.5
#: rules whose pilot jobs average under this many seconds are overhead-only.
SHORT_JOB_S = 5.0


@dataclass(frozen=True)
class RuleFit:
    rule: str
    jobs: int
    overhead_s: float
    factor: float          # measured seconds per modelled compute second
    method: str            # ols, ratio, overhead-only, family

    def predict(self, compute_s: float) -> float:
        return self.overhead_s + self.factor * compute_s


def benchmark_root(path: Path | str) -> Path:
    """The directory that holds ``benchmarks/``: a run directory, or its ``benchmarks`` folder itself."""
    path = Path(path)
    if (path / "benchmarks").is_dir():
        return path
    if path.name == "benchmarks" and path.is_dir():
        return path.parent
    raise SystemExit(f"no benchmarks/ directory under {path}: give a finished run's directory (--directory of "
                     f"its snakemake) or its benchmarks/ folder.")


def read_seconds(tsv: Path) -> float:
    """Mean ``s`` over the rows of one benchmark file (``benchmark: repeat(...)`` writes several)."""
    with open(tsv, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    values = [float(r["s"]) for r in rows if r.get("s") not in (None, "", "NA")]
    if not values:
        raise SystemExit(f"{tsv}: no 's' column / value (not a Snakemake benchmark file?).")
    return fmean(values)


def measured(estimates, roots) -> dict[int, float]:
    """{job id: measured seconds} for the jobs whose benchmark file exists under ``roots`` (one run directory,
    or several runs of the same config: a job's seconds are then its mean over the runs that have it, which
    averages out a shared machine's load)."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    found: dict[int, list] = {}
    for root in map(benchmark_root, roots):
        for est in estimates:
            if est.job.benchmark and (root / est.job.benchmark).is_file():
                found.setdefault(est.job.id, []).append(read_seconds(root / est.job.benchmark))
    return {job: fmean(values) for job, values in found.items()}


def fit(estimates, seconds: dict[int, float]) -> dict[str, RuleFit]:
    """Per-rule fits from the pilot's estimates and their measured seconds (module docstring); family
    fits under the key ``family:<name>``."""
    by_rule: dict[str, list] = {}
    for est in estimates:
        if est.job.id in seconds:
            by_rule.setdefault(est.rule, []).append((est, seconds[est.job.id]))
    fits = {rule: _fit_rule(rule, pairs) for rule, pairs in by_rule.items()}
    by_family: dict[str, list] = {}
    for rule, pairs in by_rule.items():
        by_family.setdefault(pairs[0][0].family, []).extend(pairs)
    for fam, pairs in by_family.items():
        f = _fit_rule(f"family:{fam}", pairs)
        fits[f"family:{fam}"] = RuleFit(f.rule, f.jobs, f.overhead_s, f.factor, "family")
    return fits


def _fit_rule(rule: str, pairs) -> RuleFit:
    xs = [est.compute_s for est, _ in pairs]
    ts = [t for _, t in pairs]
    n, mean_t, mean_x = len(pairs), fmean(ts), fmean(xs)
    if mean_x <= 0 or mean_t < SHORT_JOB_S:
        return RuleFit(rule, n, mean_t, 0.0, "overhead-only")
    if n >= 3 and min(xs) > 0 and max(xs) / min(xs) >= MIN_SPREAD:
        sxx = sum((x - mean_x) ** 2 for x in xs)
        k = sum((x - mean_x) * (t - mean_t) for x, t in zip(xs, ts)) / sxx
        o = mean_t - k * mean_x
        if k > 0 and 0 <= o <= min(ts):
            return RuleFit(rule, n, o, k, "ols")
    startup = fmean(est.startup_s for est, _ in pairs)
    o = min(startup, 0.5 * mean_t)
    return RuleFit(rule, n, o, (mean_t - o) / mean_x, "ratio")


def apply(estimates, fits: dict[str, RuleFit]) -> None:
    """Predicted seconds of each job from its rule's fit (else its family's); marks them ``calibrated``."""
    for est in estimates:
        if est.job.benchmark is None:
            continue
        f = fits.get(est.rule) or fits.get(f"family:{est.family}")
        if f is None:
            est.notes.append("no pilot job of this rule or family: uncalibrated estimate")
            continue
        est.seconds = f.predict(est.compute_s)
        est.source = "calibrated" if f.method != "family" else "calibrated (family)"
