"""A training job's fixed cost, as a ratio to importing its libraries: one run, same machine, side by side.

    python -m workflow_scripts.tools.bench_startup                 # 5 paired runs, about 6 minutes on 2 cores
    python -m workflow_scripts.tools.bench_startup --runs 9 --concurrent 3 --python /other/venv/bin/python

What is timed are whole processes, in turn (A B C A B C ...), so that a drift of the machine's speed
hits all three alike:

- **imports**: ``python -c "import torch, transformers, deepspeed"``, the floor any job pays;
- **job**: the real alignment entry point (``python -m workflow_scripts.core.train.align``, one process,
  DeepSpeed ZeRO-2 on gloo) on a tiny GPT-2 and 64 pairs made here, with a fresh, empty
  ``TORCH_EXTENSIONS_DIR`` each run (so a build would show);
- **stock**: the same job with DeepSpeed's own start-up (``DRO_REBEL_STOCK_STARTUP=1``: the JIT build of its
  shared-memory op, the eager Muon import), i.e. what every job paid before: with the op already in a cache it
  built during the warm-up (``stock``), and with an empty cache each run, as after another environment used it
  (``stock_cold``: the op is compiled again).

A job's **fixed cost** is its wall time minus its training loop, which the job itself measures and writes
to ``run_info.json`` (``timing``, ``fixed_seconds``; :mod:`workflow_scripts.core.train.timing`) together
with the breakdown printed here. Ratios are fixed cost / imports, per run, then the median.

``--concurrent N`` then starts N jobs at once (from each ``--python`` interpreter in turn, e.g. two virtual
environments) and prints each job's CPU / wall: a job that waits on another (a build lock) shows a CPU
share far below 1 / (N / cores). Nothing is asserted: this prints figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from workflow_scripts.core.cli import run

IMPORTS = "import torch, transformers, deepspeed"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="paired runs of each command (after one warm-up each)")
    p.add_argument("--variant", default="rebel", help="the alignment variant the job trains")
    p.add_argument("--steps", type=int, default=32, help="optimizer steps of the job (global batch 32)")
    p.add_argument("--no-stock", action="store_true", help="skip the stock-start-up job (it compiles: ~30 s a run)")
    p.add_argument("--concurrent", type=int, default=0, help="then start this many jobs at once per interpreter")
    p.add_argument("--python", nargs="+", default=[sys.executable],
                   help="interpreters (environments) for --concurrent; the first runs the paired runs")
    p.add_argument("--json", help="also write the figures as JSON here")
    return p.parse_args(argv)


def build_fixture(directory: Path, n_pairs: int = 64) -> dict[str, Path]:
    """A tiny GPT-2 policy saved like an SFT model (BPE tokenizer trained here) and a pairs parquet."""
    import numpy as np

    from workflow_scripts.core.models import build_causal_lm
    from workflow_scripts.core.pairs import make_pairs
    from workflow_scripts.core.tokenizer import train_bpe_tokenizer

    texts = [f"startup benchmark text number {i} about feelings" for i in range(200)]
    tokenizer = train_bpe_tokenizer(texts, 300, directory / "tokenizer")
    model = build_causal_lm({"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 96}, tokenizer, seed=0)
    model.save_pretrained(directory / "policy", safe_serialization=True)
    tokenizer.save_pretrained(directory / "policy")
    rng = np.random.default_rng(0)
    draw = lambda lo, hi: [rng.integers(1, len(tokenizer), size=rng.integers(lo, hi)).tolist()  # noqa: E731
                           for _ in range(n_pairs)]
    r1, r2 = rng.uniform(0, 1, n_pairs), rng.uniform(0, 1, n_pairs)
    make_pairs(draw(4, 5), draw(8, 24), draw(8, 24), r1, r2, (r1 > r2).astype(int)).to_parquet(
        directory / "pairs.parquet", index=False)
    return {"policy": directory / "policy", "pairs": directory / "pairs.parquet"}


def job_command(python: str, fixture: dict, out: Path, a) -> list[str]:
    epochs = a.steps * 32 / 64           # 64 pairs, global batch 32
    return [python, "-m", "workflow_scripts.core.train.align", "--pairs", str(fixture["pairs"]),
            "--policy", str(fixture["policy"]), "--out", str(out), "--variant", a.variant,
            "--radius", "0" if a.variant in ("rebel", "dpo") else "0.5", "--eta", "10", "--seed", "0",
            "--epochs", str(epochs), "--global-batch", "32", "--micro-batch", "16", "--iteration-batch", "32",
            "--lr", "1e-3", "--max-length", "40"]


def timed(cmd: list[str], env: dict) -> dict:
    """Wall and CPU seconds of one process (CPU from the kernel's accounting of the reaped child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"Error: {' '.join(cmd[:4])} ... failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def run_job(cmd_factory, workdir: Path, env: dict, stock: bool, cache: Path | None = None) -> dict:
    """One alignment job in its own output directory and extension cache (``cache``: a given one, e.g. built by
    an earlier run; else a new, empty one); its timing figures."""
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="job-"))
    built_before = sum(1 for _ in cache.rglob("*.so")) if cache else 0
    cache = cache or Path(tempfile.mkdtemp(dir=workdir, prefix="ext-"))
    job_env = {**env, "TORCH_EXTENSIONS_DIR": str(cache)}
    if stock:
        job_env["DRO_REBEL_STOCK_STARTUP"] = "1"
    figures = timed(cmd_factory(out), job_env)
    info = json.loads((out / "run_info.json").read_text())
    figures.update(training=info["timing"].get("training", 0.0), phases=info["timing"],
                   fixed=figures["wall"] - info["timing"].get("training", 0.0),
                   built=sum(1 for _ in cache.rglob("*.so")) - built_before)
    return figures


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def concurrent_jobs(pythons: list[str], n: int, fixture: dict, workdir: Path, env: dict, a) -> list[dict]:
    """N jobs per interpreter started at once; each one's own wall time (process start to its last write) and
    CPU time (the kernel's accounting of that process, ``wait4``)."""
    procs = []
    for python in pythons:
        for _ in range(n):
            out = Path(tempfile.mkdtemp(dir=workdir, prefix="conc-"))
            cache = Path(tempfile.mkdtemp(dir=workdir, prefix="ext-"))
            with open(out / "stderr.txt", "w") as err:
                proc = subprocess.Popen(job_command(python, fixture, out, a), stdout=subprocess.DEVNULL, stderr=err,
                                        env={**env, "TORCH_EXTENSIONS_DIR": str(cache)})
            procs.append((python, out, cache, proc))
    rows = []
    for python, out, cache, proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"Error: a concurrent job failed: {(out / 'stderr.txt').read_text().strip()[-600:]}")
        timing = json.loads((out / "run_info.json").read_text())["timing"]
        rows.append({"python": python, "wall": timing["total"], "cpu": usage.ru_utime + usage.ru_stime,
                     "built": sum(1 for _ in cache.rglob("*.so"))})
    return rows


