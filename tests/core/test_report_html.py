"""The HTML report of the session's mini run, opened in a real headless browser: it renders (a screenshot that is
not blank), lists one category per experiment, and carries every results table and one format per figure.
Skipped, with its reason, where Chromium is not installed (.ci/run installs Debian's)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from workflow_helpers import snakemake_in

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000", "--virtual-time-budget=8000"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_report_renders_every_table_and_one_format_per_figure(mini_copy, tmp_path):
    report = tmp_path / "report.html"
    built = snakemake_in(mini_copy, "--report", str(report), timeout=600)
    assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
    browse = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browse, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180).stdout
    for category in ("Emotion alignment", "ArmoRM alignment", "HH-Alignment", "Radius-coverage study",
                     "Leaderboard (lm-eval)"):
        assert f"<span>{category}</span>" in dom, category            # rendered by the report's script
    results = mini_copy / "results/mini"
    for table in sorted((results / "tables").glob("*.csv")):
        if table.name.endswith("_runs.csv"):
            continue
        assert f"results/mini/tables/{table.name}" in dom, table.name
    for figure in sorted((results / "figures").glob("*.png")):
        assert f"results/mini/figures/{figure.name}" in dom, figure.name
    assert "figures/emotion_alpha_sweep.pdf" not in dom                  # one format per figure
    shot = tmp_path / "report.png"
    subprocess.run([*browse, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=180)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1000, 1400) and pixels.std() > 0.05      # a page, not a blank
