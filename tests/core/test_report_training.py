"""What every report shares about figures: the headless backend and the training-curves flags."""
import argparse
import os
import subprocess
import sys

from workflow_scripts.core.report.training import add_training_curves_args


def test_importing_core_report_selects_agg_even_after_pyplot():
    # another backend asked for (svg: one that starts without a display too, so only the switch can give Agg),
    # and pyplot imported first: the report modules must still draw with Agg
    code = ("import matplotlib, matplotlib.pyplot; import workflow_scripts.core.report.tables; "
            "print(matplotlib.get_backend())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MPLBACKEND": "svg"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().lower() == "agg"


def test_training_curves_flags_default_to_no_figure_and_take_the_figure_flags_name():
    p = argparse.ArgumentParser()
    add_training_curves_args(p)
    assert vars(p.parse_args([])) == {"histories": [], "training": None}
    assert vars(p.parse_args(["--histories", "a/history.csv", "b/history.csv", "--training", "fig/t"])) == {
        "histories": ["a/history.csv", "b/history.csv"], "training": "fig/t"}
    hh = argparse.ArgumentParser()
    hh.add_argument("--training", nargs="+")          # HH: --training names the training completions
    add_training_curves_args(hh, "--training-figure")
    a = hh.parse_args(["--training", "x=y.parquet", "--training-figure", "fig/hh"])
    assert a.training == ["x=y.parquet"] and a.training_figure == "fig/hh" and a.histories == []
