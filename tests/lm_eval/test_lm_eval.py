"""The leaderboard stage: the normalisation by hand, the selection (validation only, the reports' choice),
the job plan of the paper preset, and the stage end to end on the mini policies (harness files vs table)."""
from __future__ import annotations

import glob
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from workflow_helpers import snakemake, snakemake_in  # noqa: E402
from workflow_scripts.lm_eval.normalize import (  # noqa: E402
    BBH_CHOICES,
    MUSR_CHOICES,
    leaderboard_scores,
    normalize_within_range,
    task_scores,
)
from workflow_scripts.lm_eval.run import selected_policy  # noqa: E402


# ----------------------------------------------------------------------------- normalisation by hand
def leaderboard_results(**overrides) -> dict:
    """lm-eval results of a run: every BBH / MuSR subtask at chance, then the given values."""
    res = {f"leaderboard_bbh_{t}": {"acc_norm,none": 1 / k, "acc_norm_stderr,none": 0.01} for t, k in BBH_CHOICES.items()}
    res |= {f"leaderboard_musr_{t}": {"acc_norm,none": 1 / k} for t, k in MUSR_CHOICES.items()}
    res |= {"leaderboard_ifeval": {"inst_level_strict_acc,none": 0.6, "prompt_level_strict_acc,none": 0.5,
                                   "inst_level_strict_acc_stderr,none": "N/A"},
            "leaderboard_math_hard": {"exact_match,none": 0.12},
            "leaderboard_gpqa": {"acc_norm,none": 0.30},
            "leaderboard_mmlu_pro": {"acc,none": 0.28}}
    for key, value in overrides.items():
        res[key] = {**res.get(key, {}), **value}
    return res


def test_normalisation_rule_by_hand():
    assert normalize_within_range(0.5, 4) == pytest.approx(100 / 3)          # (0.5 - 0.25) / 0.75
    assert normalize_within_range(0.2, 4) == 0.0                              # below chance: clipped at 0
    assert normalize_within_range(1.0, 10) == pytest.approx(100.0)
    assert normalize_within_range(0.1, 10) == pytest.approx(0.0)


def test_each_benchmark_by_hand():
    res = leaderboard_results(leaderboard_bbh_navigate={"acc_norm,none": 0.75},               # k=2 -> 50
                              leaderboard_musr_murder_mysteries={"acc_norm,none": 0.75},      # k=2 -> 50
                              leaderboard_musr_object_placements={"acc_norm,none": 0.10},     # k=5 -> clipped 0
                              leaderboard_musr_team_allocation={"acc_norm,none": 0.5})        # k=3 -> 25
    s = leaderboard_scores(res)
    assert s["IFEval"] == pytest.approx(55.0)                     # (0.6 + 0.5) / 2 x 100, no baseline
    assert s["BBH"] == pytest.approx(50 / 24)                     # one subtask at 50, 23 at chance; unweighted mean
    assert s["MATH Lvl 5"] == pytest.approx(12.0)                 # x 100, no baseline
    assert s["GPQA"] == pytest.approx((0.30 - 0.25) / 0.75 * 100)
    assert s["MuSR"] == pytest.approx((50 + 0 + 25) / 3)
    assert s["MMLU-PRO"] == pytest.approx((0.28 - 0.1) / 0.9 * 100)
    assert s["Average"] == pytest.approx((55 + 50 / 24 + 12 + 20 / 3 + 25 + 20) / 6)
    assert s["raw/leaderboard_gpqa"] == 0.30 and s["raw/leaderboard_musr_team_allocation"] == 0.5   # raw kept


def test_a_skipped_benchmark_is_missing_not_zero():
    res = leaderboard_results()
    del res["leaderboard_gpqa"]
    s = leaderboard_scores(res)
    assert math.isnan(s["GPQA"])
    present = [s[b] for b in ("IFEval", "BBH", "MATH Lvl 5", "MuSR", "MMLU-PRO")]
    assert "Average" not in s                       # a mean over five is not the leaderboard's Average
    assert s["Average without GPQA"] == pytest.approx(sum(present) / 5)
    del res["leaderboard_ifeval"]
    assert "Average without IFEval, GPQA" in leaderboard_scores(res)


def test_other_tasks_keep_their_metrics_raw():
    scores = task_scores({"t": {"alias": "t", "sample_len": 5, "acc,none": 0.4, "acc_stderr,none": 0.1,
                                "exact_match,strip": 0.2}})
    assert scores == {"t/acc": 0.4, "t/exact_match[strip]": 0.2}


