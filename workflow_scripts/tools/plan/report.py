"""The plan as tables: per rule and in total (Markdown for people, CSV for scripts), the stage shares,
the wall time on the given cluster, the jobs that will not fit in memory, and the prediction-vs-
measurement table of a finished run (``--compare``)."""
from __future__ import annotations

import csv
import io
from collections import OrderedDict

#: Phases grouped into the stages a reader budgets for.
STAGES = OrderedDict([("generation", ("prefill", "generation")), ("training", ("train_step",)),
                      ("reference / statistics forwards", ("forward",)), ("scoring", ("scoring",)),
                      ("CPU simulation", ("cpu",)), ("start-up", ("start-up",))])


def human_tokens(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}" if n else "-"


def human_time(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def rule_rows(estimates) -> list[dict]:
    """One row per rule (DAG order of first appearance), plus the total row."""
    groups: "OrderedDict[str, list]" = OrderedDict()
    for e in estimates:
        if e.job.benchmark is not None:
            groups.setdefault(e.rule, []).append(e)
    total_dh = sum(e.device_hours for e in estimates) or 1.0
    rows = []
    for rule, ests in groups.items():
        fits = [e.fit for e in ests if e.fit is not None]
        bad = [e for e in ests if e.fit is not None and not e.fit.fits]
        devices = sorted({e.devices for e in ests})
        rows.append({
            "rule": rule, "stage": ests[0].family, "jobs": len(ests),
            "devices_per_job": f"{devices[0]}-{devices[-1]}" if len(devices) > 1 else str(devices[0]),
            "on_gpu": any(e.on_gpu for e in ests),
            "tokens": sum(e.work.tokens for e in ests),
            "device_hours": sum(e.device_hours for e in ests),
            "share": sum(e.device_hours for e in ests) / total_dh,
            "seconds_total": sum(e.seconds for e in ests),
            "seconds_per_job": sum(e.seconds for e in ests) / len(ests),
            "peak_memory_gb": max((f.peak_gb for f in fits), default=None),
            "memory_capacity_gb": fits[0].capacity_gb if fits else None,
            "jobs_not_fitting": len(bad),
            "fix": bad[0].fit.advice if bad else "",
            "source": "/".join(sorted({e.source for e in ests})),
        })
    rows.append({"rule": "total", "stage": "", "jobs": sum(r["jobs"] for r in rows), "devices_per_job": "",
                 "on_gpu": True, "tokens": sum(r["tokens"] for r in rows),
                 "device_hours": sum(r["device_hours"] for r in rows), "share": 1.0 if rows else 0.0,
                 "seconds_total": sum(r["seconds_total"] for r in rows), "seconds_per_job": None,
                 "peak_memory_gb": None, "memory_capacity_gb": None,
                 "jobs_not_fitting": sum(r["jobs_not_fitting"] for r in rows), "fix": "", "source": ""})
    return rows


def stage_shares(estimates) -> "OrderedDict[str, float]":
    """Device-hours per stage (generation, training, ...), as fractions of the total."""
    hours = OrderedDict((stage, 0.0) for stage in STAGES)
    for e in estimates:
        if not e.on_gpu:
            continue
        for phase, seconds in e.phase_shares().items():
            stage = next(s for s, phases in STAGES.items() if phase in phases)
            hours[stage] += seconds * e.devices / 3600
    total = sum(hours.values()) or 1.0
    return OrderedDict((s, h / total) for s, h in hours.items() if h > 0)


def write_csv(rows: list[dict], path) -> None:
    keys = ["rule", "stage", "jobs", "devices_per_job", "tokens", "device_hours", "share", "seconds_per_job",
            "seconds_total", "peak_memory_gb", "memory_capacity_gb", "jobs_not_fitting", "fix", "source"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in keys})


def markdown(rows: list[dict], estimates, *, header: list[str], wall_s: float, critical_s: float,
             gpus_available: int, device: str, notes: list[str]) -> str:
    unit = "CPU-proc-h" if device == "cpu" else "GPU-h"
    out = io.StringIO()
    for line in header:
        out.write(line + "\n")
    out.write("\n| rule | jobs | " + ("procs" if device == "cpu" else "GPUs") + f"/job | tokens | {unit} | share | "
              "time/job | peak memory (GB) | source |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
    for r in rows:
        total = r["rule"] == "total"
        mem = "" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.1f} / {r['memory_capacity_gb']:.0f}"
        if r["jobs_not_fitting"] and not total:
            mem += f" ✗ {r['jobs_not_fitting']}"
        name = f"**{r['rule']}**" if total else f"`{r['rule']}`"
        out.write(f"| {name} | {r['jobs']} | {r['devices_per_job'] if r['on_gpu'] else 'CPU'} | "
                  f"{human_tokens(r['tokens'])} | {r['device_hours']:.4g} | {100 * r['share']:.1f}% | "
                  f"{'' if total else human_time(r['seconds_per_job'])} | {mem} | {r['source']} |\n")
    shares = stage_shares(estimates)
    out.write(f"\n**{unit} by stage:** " + " · ".join(f"{s} {100 * f:.1f}%" for s, f in shares.items()) + "\n")
    what = ("CPU process" if device == "cpu" else device.upper() + " GPU") + ("es" if device == "cpu" else "s") * (
        gpus_available != 1)
    out.write(f"\n**Wall time on {gpus_available} {what}:** "
              f"{human_time(wall_s)} (list scheduling along the DAG; critical path {human_time(critical_s)}, "
              f"the floor with unlimited {'processes' if device == 'cpu' else 'GPUs'})\n")
    bad = [r for r in rows if r["jobs_not_fitting"] and r["rule"] != "total"]
    if bad:
        out.write("\n**Will not fit in memory** (fix before submitting):\n\n")
        for r in bad:
            out.write(f"- `{r['rule']}`: {r['jobs_not_fitting']} of {r['jobs']} jobs need {r['peak_memory_gb']:.1f} GB "
                      f"of {r['memory_capacity_gb']:.0f} GB; {r['fix']}\n")
    if notes:
        out.write("\nNotes:\n\n" + "".join(f"- {n}\n" for n in notes))
    return out.getvalue()


def comparison(estimates, seconds: dict[int, float]) -> list[dict]:
    """Per rule: predicted vs measured seconds (jobs with a benchmark file only), and the total."""
    rows: "OrderedDict[str, dict]" = OrderedDict()
    for e in estimates:
        if e.job.id not in seconds:
            continue
        r = rows.setdefault(e.rule, {"rule": e.rule, "jobs": 0, "predicted_s": 0.0, "measured_s": 0.0})
        r["jobs"] += 1
        r["predicted_s"] += e.seconds
        r["measured_s"] += seconds[e.job.id]
    out = list(rows.values())
    out.append({"rule": "total", "jobs": sum(r["jobs"] for r in out),
                "predicted_s": sum(r["predicted_s"] for r in out), "measured_s": sum(r["measured_s"] for r in out)})
    for r in out:
        r["error"] = (r["predicted_s"] - r["measured_s"]) / r["measured_s"] if r["measured_s"] else 0.0
    return out


def comparison_markdown(rows: list[dict]) -> str:
    out = ["| rule | jobs | predicted s | measured s | error |", "|---|--:|--:|--:|--:|"]
    for r in rows:
        out.append(f"| {r['rule']} | {r['jobs']} | {r['predicted_s']:.1f} | {r['measured_s']:.1f} | "
                   f"{100 * r['error']:+.1f}% |")
    return "\n".join(out) + "\n"
