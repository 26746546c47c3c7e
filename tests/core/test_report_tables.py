"""The table and figure helpers every report uses (workflow_scripts/core/report/): display names,
mean +- std formatting, LaTeX escaping, the csv/md/tex writer, atomic files, row order and seed means."""
from __future__ import annotations

import statistics

import pandas as pd
import pytest

from workflow_scripts.core.report.aggregate import over_seeds, sort_runs
from workflow_scripts.core.report.tables import (
    atomic_path,
    fmt_variant,
    format_mean_std,
    latex_escape,
    mean_pm_std,
    sample_std,
    write_table,
)


# --------------------------------------------------------------------------
def test_fmt_variant_names():
    expected = {
        "rebel": "REBEL", "w-rebel": "W-REBEL", "kl-rebel": "KL-REBEL",
        "chi2-rebel": "χ²-REBEL", "dpo": "DPO", "wdpo": "WDPO", "kl-dpo": "KL-DPO",
        "chi2-dpo": "χ²-DPO", "sft": "SFT",
    }
    for k, v in expected.items():
        assert fmt_variant(k) == v
    assert fmt_variant("chi2-rebel", latex=True) == r"$\chi^2$-REBEL"
    assert fmt_variant("chi2-dpo", latex=True) == r"$\chi^2$-DPO"


def test_mean_pm_std_formatting():
    assert mean_pm_std([0.5, 0.524]) == "0.512 ± 0.017"
    assert mean_pm_std([0.512]) == "0.512"  # n=1: mean only
    assert mean_pm_std([]) == "–"
    assert format_mean_std(float("nan"), 0.1) == "–"
    assert format_mean_std(0.5, 0.0, n=1) == "0.500"
    assert format_mean_std(0.5, 0.01, n=3, precision=2) == "0.50 ± 0.01"
    assert sample_std([1.0]) == 0.0
    assert sample_std([1.0, 3.0]) == pytest.approx(statistics.stdev([1.0, 3.0]))


def test_latex_escape():
    assert latex_escape("a_b & 50%") == r"a\_b \& 50\%"
    assert latex_escape("0.5 ± 0.1") == r"0.5 $\pm$ 0.1"
    assert latex_escape("χ²-DPO") == r"$\chi^2$-DPO"


def test_write_table_generic(tmp_path):
    df = pd.DataFrame({
        "name_x": ["a_b", "c"], "n": [2, 1],
        "score_mean": [0.5, 0.25], "score_std": [0.1, 0.0], "plain": [1.23456, float("nan")],
    })
    paths = write_table(df, tmp_path / "sub" / "t", columns={"score": "Score"}, count_column="n")
    assert set(paths) == {"csv", "md", "tex"}
    pd.testing.assert_frame_equal(pd.read_csv(paths["csv"]), df)
    md = paths["md"].read_text()
    assert "0.500 ± 0.100" in md and " 0.250 |" in md and "Score" in md and "–" in md
    tex = paths["tex"].read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"a\_b" in tex
    assert r"name\_x" in tex and r"0.500 $\pm$ 0.100" in tex
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["t.csv", "t.md", "t.tex"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.pdf"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.pdf"]




def test_sort_runs_orders_variants_then_radius_and_hp_numerically():
    df = pd.DataFrame({"variant": ["wdpo", "sft", "wdpo", "kl-rebel", "kl-rebel"], "radius": ["10", "0", "2", "1", "1"],
                       "hp": ["beta0.1", "sft", "beta0.1", "eta100", "eta10"]})
    out = sort_runs(df)
    assert list(zip(out["variant"], out["radius"], out["hp"])) == [
        ("sft", "0", "sft"), ("kl-rebel", "1", "eta10"), ("kl-rebel", "1", "eta100"),
        ("wdpo", "2", "beta0.1"), ("wdpo", "10", "beta0.1")]


def test_over_seeds_means_and_sample_std_ignore_nan():
    df = pd.DataFrame({"variant": ["a"] * 3 + ["b"], "seed": [0, 1, 2, 0], "x": [1.0, 2.0, float("nan"), 5.0]})
    out = over_seeds(df, ["variant"], ["x"]).set_index("variant")
    assert out.loc["a", "n_seeds"] == 3 and out.loc["a", "x_mean"] == 1.5
    assert out.loc["a", "x_std"] == pytest.approx(statistics.stdev([1.0, 2.0]))
    assert out.loc["b", "x_std"] == 0.0                      # one seed: 0, and the tables print the mean only
