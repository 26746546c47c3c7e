"""`snakemake --profile slurm` against a real SLURM cluster (one node, two fake GPUs).

One SLURM run builds part of the mini emotion DAG (SFT, reward model, pairs and two alignment
jobs, each alignment job on 2 GPUs, behind the GPU canary) while the local profile builds the
same targets beside it as the reference. The tests check where each job ran, that alignment ran
as a 2-process DeepSpeed job, that the outputs equal the local ones byte for byte, and that an
alignment job cancelled with `scancel` mid-run is retried by Snakemake and only its complete
output is used downstream. Every Snakemake call has a hard timeout.
"""
from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ["--configfile", str(REPO / "presets/mini.yaml"), str(REPO / "tests/slurm/mini_slurm.yaml")]
EM = "results/slurmtest/emotion"
ALIGN = {"chi2-rebel": f"{EM}/align/chi2-rebel/1/eta10/0", "rebel": f"{EM}/align/rebel/0/eta10/0"}
TARGETS = [f"{EM}/sft/metrics.json", f"{EM}/reward_model/metrics.json",
           *(f"{d}/metrics.json" for d in ALIGN.values())]
EVAL_CHI2 = f"{EM}/eval/test/chi2-rebel/1/eta10/0.csv"
# The test cluster's node has 2 CPUs: GPU jobs get 1 CPU per GPU and little memory.
SITE = {"DRO_REBEL_SLURM_CPUS_PER_GPU": "1", "DRO_REBEL_SLURM_MEM_MB_PER_GPU": "1000"}
# No slurmdbd: squeue answers status queries (jobs stay listed for MinJobAge = 600 s).
SLURM_TEST_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]
GPU_RULES = {"gpu_canary": 2, "emotion_sft": 1, "emotion_reward_model": 1, "emotion_pairs": 1, "emotion_align": 2}
CPU_RULES = {"emotion_data", "emotion_tokenizer"}
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


class Snakemake:
    """`python -m snakemake ...` from the repository root, in its own session, output to a file."""

    def __init__(self, args, env, log: Path):
        self.args, self.env, self.log = [str(a) for a in args], env, log
        self.proc = None

    def start(self) -> "Snakemake":
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "snakemake", *self.args], cwd=REPO, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float) -> str:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"snakemake {' '.join(self.args[:3])} ... exceeded its {timeout:.0f}s hard timeout:\n"
                        f"{self.output[-4000:]}")
        return self.output

    def kill(self) -> None:
        """Stop this Snakemake (its own process group) and nothing else."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=20)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check(self, workdir: Path, timeout: float) -> str:
        out = self.wait(timeout)
        if self.proc.returncode != 0:
            logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}"
                             for p in sorted(workdir.rglob("*.log"))[-6:])
            pytest.fail(f"snakemake failed ({self.proc.returncode}):\n{out[-5000:]}\n{logs}")
        return out


def submitted_ids(output: str) -> list[str]:
    return SUBMITTED.findall(output)


def rule_of(job: dict) -> tuple[str, str]:
    """('emotion_align', 'chi2-rebel_1_eta10_0') from the plugin's job comment."""
    m = re.fullmatch(r"rule_(.+?)(?:_wildcards_(.*))?", job["comment"])
    assert m, job
    return m.group(1), m.group(2) or ""


