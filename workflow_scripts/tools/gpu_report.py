"""The GPU check's report (scripts/gpu_check.sh): versions, stages, benchmark tables, every job of the
preset's run with its wall time and memory, the alignment jobs' step-0 log-ratios, and the failures.

    python -m workflow_scripts.tools.gpu_report --work /tmp/gpu_check_work --report REPORT_DIR \\
        --preset paper-shapes [--failed "stage (why)" ...] > REPORT_DIR/report.md

``--work`` holds ``versions.md``, ``stages.md``, ``gpu_mem.csv`` (nvidia-smi samples, MiB) and the
Snakemake run directory ``run/``; ``--report`` the stages' logs. Missing pieces are skipped, so a check
that stopped early still gets a report.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
from pathlib import Path
from workflow_scripts.core.cli import run


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def job_rows(run: Path, preset: str) -> list[tuple[str, float, str]]:
    """(job, wall seconds, max RSS MB) from Snakemake's benchmark files."""
    root = run / "benchmarks" / preset
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        with open(tsv) as fh:
            records = list(csv.DictReader(fh, delimiter="\t"))
        if records:
            rows.append((str(tsv.relative_to(root))[:-4], float(records[-1]["s"]), records[-1].get("max_rss", "")))
    return rows


def training_rows(run: Path, preset: str) -> list[dict]:
    """Every job that wrote a run_info.json: its peak GPU memory, numerics and step-0 log-ratio (alignment)."""
    root = run / "results" / preset
    rows = []
    for info_path in sorted(root.rglob("run_info.json")):
        info = json.loads(info_path.read_text())
        history = info_path.parent / "history.csv"
        ratio = ""
        if history.exists():
            with open(history) as fh:
                ratio = next(csv.DictReader(fh), {}).get("logratio_ref_absmax", "")
        numerics = info.get("numerics", {})
        rows.append({"job": str(info_path.parent.relative_to(root)), "peak": info.get("peak_gpu_memory_gib", ""),
                     "precision": info.get("precision", ""), "attention": numerics.get("attention", ""),
                     "ratio": ratio, "seconds": info.get("wall_seconds", "")})
    return rows


def snakemake_errors(run: Path) -> list[str]:
    logs = sorted(glob.glob(str(run / ".snakemake" / "log" / "*.log")))
    if not logs:
        return []
    return [line.strip() for line in Path(logs[-1]).read_text().splitlines() if line.startswith("Error in rule")]


def render(work: Path, report: Path, preset: str, failed: list[str]) -> str:
    out = ["# GPU check", ""]
    for name in ("versions.md", "stages.md"):
        text = _read(work / name)
        if text:
            out += ["## Stages" if name == "stages.md" else "## Environment", "", text.rstrip(), ""]
    memory = _read(work / "gpu_mem.csv")
    if memory:
        values = [int(x) for x in memory.split() if x.strip().isdigit()]
        if values:
            out += [f"GPU memory in use during the whole check: peak {max(values) / 1024:.1f} GiB "
                    "(nvidia-smi every 0.5 s).", ""]
    for name in ("bench_align", "bench_generate"):
        log = _read(report / f"{name}.log")
        if log:
            lines = log.splitlines()
            start = next((i for i, line in enumerate(lines) if line.startswith(f"{name}:")), max(0, len(lines) - 14))
            out += [f"## {name}", "", "```", *lines[start:start + 14], "```", ""]
    run = work / "run"
    jobs = job_rows(run, preset)
    out += [f"## {preset} jobs ({len(jobs)} finished)", "", "| job | wall s | max RSS MB |", "|---|---:|---:|"]
    out += [f"| {job} | {seconds:.1f} | {rss} |" for job, seconds, rss in jobs]
    out += ["", "| job with run_info | peak GPU GiB | precision | attention | step-0 max abs log-ratio |",
            "|---|---:|---|---|---:|"]
    out += [f"| {r['job']} | {r['peak']} | {r['precision']} | {r['attention']} | {r['ratio']} |"
            for r in training_rows(run, preset)]
    problems = failed + snakemake_errors(run)
    out += ["", "## Failures", ""] + ([f"- {p}" for p in problems] if problems else ["none"])
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--report", required=True, type=Path)
    p.add_argument("--preset", required=True)
    p.add_argument("--failed", nargs="*", default=[])
    a = p.parse_args(argv)
    print(render(a.work, a.report, a.preset, [f for f in a.failed if f]), end="")


if __name__ == "__main__":
    run(main)
