"""The emotion stage of the session's mini run (tests/conftest.py): table, figures, run info, rebuilds."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ["rebel", "w-rebel", "kl-rebel", "chi2-rebel", "dpo", "wdpo", "kl-dpo", "chi2-dpo"]


def snakemake(*args, cwd=REPO, timeout=1800):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_mini_table_has_every_variant_with_finite_numbers(mini_run):
    table = pd.read_csv(mini_run / "results/mini/tables/emotion_robustness.csv", dtype={"radius": str})
    assert set(VARIANTS) <= set(table.variant)
    for v in VARIANTS:
        radii = table[table.variant == v].radius
        assert len(radii) == (1 if v in ("rebel", "dpo") else 2), (v, list(radii))
    numeric = table.select_dtypes("number")
    assert numeric.notna().all().all() and (numeric.abs() < 1e6).all().all()
    for ext in ("md", "tex"):
        assert (mini_run / f"results/mini/tables/emotion_robustness.{ext}").stat().st_size > 100


@pytest.mark.slow
def test_mini_figure_and_run_info(mini_run):
    for ext in ("pdf", "png"):
        assert (mini_run / f"results/mini/figures/emotion_alpha_sweep.{ext}").stat().st_size > 5000
    info = json.loads((mini_run / "results/mini/emotion/align/chi2-rebel/1/eta10/0/run_info.json").read_text())
    assert info["world_size"] == 2                      # the 2-process DeepSpeed job (gloo)
    assert info["zero_stage"] == 2 and info["precision"] == "fp32"
    assert info["global_batch"] == info["micro_batch"] * info["grad_accum"] * info["world_size"]
    assert "versions" in info and info["versions"]["deepspeed"] != "not installed"
    metrics = json.loads((mini_run / "results/mini/emotion/reward_model/metrics.json").read_text())
    assert set(metrics["test_roc_auc"]) == {"sadness", "joy", "love", "anger", "fear"}


@pytest.mark.slow
def test_rebuilding_one_figure_reruns_nothing_upstream(mini_copy):
    mini_run = mini_copy
    target = "results/mini/figures/emotion_alpha_sweep.pdf"
    (mini_run / target).unlink()
    result = snakemake(target, "--cores", "1", "--configfile", str(REPO / "presets/mini.yaml"),
                       "--directory", str(mini_run), "--snakefile", str(REPO / "Snakefile"), "-n", "--quiet", "rules")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]
    assert "emotion_report" in out and "emotion_align" not in out and "emotion_sft" not in out




ONLINE_GRID = """
emotion:
  regimes: [offline, online]
  online:
    variants: [rebel, kl-rebel]
    seeds: [0]
    hparams: {eta: [10.0], beta: [0.1]}
    align: {regime: online, anchor: iterate, epochs: 1, iterations: 2, iteration_batch: 32, updates_per_iteration: 2,
            global_batch: 16, micro_batch: 16, lr: 1.0e-3, warmup_ratio: 0.1, max_length: 40, max_new_tokens: 24}
"""


@pytest.mark.slow
def test_the_online_grid_runs_and_is_reported_next_to_the_offline_one(mini_copy, tmp_path):
    """emotion.regimes: [offline, online] adds REBEL's own loop as a second grid on the same SFT, reward model
    and prompt pools; it is reported as emotion_online_* with its own tilt and verdict tables."""
    from workflow_helpers import MINI, REPO as ROOT, snakemake

    extra = tmp_path / "online.yaml"
    extra.write_text(ONLINE_GRID)
    target = "results/mini/tables/emotion_online_verdict.csv"
    where = ["--directory", str(mini_copy), "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(MINI), str(extra)]
    plan = snakemake("-n", target, "--quiet", "rules", *where)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout + plan.stderr, re.M))
    # rebel + kl-rebel at its two mini radii; the offline grid and the shared stages are not rerun
    assert counts.get("emotion_align_online") == "3" and "emotion_align" not in counts, counts
    run = snakemake(target, "--cores", "2", *where)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    tables = mini_copy / "results/mini/tables"
    verdict = pd.read_csv(tables / "emotion_online_verdict.csv")
    assert set(verdict["robust"]) == {"kl-rebel"} and set(verdict["mixture"]) == {"convex", "geometric"}
    history = pd.read_csv(mini_copy / "results/mini/emotion/online/align/rebel/0/eta10/0/history.csv")
    assert len(history) == 2 * 2 * 2 and history["mean_reward"].notna().all()    # iterations x passes x minibatches
    assert (tables / "emotion_online_tilt.md").exists()