@pytest.fixture(scope="module")
def env(slurm_cluster, xdg_config_home):
    return {**os.environ, **slurm_cluster.env, **SITE, "XDG_CONFIG_HOME": str(xdg_config_home),
            "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(env, tmp_path_factory):
    """The SLURM run, and the local-profile reference of the same targets built beside it."""
    local_dir, slurm_dir = tmp_path_factory.mktemp("local-run"), tmp_path_factory.mktemp("slurm-run")
    local = Snakemake(["--profile", "profiles/local", "--cores", "2", *TARGETS, EVAL_CHI2, *CONFIGS,
                       "--directory", local_dir], {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"},
                      local_dir / "snakemake.out").start()
    started = time.monotonic()
    # The literal profile name: found through $XDG_CONFIG_HOME/snakemake/slurm.
    slurm = Snakemake(["--profile", "slurm", *TARGETS, *CONFIGS, "--directory", slurm_dir, *SLURM_TEST_ARGS],
                      env, slurm_dir / "snakemake.out").start()
    try:
        slurm_out = slurm.check(slurm_dir, timeout=1500)
        slurm_seconds = time.monotonic() - started
        local.check(local_dir, timeout=900)
    finally:
        slurm.kill()
        local.kill()
    print(f"SLURM run: {slurm_seconds:.0f}s")
    return {"local": local_dir, "slurm": slurm_dir, "slurm_output": slurm_out}


def test_every_gpu_rule_ran_as_a_slurm_job_on_the_gpu_partition(runs, slurm_cluster):
    ids = submitted_ids(runs["slurm_output"])
    jobs = {j["id"]: j for j in slurm_cluster.jobs()}
    assert ids and set(ids) <= set(jobs), (ids, sorted(jobs))
    ran = {}
    for jid in ids:
        job = jobs[jid]
        assert job["state"] == "COMPLETED", job
        rule, wildcards = rule_of(job)
        ran.setdefault(rule, []).append((wildcards, job))
    assert set(ran) == set(GPU_RULES) | CPU_RULES, sorted(ran)
    for rule, gpus in GPU_RULES.items():
        for _, job in ran[rule]:
            assert job["partition"] == "gpu", job
            assert job["tres_per_job"] == f"gres:gpu:{gpus}", job
    for rule in CPU_RULES:
        for _, job in ran[rule]:
            assert job["partition"] == "cpu" and "gpu" not in job["tres_per_job"], job
    assert sorted(w for w, _ in ran["emotion_align"]) == ["chi2-rebel_1_eta10_0", "rebel_0_eta10_0"]


def test_alignment_ran_as_two_process_deepspeed_jobs_after_the_canary(runs, slurm_cluster):
    work = runs["slurm"]
    canary = json.loads((work / "results/slurmtest/canary/gpu_job.json").read_text())
    assert canary["ok"] and canary["world_size"] == 2 and canary["expected_gpus"] == 2
    assert canary["slurm"]["SLURM_GPUS_ON_NODE"] == "2" and canary["slurm"]["SLURM_JOB_PARTITION"] == "gpu"
    assert canary["cuda_visible_devices"] == "0,1" and canary["backend"] == "gloo"   # fake GPUs: CPU + gloo
    assert [r["world_size"] for r in canary["ranks"]] == [2, 2]
    jobs = {j["id"]: j for j in slurm_cluster.jobs()}
    canary_job = jobs[canary["slurm"]["SLURM_JOB_ID"]]
    assert rule_of(canary_job)[0] == "gpu_canary"
    align_jobs = [j for jid, j in jobs.items()
                  if jid in submitted_ids(runs["slurm_output"]) and rule_of(j)[0] == "emotion_align"]
    assert len(align_jobs) == 2 and all(j["start"] >= canary_job["end"] for j in align_jobs)
    for variant, out in ALIGN.items():
        info = json.loads((work / out / "run_info.json").read_text())
        assert info["world_size"] == 2, variant                       # torchrun --nproc_per_node 2
        assert info["zero_stage"] == 2 and info["precision"] == "fp32"
        assert info["cuda_visible_devices"] == "0,1", variant          # inside the SLURM GPU step
        assert info["global_batch"] == info["micro_batch"] * info["grad_accum"] * 2


def _same_outputs(a: Path, b: Path, relpaths) -> list[str]:
    differ = []
    for rel in relpaths:
        if rel.endswith(".parquet"):
            if not pd.read_parquet(a / rel).equals(pd.read_parquet(b / rel)):
                differ.append(rel)
        elif not filecmp.cmp(a / rel, b / rel, shallow=False):
            differ.append(rel)
    return differ


def test_outputs_equal_the_local_profile(runs):
    compared = [f"{EM}/sft/metrics.json", f"{EM}/sft/model/model.safetensors",
                f"{EM}/reward_model/metrics.json", f"{EM}/reward_model/model/model.safetensors",
                f"{EM}/pairs/0/train.parquet"]
    for out in ALIGN.values():
        compared += [f"{out}/metrics.json", f"{out}/history.csv", f"{out}/policy/model.safetensors"]
    assert _same_outputs(runs["local"], runs["slurm"], compared) == []


def test_cancelled_alignment_job_is_retried_and_only_its_complete_output_is_used(runs, env, slurm_cluster):
    """scancel the running chi2-rebel job; Snakemake's retry rebuilds it before evaluation reads it."""
    work, align = runs["slurm"], ALIGN["chi2-rebel"]
    for path in (work / align, work / "logs/slurmtest/emotion/align/chi2-rebel/1/eta10/0.log"):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    known = {j["id"] for j in slurm_cluster.jobs()}
    run = Snakemake(["--profile", "slurm", EVAL_CHI2, *CONFIGS, "--directory", work, *SLURM_TEST_ARGS],
                    env, work / "snakemake-cancel.out").start()
    try:
        # Wait until the alignment job runs and its launcher has started (the rule log exists), then cancel.
        deadline, victim = time.monotonic() + 600, None
        while victim is None and time.monotonic() < deadline and run.proc.poll() is None:
            for job in slurm_cluster.jobs():
                if (job["id"] not in known and job["state"] == "RUNNING"
                        and rule_of(job) == ("emotion_align", "chi2-rebel_1_eta10_0")
                        and (work / "logs/slurmtest/emotion/align/chi2-rebel/1/eta10/0.log").exists()):
                    victim = job["id"]
            if victim is None:
                time.sleep(0.25)
        assert victim, f"the alignment job never ran:\n{run.output[-3000:]}"
        assert not (work / align / "metrics.json").exists()
        slurm_cluster.run("scancel", victim)
        out = run.check(work, timeout=900)
    finally:
        run.kill()

    jobs = [j for j in slurm_cluster.jobs() if j["id"] not in known]
    by_rule = [(rule_of(j), j["state"], j["id"]) for j in jobs]
    # attempt 1 cancelled, attempt 2 completed, then the evaluation: nothing else reran
    assert by_rule == [(("emotion_align", "chi2-rebel_1_eta10_0"), "CANCELLED", victim),
                       (("emotion_align", "chi2-rebel_1_eta10_0"), "COMPLETED", jobs[1]["id"]),
                       (("emotion_evaluate", "chi2-rebel_1_eta10_0"), "COMPLETED", jobs[2]["id"])], by_rule
    assert f"SLURM-job '{victim}' failed, SLURM status is: 'CANCELLED'" in out
    assert "Trying to restart job" in out
    assert jobs[2]["start"] >= jobs[1]["end"]          # evaluation read the retried, complete policy
    compared = [f"{align}/metrics.json", f"{align}/history.csv", f"{align}/policy/model.safetensors", EVAL_CHI2]
    assert _same_outputs(runs["local"], work, compared) == []
    assert not list((work / align).glob(".policy.*"))   # no half-written directory left behind