def main(argv=None) -> None:
    a = parse_args(argv)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(repo)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = Path(tmp)
        fixture = build_fixture(workdir)
        python = a.python[0]
        def job(out):
            return job_command(python, fixture, out, a)

        commands = {"imports": lambda: timed([python, "-c", IMPORTS], env),
                    "job": lambda: run_job(job, workdir, env, False)}
        if not a.no_stock:
            # before: DeepSpeed's own start-up with its op already in the cache (a warm machine) ...
            warm = workdir / "ext-warm"
            warm.mkdir()
            commands["stock"] = lambda: run_job(job, workdir, env, True, cache=warm)
            # ... and after another environment used the cache (the op is built again, each time)
            commands["stock_cold"] = lambda: run_job(job, workdir, env, True)
        rows = {name: [] for name in commands}
        for name, run in commands.items():       # warm-up: page cache, bytecode
            run()
        for i in range(a.runs):
            for name, run in commands.items():
                rows[name].append(run())
            print(f"run {i + 1}/{a.runs}: " + ", ".join(f"{k} {v[-1]['wall']:.2f} s" for k, v in rows.items()),
                  file=sys.stderr)
        imports = [r["wall"] for r in rows["imports"]]
        report = {"python": python, "runs": a.runs, "variant": a.variant, "steps": a.steps,
                  "imports_wall": statistics.median(imports)}
        print(f"\nimports   `python -c \"{IMPORTS}\"`: median wall {report['imports_wall']:.2f} s ({a.runs} runs)")
        for name in [k for k in ("job", "stock", "stock_cold") if k in rows]:
            jobs = rows[name]
            ratios = [j["fixed"] / i for j, i in zip(jobs, imports)]
            phases = {k: statistics.median(j["phases"].get(k, 0.0) for j in jobs) for k in jobs[0]["phases"]}
            report[name] = {"wall": median(jobs, "wall"), "cpu": median(jobs, "cpu"),
                            "training": median(jobs, "training"), "fixed": median(jobs, "fixed"),
                            "ratio_fixed_to_imports": statistics.median(ratios), "extension_builds": max(
                                j["built"] for j in jobs), "phases": phases}
            r = report[name]
            label = {"job": "job (lean start-up)", "stock": "job (DeepSpeed's stock start-up, its op cached)",
                     "stock_cold": "job (stock start-up, the cache built by another environment)"}[name]
            print(f"{label}: wall {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, training loop {r['training']:.2f} s, "
                  f"fixed cost {r['fixed']:.2f} s = {r['ratio_fixed_to_imports']:.2f} x imports; "
                  f"extension builds into the empty cache: {r['extension_builds']}")
            print("    " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items() if k != "total") +
                  f"; after run_info (exit) {r['wall'] - phases['total']:.2f}")
        if "stock" in report:
            print(f"lean / stock fixed cost: {report['job']['fixed'] / report['stock']['fixed']:.2f} (cached op), "
                  f"{report['job']['fixed'] / report['stock_cold']['fixed']:.2f} (built again)")
        if a.concurrent:
            conc = concurrent_jobs(a.python, a.concurrent, fixture, workdir, env, a)
            report["concurrent"] = conc
            print(f"\n{a.concurrent} job(s) started at once per interpreter ({len(conc)} in all, "
                  f"{os.cpu_count()} cores):")
            for row in conc:
                print(f"  {row['python']}: wall {row['wall']:.2f} s, cpu {row['cpu']:.2f} s "
                      f"(cpu / wall {row['cpu'] / row['wall']:.2f}), extension builds {row['built']}")
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    run(main)