# ----------------------------------------------------------------------------- which policy a job opens
def test_the_job_opens_the_selected_candidate(tmp_path):
    sel = tmp_path / "selected.json"
    sel.write_text(json.dumps({"selected": [
        {"pair": "a+b", "variant": "wdpo", "radius": "0.01", "hp": "beta0.1", "score": 0.3},
        {"pair": "a+b", "variant": "dpo", "radius": "0", "hp": "beta0.1", "score": 0.1}]}))
    cands = ["0.005/beta0.1=runs/0.005/p", "0.01/beta0.1=runs/0.01/p"]
    path, choice = selected_policy(str(sel), {"pair": "a+b", "variant": "wdpo"}, cands)
    assert path == "runs/0.01/p" and choice["radius"] == "0.01" and choice["validation_score"] == 0.3
    with pytest.raises(ValueError, match="not among the candidates"):
        selected_policy(str(sel), {"pair": "a+b", "variant": "wdpo"}, cands[:1])
    with pytest.raises(ValueError, match="0 selections match"):
        selected_policy(str(sel), {"pair": "c+d", "variant": "wdpo"}, cands)


# ----------------------------------------------------------------------------- the selection files
def test_the_selection_json_is_what_the_jobs_read(tmp_path):
    """core.report.selection.write_selection (each experiment's select CLI) writes the file lm_eval.run reads:
    the group keys, radius and hp as strings, the validation score as a float."""
    from workflow_scripts.core.report.selection import write_selection

    best = pd.DataFrame({"pair": ["a+b", "a+b"], "variant": ["dpo", "wdpo"], "radius": [0, "0.01"],
                         "hp": ["beta0.1", "beta0.1"], "score": [0.1, np.float32(0.25)]})
    out = tmp_path / "selected.json"
    write_selection(str(out), "armorm", ["pair", "variant"], best)
    assert json.loads(out.read_text()) == {
        "experiment": "armorm", "group": ["pair", "variant"], "split": "validation",
        "selected": [{"pair": "a+b", "variant": "dpo", "radius": "0", "hp": "beta0.1", "score": 0.1},
                     {"pair": "a+b", "variant": "wdpo", "radius": "0.01", "hp": "beta0.1", "score": 0.25}]}
    path, choice = selected_policy(str(out), {"pair": "a+b", "variant": "wdpo"},
                                   ["0/beta0.1=runs/0/p", "0.01/beta0.1=runs/0.01/p"])
    assert path == "runs/0.01/p" and choice["validation_score"] == 0.25


def test_a_selection_refuses_test_rows():
    from workflow_scripts.core.report.selection import validation_only

    rows = pd.DataFrame({"split": ["validation", "validation"], "value": [1.0, 2.0]})
    assert validation_only(rows, ["v.csv"]) is rows
    with pytest.raises(ValueError, match=r"validation results only; got split\(s\) \['test'\] in \['t.csv'\]"):
        validation_only(rows.assign(split=["validation", "test"]), ["t.csv"])


def test_the_leaderboard_stage_imports_no_experiment():
    """What lm_eval needs of an experiment travels as a file (the selection JSON) or through the rule helpers the
    Snakefile hands it; no module of workflow_scripts/lm_eval imports another experiment's package."""
    import ast

    from workflow_scripts.core.experiments import experiment_names

    others = {f"workflow_scripts.{name}" for name in experiment_names()} - {"workflow_scripts.lm_eval"}
    assert {"workflow_scripts.armorm", "workflow_scripts.hh"} <= others
    found = []
    for path in sorted((REPO / "workflow_scripts/lm_eval").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if any(n == o or n.startswith(o + ".") for o in others)]
    assert not found, found


