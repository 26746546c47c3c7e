"""The emotion stage of the session's mini run (tests/conftest.py): table, figures, run info, rebuilds."""
import json
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


