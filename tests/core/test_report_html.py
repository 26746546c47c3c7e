"""The HTML report of the session's mini run, opened in a real headless browser: it renders (a screenshot that is
not blank), lists one category per experiment, and carries every results table and one format per figure.
Skipped, with its reason, where Chromium is not installed (.ci/run installs Debian's).

What the report registers is read from its embedded ``var results = {...}`` object, not searched for in the page:
the page also embeds every rule's output list (PDFs and Markdown tables included), so a path appearing somewhere in
it says nothing about what the report shows."""
from __future__ import annotations

import json
import re
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
    categories = ("Emotion alignment", "ArmoRM alignment", "HH-Alignment", "Radius-coverage study",
                  "Leaderboard (lm-eval)")
    unrendered = [c for c in categories if f"<span>{c}</span>" not in dom]   # spans the report's script renders
    assert not unrendered, f"categories not rendered: {unrendered} (page of {len(dom)} characters)"
    registered = set(registered_results(report.read_text()))
    results = mini_copy / "results/mini"
    tables = {f"results/mini/tables/{t.name}" for t in (results / "tables").glob("*.csv")
              if not t.name.endswith("_runs.csv")}                       # per-run rows: a file, not a table to show
    figures = {f"results/mini/figures/{f.name}" for f in (results / "figures").glob("*.png")}
    assert len(tables) >= 5 and len(figures) >= 5, (tables, figures)       # the globs found the mini outputs
    assert registered == tables | figures, (sorted(registered - tables - figures), sorted(tables | figures - registered))
    shot = tmp_path / "report.png"
    subprocess.run([*browse, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=180)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1000, 1400) and pixels.std() > 0.05      # a page, not a blank


def registered_results(html: str) -> dict:
    """The report's registered results, keyed by path: the JSON object its template writes as ``var results``."""
    found = re.search(r"<script id=\"results\">\s*var results = (\{.*?\});\s*</script>", html, re.S)
    assert found, "the report has no embedded results object (Snakemake's template changed?)"
    return json.loads(found.group(1))