# ----------------------------------------------------------------------------- the paper preset's plan
def test_paper_preset_plans_one_job_per_selected_policy_and_selection_reads_no_test_file(tmp_path):
    result = snakemake("-n", "-p", "lm_eval_leaderboard", "--directory", str(tmp_path), "--snakefile",
                       str(REPO / "Snakefile"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(lm_eval\w*|\w+_selection)\s+(\d+)$", out, re.M)}
    # ArmoRM: the first training pair x 8 variants x 3 seeds, and the base policy; HH: the mixture at the
    # largest scale x 8 variants x 3 seeds, and the SFT policy (one policy size).
    assert counts == {"lm_eval_armorm": 24, "lm_eval_armorm_base": 1, "lm_eval_hh": 24, "lm_eval_hh_sft": 1,
                      "armorm_selection": 1, "hh_selection": 1, "lm_eval_report": 1,
                      "lm_eval_leaderboard": 1}, counts
    selections = [line for line in out.splitlines() if re.search(r"workflow_scripts\.(armorm|hh)\.select ", line)]
    assert len(selections) == 2
    for line in selections:
        assert "/eval/validation/" in line and "/eval/test/" not in line and "completions/" not in line.split(
            "--training")[0], line[:300]
    runs = [line for line in out.splitlines() if "workflow_scripts.lm_eval.run" in line]
    assert len(runs) == 50
    assert all("--apply-chat-template true" in r and "--batch-size auto" in r and "--dtype bf16" in r for r in runs)
    assert all("leaderboard_gpqa" in r and "leaderboard_mmlu_pro" in r for r in runs)


def test_skipping_gated_gpqa_is_one_key(tmp_path):
    result = snakemake("-n", "-p", "lm_eval_leaderboard", "--directory", str(tmp_path), "--snakefile",
                       str(REPO / "Snakefile"), "--config", "lm_eval={skip_tasks: [leaderboard_gpqa]}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    runs = [line for line in out.splitlines() if "workflow_scripts.lm_eval.run" in line]
    assert runs and all("leaderboard_gpqa" not in r and "leaderboard_ifeval" in r for r in runs)


# ----------------------------------------------------------------------------- end to end on the mini run
def harness_results(results_json: Path) -> dict:
    """The harness's own results file, written next to ours (<model>/results_<time>.json)."""
    files = glob.glob(str(results_json.parent / "harness" / "*" / "results_*.json"))
    assert len(files) == 1, files
    return json.loads(Path(files[0]).read_text())


def results_file(lm: Path, row) -> Path:
    """The lm-eval job behind a table row (mini: one seed, 0)."""
    if row["experiment"] == "armorm":
        return lm / ("armorm/sft" if row["variant"] == "sft" else f"armorm/{row['context']}/{row['variant']}/0")
    policy, aggregation, scale = row["context"].split(" · ")
    return lm / ("hh/" + (f"{policy}/sft" if row["variant"] == "sft" else
                          f"{policy}/{aggregation}/{scale}/{row['variant']}/0"))


def check_table_against_harness(workdir: Path, tasks: dict[str, list[str]]):
    """Every cell of every (mini: one-seed) table row equals the metric in that policy's harness file."""
    lm = workdir / "results/mini/lm_eval"
    table = pd.read_csv(workdir / "results/mini/tables/lm_eval_leaderboard.csv", keep_default_na=False,
                        dtype={"radius": str, "hp": str})
    checked = 0
    for _, row in table.iterrows():
        ours = results_file(lm, row) / "results.json"
        record = json.loads(ours.read_text())
        labels, harness = record["dro_rebel"], harness_results(ours)
        assert harness["results"] == record["results"]
        assert harness["config"]["model_args"]["pretrained"] == labels["policy_path"]
        assert (labels["variant"], str(labels["radius"]), labels["hp"]) == (row["variant"], row["radius"], row["hp"])
        for task, metrics in tasks.items():
            for metric in metrics:
                name, _, filt = metric.partition(",")
                column = f"{task}/{name}" + (f"[{filt}]" if filt != "none" else "") + "_mean"
                assert row[column] == pytest.approx(harness["results"][task][metric], abs=1e-12), (labels, column)
                checked += 1
    return table, checked


@pytest.mark.slow
def test_mini_stage_table_is_the_harness_results_of_the_selected_policies(mini_run):
    demo = {"dro_rebel_demo_mc": ["acc,none", "acc_norm,none"], "dro_rebel_demo_gen": ["exact_match,strip"]}
    table, checked = check_table_against_harness(mini_run, demo)
    # ArmoRM: base + the two lm_eval.variants; HH: SFT + REBEL (the mini HH stage trains no WDPO)
    assert list(table["variant"]) == ["sft", "rebel", "wdpo", "sft", "rebel"]
    assert checked == 3 * 5
    # The policy each job evaluated is the one the experiment's own report marks as selected (on validation).
    lm = mini_run / "results/mini/lm_eval"
    armorm = pd.read_csv(mini_run / "results/mini/tables/armorm_objectives.csv", keep_default_na=False,
                         dtype={"radius": str, "hp": str})
    hh = pd.read_csv(mini_run / "results/mini/tables/hh_objectives.csv", keep_default_na=False,
                     dtype={"radius": str, "hp": str, "scale": str})
    for ours in lm.rglob("*/0/results.json"):
        labels = json.loads(ours.read_text())["dro_rebel"]
        if labels["experiment"] == "armorm":
            report = armorm[(armorm["pair"] == labels["pair"]) & (armorm["variant"] == labels["variant"])]
        else:
            report = hh[(hh["policy"] == labels["policy"]) & (hh["aggregation"] == labels["aggregation"])
                        & (hh["scale"] == labels["scale"]) & (hh["variant"] == labels["variant"])]
        chosen = report[report["selected"].astype(str) == "True"]
        assert len(chosen) == 1, (labels, report)
        assert (float(chosen["radius"].iloc[0]), chosen["hp"].iloc[0]) == (float(labels["radius"]), labels["hp"])
        assert labels["policy_path"].endswith(f"/{labels['variant']}/{labels['radius']}/{labels['hp']}/0/policy")
    # HH policies are evaluated in the format they were trained on: their tokenizer's chat template is HH's
    # raw dialogue (core.tokenizer.CHAT_TEMPLATES["hh"]), so the harness's contexts are "\n\nHuman: ..." turns
    hh_results = [r for r in lm.rglob("results.json") if json.loads(r.read_text())["dro_rebel"]["experiment"] == "hh"]
    assert hh_results
    for ours in hh_results:
        assert json.loads(ours.read_text())["dro_rebel"]["chat_template"] is True
        sample = json.loads(next(ours.parent.rglob("samples_dro_rebel_demo_gen_*.jsonl")).read_text().splitlines()[0])
        context = sample["arguments"]["gen_args_0"]["arg_0"]
        assert context.startswith("\n\nHuman:") and context.endswith("\n\nAssistant:"), context
    # The selections' scores are the reports' validation criteria: the HH one recomputed from the per-run
    # validation CSVs (means), the report's from the per-prompt samples; ArmoRM's from the same CSVs.
    for experiment, table, keys in (("armorm", armorm, ["pair", "variant"]),
                                    ("hh", hh, ["policy", "aggregation", "scale", "variant"])):
        selected = json.loads((lm / experiment / "selected.json").read_text())["selected"]
        assert selected
        for entry in selected:
            row = table[(table[keys + ["radius", "hp"]].astype(str) == pd.Series(
                {k: str(entry[k]) for k in keys + ["radius", "hp"]})).all(axis=1)]
            if row.empty:   # radius spellings: the table's CSV may write 1.0 where paths say 1
                row = table[(table[keys + ["hp"]].astype(str) == pd.Series({k: str(entry[k]) for k in keys + ["hp"]})
                             ).all(axis=1) & (table["radius"].astype(float) == float(entry["radius"]))]
            assert len(row) == 1, entry
            assert str(row["selected"].iloc[0]) == "True" and row["validation_score"].iloc[0] == pytest.approx(entry["score"],
                                                                                                       rel=1e-9)
    for f in ("lm_eval_vs_sft.pdf", "lm_eval_vs_sft.png"):
        assert (mini_run / "results/mini/figures" / f).stat().st_size > 5000


MC_YAML = """task: local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    train: {d}/mc_train.jsonl
    test: {d}/mc_test.jsonl
training_split: train
test_split: test
fewshot_split: train
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
GEN_YAML = """task: local_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {d}/gen_test.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}} ="
doc_to_target: "{{{{answer}}}}"
num_fewshot: 0
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: 4
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.mark.slow
def test_a_task_the_user_writes_runs_through_the_same_stage(mini_copy, tmp_path):
    """A local task YAML + data written here, through `include_path`: only the lm-eval jobs rerun."""
    tasks = tmp_path / "tasks"
    (tasks / "data").mkdir(parents=True)
    mc = [{"question": f"{a} + {b} is", "choices": [str(a + b), str(a + b + 1), str(a * b + 3)], "label": 0}
          for a, b in [(1, 2), (2, 2), (3, 1), (4, 4)]]
    (tasks / "data/mc_train.jsonl").write_text(json.dumps(mc[0]) + "\n")
    (tasks / "data/mc_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc[1:]))
    (tasks / "data/gen_test.jsonl").write_text("".join(json.dumps({"question": f"{a}+{a}", "answer": str(2 * a)}) + "\n"
                                                      for a in range(3)))
    (tasks / "local_mc.yaml").write_text(MC_YAML.format(d=tasks / "data"))
    (tasks / "local_gen.yaml").write_text(GEN_YAML.format(d=tasks / "data"))
    target = "results/mini/tables/lm_eval_leaderboard.csv"
    result = snakemake_in(mini_copy, target, "--cores", "2", "--config",
                          f"lm_eval={{demo_task: false, include_path: {tasks}, tasks: [local_mc, local_gen], "
                          "variants: [rebel, wdpo], experiments: [armorm]}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    ran = {m.group(1) for m in re.finditer(r"^rule (\w+):", out, re.M)}
    assert ran <= {"lm_eval_armorm", "lm_eval_armorm_base", "lm_eval_report", "armorm_selection"}, ran
    table, checked = check_table_against_harness(mini_copy, {"local_mc": ["acc,none"],
                                                             "local_gen": ["exact_match,none"]})
    assert list(table["variant"]) == ["sft", "rebel", "wdpo"] and checked == 2 * 3
    for _, row in table.iterrows():
        harness_dir = results_file(mini_copy / "results/mini/lm_eval", row) / "harness"
        samples = glob.glob(str(harness_dir / "*" / "samples_local_mc_*.jsonl"))
        assert len(samples) == 1 and len(Path(samples[0]).read_text().splitlines()) == 3   # samples logged
