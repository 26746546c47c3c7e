"""Tests for workflow_scripts.core.report.tables and workflow_scripts.emotion.report.

Synthetic evaluation CSVs with known numbers: 2 variants (w-rebel, wdpo) ×
2 radii × 2 seeds, plus an SFT baseline (1 seed), on the test split and on a
validation split whose ranking of the radii is the opposite one (selection
must follow validation).  Expected table values are computed by hand with
:mod:`statistics` (``statistics.stdev`` is the sample std, i.e. ``ddof=1``;
with a single seed the std is defined as 0).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.emotion import report as emotion
from workflow_scripts.core.report.tables import (
    fmt_hparam,
    fmt_variant,
    format_mean_std,
    latex_escape,
)

ALPHAS = [0.0, 0.1, 0.5, 1.0]
ALPHA0 = 0.1
SEEDS = [1, 2]
# Convex-mixture reward profiles over ALPHAS (seed 0 offset).  w-rebel: radius
# 0.1 has the higher mean over alpha but radius 0.5 the higher worst case.
# wdpo radii "2" and "10" check numeric (not lexicographic) radius handling.
PROFILES: dict[tuple[str, str], list[float]] = {
    ("w-rebel", "0.1"): [0.9, 1.0, 0.6, 0.2],
    ("w-rebel", "0.5"): [0.6, 0.65, 0.6, 0.5],
    ("wdpo", "2"): [0.7, 0.8, 0.3, 0.1],
    ("wdpo", "10"): [0.5, 0.5, 0.5, 0.5],
}
# Validation ranks the radii the other way round: selecting on it picks w-rebel 0.1 and wdpo 2 (worst
# case) where selecting on test would pick 0.5 and 10.
VALIDATION_PROFILES: dict[tuple[str, str], list[float]] = {
    ("w-rebel", "0.1"): [0.7, 0.7, 0.7, 0.7],
    ("w-rebel", "0.5"): [0.9, 0.2, 0.9, 0.9],
    ("wdpo", "2"): [0.6, 0.6, 0.6, 0.6],
    ("wdpo", "10"): [0.2, 0.9, 0.9, 0.9],
}
HP = {"w-rebel": "eta1", "wdpo": "beta0.1", "sft": "sft"}
SFT_PROFILE = [0.3, 0.3, 0.25, 0.2]
GEOMETRIC_SHIFT = -0.05


def reward(variant: str, radius: str, seed: int, mixture: str, i: int, split: str = "test") -> float:
    profiles = PROFILES if split == "test" else VALIDATION_PROFILES
    base = SFT_PROFILE if variant == "sft" else profiles[(variant, radius)]
    r = base[i] + 0.01 * seed * (i + 1)  # seed-dependent, alpha-dependent noise
    if mixture == "geometric":
        r += GEOMETRIC_SHIFT - 0.02 * seed
    return r


def run_frame(variant: str, radius: str, seed: int, split: str = "test") -> pd.DataFrame:
    rows = [
        {"variant": variant, "radius": radius, "hp": HP[variant], "seed": seed, "split": split, "mixture": mix,
         "alpha": a, "reward": reward(variant, radius, seed, mix, i, split)}
        for mix in ("convex", "geometric")
        for i, a in enumerate(ALPHAS)
    ]
    return pd.DataFrame(rows)


@pytest.fixture()
def inputs(tmp_path: Path) -> list[Path]:
    paths = []
    d = tmp_path / "eval"
    d.mkdir()
    for split in ("validation", "test"):
        for variant, radius in PROFILES:
            for seed in SEEDS:
                p = d / f"{split}_{variant}_r{radius}_s{seed}.csv"
                run_frame(variant, radius, seed, split).to_csv(p, index=False)
                paths.append(p)
        p = d / f"{split}_sft.csv"
        run_frame("sft", "0", 0, split).to_csv(p, index=False)
        paths.append(p)
    return paths


def hand_cell(variant: str, radius: str, seeds: list[int], mixture: str, stat: str):
    per_seed = []
    for s in seeds:
        vals = [reward(variant, radius, s, mixture, i) for i in range(len(ALPHAS))]
        per_seed.append(statistics.fmean(vals) if stat == "mean" else min(vals))
    std = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
    return statistics.fmean(per_seed), std


def build(inputs, tmp_path, selection="worst"):
    fig = tmp_path / "out" / "figures" / "emotion_alpha_sweep"
    tab = tmp_path / "out" / "tables" / "emotion_robustness"
    table, best = emotion.build_report(inputs, ALPHA0, fig, tab, selection)
    return table, best, fig, tab


# --------------------------------------------------------------------------
# emotion.py
# --------------------------------------------------------------------------
def test_table_matches_hand_computation(inputs, tmp_path):
    table, _, _, tab = build(inputs, tmp_path)
    csv = pd.read_csv(tab.with_suffix(".csv"), dtype={"radius": str})
    assert list(csv.columns) == [
        "variant", "radius", "hp", "n_seeds",
        "convex_mean_mean", "convex_mean_std", "convex_worst_mean", "convex_worst_std",
        "geometric_mean_mean", "geometric_mean_std",
        "geometric_worst_mean", "geometric_worst_std", "validation_score", "selected",
    ]
    # Row order: SFT first, REBEL family before DPO family, radii numeric.
    assert list(zip(csv["variant"], csv["radius"])) == [
        ("sft", "0"), ("w-rebel", "0.1"), ("w-rebel", "0.5"), ("wdpo", "2"), ("wdpo", "10"),
    ]
    cells = [("sft", "0", [0])] + [(v, r, SEEDS) for v, r in PROFILES]
    for variant, radius, seeds in cells:
        row = csv[(csv["variant"] == variant) & (csv["radius"] == radius)].iloc[0]
        assert row["n_seeds"] == len(seeds)
        for mix in ("convex", "geometric"):
            for stat in ("mean", "worst"):
                m, s = hand_cell(variant, radius, seeds, mix, stat)
                assert row[f"{mix}_{stat}_mean"] == pytest.approx(m, abs=1e-12)
                assert row[f"{mix}_{stat}_std"] == pytest.approx(s, abs=1e-12)
    # one explicit number: w-rebel 0.1, convex, worst case = last alpha
    w1 = [0.2 + 0.01 * s * 4 for s in SEEDS]
    row = csv[(csv["variant"] == "w-rebel") & (csv["radius"] == "0.1")].iloc[0]
    assert row["convex_worst_mean"] == pytest.approx(0.26)
    assert row["convex_worst_std"] == pytest.approx(statistics.stdev(w1))
    sft = csv[csv["variant"] == "sft"].iloc[0]
    assert sft["convex_mean_std"] == 0.0  # n=1 -> std 0


def test_selection_reads_validation_not_test(inputs, tmp_path):
    """Validation and test rank the radii oppositely: the choice follows validation, the table shows test."""
    table, best, _, _ = build(inputs, tmp_path, "worst")
    assert best == {"w-rebel": ("0.1", "eta1"), "wdpo": ("2", "beta0.1")}
    on_test = emotion.select_configs(emotion.robustness_table(emotion.load_inputs(inputs).query("split == 'test'")))
    assert dict(zip(on_test["variant"], on_test["radius"])) == {"w-rebel": "0.5", "wdpo": "10"}   # what test would pick
    chosen = table[table["selected"]]
    assert list(zip(chosen["variant"], chosen["radius"])) == [("w-rebel", "0.1"), ("wdpo", "2")]
    # the table's numbers are the test split's; the validation score is the selection criterion
    row = table[(table["variant"] == "w-rebel") & (table["radius"] == "0.1")].iloc[0]
    assert row["convex_worst_mean"] == pytest.approx(hand_cell("w-rebel", "0.1", SEEDS, "convex", "worst")[0])
    assert row["validation_score"] > table[(table["variant"] == "w-rebel") & (table["radius"] == "0.5")].iloc[0][
        "validation_score"]
    _, best_mean, _, _ = build(inputs, tmp_path, "mean")
    assert best_mean == {"w-rebel": ("0.5", "eta1"), "wdpo": ("10", "beta0.1")}


def test_selection_without_validation_rows_is_an_error(inputs, tmp_path):
    test_only = [p for p in inputs if p.name.startswith("test_")]
    with pytest.raises(ValueError, match="no evaluation rows for the validation split"):
        emotion.build_report(test_only, ALPHA0, tmp_path / "f", tmp_path / "t")


def test_selection_tie_goes_to_smallest_radius():
    tab = pd.DataFrame({
        "variant": ["kl-rebel", "kl-rebel", "kl-rebel"], "radius": ["10", "2", "0.5"], "hp": ["eta1"] * 3,
        "n_seeds": [1, 1, 1],
        **{f"{m}_{s}_{a}": [0.4, 0.5, 0.5] for m in ("convex", "geometric")
           for s in ("mean", "worst") for a in ("mean", "std")},
    })
    chosen = emotion.select_configs(tab)
    assert list(chosen["radius"]) == ["0.5"]


def test_table_files_exist_and_agree(inputs, tmp_path):
    _, _, _, tab = build(inputs, tmp_path)
    csv = pd.read_csv(tab.with_suffix(".csv"), dtype={"radius": str})
    md_lines = tab.with_suffix(".md").read_text().strip().splitlines()
    tex = tab.with_suffix(".tex").read_text()
    header = [c.strip() for c in md_lines[0].strip("|").split("|")]
    assert header == ["Variant", "Radius", "η / β", "Seeds (n)", "Convex mean", "Convex worst",
                      "Geometric mean", "Geometric worst", "Validation (selection)", "Selected"]
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in md_lines[2:]]
    assert len(body) == len(csv)
    tex_rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\")][1:]  # skip header
    assert len(tex_rows) == len(csv)
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    for (_, row), md_row, tex_row in zip(csv.iterrows(), body, tex_rows):
        expected = [fmt_variant(row["variant"]), row["radius"], fmt_hparam(row["hp"]), str(row["n_seeds"])]
        for mix in ("convex", "geometric"):
            for stat in ("mean", "worst"):
                expected.append(format_mean_std(
                    row[f"{mix}_{stat}_mean"], row[f"{mix}_{stat}_std"], row["n_seeds"]))
        expected.append(f"{row['validation_score']:.3f}")
        expected.append("✓" if row["selected"] else "")
        assert md_row == expected
        assert tex_row == " & ".join(latex_escape(c) for c in expected) + r" \\"
    # n=1 (SFT) shows the mean only; others show mean ± std
    assert "±" not in body[0][4] and "±" in body[1][4]


def test_figure_written_and_nothing_else(inputs, tmp_path):
    _, _, fig, tab = build(inputs, tmp_path)
    for ext in ("pdf", "png"):
        p = fig.with_name(f"{fig.name}.{ext}")
        assert p.is_file() and p.stat().st_size > 1000
    assert fig.with_name(fig.name + ".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.with_name(fig.name + ".pdf").read_bytes()[:5] == b"%PDF-"
    out = sorted(str(p.relative_to(tmp_path / "out"))
                 for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert out == [
        "figures/emotion_alpha_sweep.pdf", "figures/emotion_alpha_sweep.png",
        "tables/emotion_robustness.csv", "tables/emotion_robustness.md",
        "tables/emotion_robustness.tex",
    ]


def test_cli_main(inputs, tmp_path, caplog):
    fig = tmp_path / "cli" / "fig"
    tab = tmp_path / "cli" / "tab"
    with caplog.at_level("INFO"):
        rc = emotion.main(["--inputs", *map(str, inputs), "--alpha0", "0.1",
                           "--figure", str(fig), "--table", str(tab)])
    assert rc == 0
    assert (tmp_path / "cli" / "fig.png").is_file() and (tmp_path / "cli" / "tab.tex").is_file()
    assert any("selected on validation (worst) W-REBEL=0.1/eta1, WDPO=2/beta0.1" in r.getMessage()
               for r in caplog.records)


def test_missing_column_names_file(inputs, tmp_path):
    bad = tmp_path / "bad_run.csv"
    run_frame("wdpo", "2", 1).drop(columns=["reward"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad_run\.csv.*missing column\(s\) reward") as exc:
        emotion.load_inputs([*inputs, bad])
    assert "\n" not in str(exc.value)


def test_nan_value_names_file(tmp_path):
    bad = tmp_path / "nan_run.csv"
    df = run_frame("wdpo", "2", 1)
    df.loc[3, "reward"] = float("nan")
    df.to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"nan_run\.csv.*NaN.*reward"):
        emotion.load_inputs([bad])


def test_duplicate_and_grid_mismatch_rejected(inputs, tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        emotion.load_inputs([*inputs, inputs[0]])
    odd = tmp_path / "odd_grid.csv"
    df = run_frame("w-rebel", "0.5", 7)
    df.loc[df["alpha"] == 1.0, "alpha"] = 0.9
    df.to_csv(odd, index=False)
    with pytest.raises(ValueError, match=r"odd_grid\.csv.*alpha grid"):
        emotion.load_inputs([*inputs, odd])


# --------------------------------------------------------------------------
# verdict: robust minus base, paired by seed, 95% t-interval
# --------------------------------------------------------------------------
def _worst_case_rows(variant, radius, hp, seed, worst):
    """Test rows whose worst case over alpha is `worst` (both mixtures)."""
    return [{"variant": variant, "radius": radius, "hp": hp, "seed": seed, "split": "test", "mixture": m,
             "alpha": a, "reward": worst + (0.3 if a < 1 else 0.0)} for m in ("convex", "geometric") for a in ALPHAS]


def test_verdict_is_a_corrected_paired_t_test_over_seeds():
    """Against scipy's paired t-test and a hand-applied Holm correction over the table's 4 comparisons."""
    from scipy import stats as sps

    base = {s: 0.45 + 0.01 * s for s in range(10)}
    robust = {"kl-rebel": {s: base[s] + 0.05 + 0.004 * (s % 3) for s in range(10)},    # clearly better
              "chi2-rebel": {s: base[s] + (0.02 if s % 2 else -0.021) for s in range(10)}}   # same
    rows = [r for s, w in base.items() for r in _worst_case_rows("rebel", "0", "eta1", s, w)]
    for v, per_seed in robust.items():
        rows += [r for s, w in per_seed.items() for r in _worst_case_rows(v, "0.5", "eta10", s, w)]
    best = {"rebel": ("0", "eta1"), "kl-rebel": ("0.5", "eta10"), "chi2-rebel": ("0.5", "eta10")}
    table = emotion.verdict_table(pd.DataFrame(rows), best)
    assert len(table) == 4 and set(table["mixture"]) == {"convex", "geometric"}
    assert "wdpo" not in set(table["robust"])                       # pairs whose variants did not run are left out
    pvalues = {}
    for v in robust:
        a, b = [robust[v][s] for s in base], [base[s] for s in base]
        ref = sps.ttest_rel(a, b)
        pvalues[v] = ref.pvalue
        for row in table[table["robust"] == v].itertuples():
            assert row.n_seeds == 10 and row.base == "rebel" and row.base_hp == "eta1"
            assert row.delta == pytest.approx(statistics.fmean(np.subtract(a, b)), abs=1e-12)
            assert row.p == pytest.approx(ref.pvalue, rel=1e-9)
            assert (row.ci_low, row.ci_high) == pytest.approx(tuple(ref.confidence_interval(0.95)), rel=1e-9)
            bonferroni = sps.ttest_rel(a, b).confidence_interval(1 - 0.05 / 4)
            assert (row.sim_low, row.sim_high) == pytest.approx(tuple(bonferroni), rel=1e-9)
            # the MDE is the effect a paired t-test at the Bonferroni level 0.05/4 detects with 80 % power
            crit, nc = sps.t.ppf(1 - 0.05 / 4 / 2, 9), row.mde * np.sqrt(10) / np.std(np.subtract(a, b), ddof=1)
            assert sps.nct.sf(crit, 9, nc) + sps.nct.cdf(-crit, 9, nc) == pytest.approx(0.8, abs=1e-6)
    # Holm over 4 comparisons (each variant's p twice: both mixtures carry the same worst case here)
    ps = sorted([pvalues["kl-rebel"]] * 2 + [pvalues["chi2-rebel"]] * 2)
    steps = [min(1, p * (4 - k)) for k, p in enumerate(ps)]
    holm = np.maximum.accumulate(steps)
    expected = {"kl-rebel": holm[0], "chi2-rebel": holm[2]}
    for row in table.itertuples():
        assert row.p_holm == pytest.approx(expected[row.robust], rel=1e-9)
        assert row.verdict == ("better" if row.robust == "kl-rebel" else "same")
    assert expected["kl-rebel"] < 0.05 < expected["chi2-rebel"]


def test_tilt_is_reward_at_alpha0_minus_worst_case_on_validation():
    rows = []
    for seed, (at0, worst) in enumerate([(0.30, 0.10), (0.34, 0.12)]):
        for mix in ("convex", "geometric"):
            for a in ALPHAS:
                value = at0 if a == ALPHA0 else worst if a == 1.0 else at0 - 0.05
                rows.append({"variant": "rebel", "radius": "0", "hp": "eta10", "seed": seed, "split": "validation",
                             "mixture": mix, "alpha": a, "reward": value})
    tilt = emotion.tilt_table(pd.DataFrame(rows), ALPHA0).iloc[0]
    assert tilt["convex_tilt_mean"] == pytest.approx(statistics.fmean([0.20, 0.22]))
    assert tilt["geometric_tilt_std"] == pytest.approx(statistics.stdev([0.20, 0.22]))
    assert tilt["convex_at_alpha0_mean"] == pytest.approx(0.32) and tilt["convex_worst_mean"] == pytest.approx(0.11)
    with pytest.raises(ValueError, match="not on the evaluation grid"):
        emotion.tilt_table(pd.DataFrame(rows), 0.35)
