"""Helpers shared by the workflow-level tests: running Snakemake and the align CLI."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "presets/mini.yaml"


def snakemake(*args, cwd=REPO, timeout=1800, env=None):
    """Run Snakemake from the project's interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def snakemake_in(workdir, *args, **kwargs):
    """Snakemake on the mini preset with `workdir` as working directory (outputs go there)."""
    return snakemake(*args, "--configfile", str(MINI), "--directory", str(workdir),
                     "--snakefile", str(REPO / "Snakefile"), **kwargs)


def planned_jobs(*args, workdir=None) -> dict[str, int]:
    """``{rule: number of jobs}`` of a dry run (``snakemake -n ... --quiet rules``) of ``args``: from the checkout, or
    on the mini preset in ``workdir`` (:func:`snakemake_in`); asserts that Snakemake could plan it."""
    plan = ("-n", *args, "--quiet", "rules", "--cores", "1")
    result = snakemake_in(workdir, *plan) if workdir else snakemake(*plan)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {}
    for line in (result.stdout + result.stderr).splitlines():      # the job-stats table: "<rule>  <count>"
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def align_cli(mini_run, out, *extra, nproc=1, env=None, check=True):
    """The alignment entry point on the mini run's pairs and SFT policy, through torchrun."""
    em = Path(mini_run) / "results/mini/emotion"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "workflow_scripts.core.train.align", "--pairs", str(em / "pairs/0/train.parquet"),
           "--policy", str(em / "sft/model"), "--reward-model", str(em / "reward_model/model"),
           "--scorer", "workflow_scripts.emotion.reward:EmotionScorer", "--out", str(out),
           "--eta", "10", "--beta", "0.1", "--global-batch", "16", "--micro-batch", "8", "--lr", "1e-3",
           "--max-length", "40", "--max-new-tokens", "12", "--bt-scale", "10", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads((Path(out) / "metrics.json").read_text())
    return result
