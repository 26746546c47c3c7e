"""The Snakemake workflow as a whole: paper-preset planning, lint, config errors, and the alignment
entry point's CLI on the session's mini run (online regime on 2 processes, determinism)."""
import json
import re

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, align_cli, planned_jobs, snakemake

VARIANTS = ["rebel", "w-rebel", "kl-rebel", "chi2-rebel", "dpo", "wdpo", "kl-dpo", "chi2-dpo"]


# ----------------------------------------------------------------------------- planning and lint
def test_paper_preset_plans_the_whole_grid_offline():
    counts = planned_jobs("all", "--directory", str(REPO))
    # paper: 3 seeds x [REBEL family (1 + 3 robust x 3 radii) x 3 etas + DPO family (1 + 3 x 3) x 1 beta]
    assert counts["emotion_align"] == 3 * (10 * 3 + 10 * 1)
    # every policy on validation and test (one job each), the SFT baseline per seed too
    assert counts["emotion_evaluate"] == 120 and counts["emotion_evaluate_sft"] == 3
    assert counts["emotion_pairs"] == 3                       # one set of pairs per training seed (per_seed)
    assert counts["emotion_sft"] == 1 and counts["emotion_reward_model"] == 1


def test_lint_is_clean():
    result = snakemake("--lint", "--configfile", "presets/mini.yaml")
    out = result.stdout + result.stderr
    assert "Lints for" not in out, out[-4000:]
    assert result.returncode == 0, out[-3000:]


# The Snakemake CLI end to end for a few (tests/core/test_reliability.py checks many more in-process).
@pytest.mark.parametrize("override, key", [
    ({"variants": ["ppo"]}, "variants[0]"),
    ({"emotion": {"align": {"anchor": "iterate"}}}, "emotion.align.anchor"),
    ({"emotion": {"dataset": "./no/such/dir"}}, "emotion.dataset"),
    ({"preset": "$(touch pwned)"}, "preset"),
])
def test_config_errors_fail_at_load_with_one_line(tmp_path, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = snakemake("-n", "all", "--cores", "1", "--configfile", "presets/mini.yaml", str(bad))
    assert result.returncode != 0
    lines = [l for l in result.stderr.splitlines() if l.startswith("Config error:")]
    assert len(lines) == 1 and f"'{key}" in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Job stats" not in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not list(REPO.glob("pwned*")) and not list(tmp_path.glob("pwned*"))


# ----------------------------------------------------------------------------- the alignment CLI on the mini run
@pytest.mark.slow
def test_online_regime_two_processes_iterate_anchor(mini_run, tmp_path):
    """REBEL's own loop: fresh pairs from pi_t each iteration, anchored at pi_t, on 2 processes."""
    metrics = align_cli(mini_run, tmp_path / "online", "--variant", "chi2-rebel", "--radius", "0.5", "--seed", "3",
                     "--regime", "online", "--anchor", "iterate", "--iterations", "3", "--updates-per-iteration", "2",
                     nproc=2)
    assert metrics["regime"] == "online" and metrics["iterations"] == 3 and metrics["steps"] == 6
    history = pd.read_csv(tmp_path / "online/history.csv")
    assert len(history) == 6 and history["mean_reward"].notna().all()
    assert history["logratio_ref_absmax"].iloc[0] == 0.0          # the frozen reference on 2 processes
    info = json.loads((tmp_path / "online/run_info.json").read_text())
    assert info["world_size"] == 2


@pytest.mark.slow
def test_same_seed_twice_gives_identical_metrics(mini_run, tmp_path):
    args = ("--variant", "w-rebel", "--radius", "1", "--seed", "5", "--iterations", "4")
    first = align_cli(mini_run, tmp_path / "a", *args)
    second = align_cli(mini_run, tmp_path / "b", *args)
    assert first == second
    assert (tmp_path / "a/history.csv").read_text() == (tmp_path / "b/history.csv").read_text()


def test_conda_env_mirrors_pyproject_pins():
    import tomllib

    pins = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    env = yaml.safe_load((REPO / "rules/envs/train.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == pins


@pytest.mark.slow
def test_one_tensorboard_logdir_shows_every_training_run_of_the_preset(mini_run):
    results = mini_run / "results/mini"
    trained = [p.parent for p in results.rglob("history.csv")] + [p.parent for p in results.rglob("metrics.json")
                                                                  if (p.parent / "run_info.json").exists()]
    missing = sorted(str(d.relative_to(results)) for d in set(trained) if not list((d / "tensorboard").glob("events.*")))
    assert trained and not missing, missing


@pytest.mark.slow
def test_a_changed_config_section_reruns_the_jobs_it_feeds(mini_copy):
    """Flags built from a job's input paths are params Snakemake deems derived and leaves out of its change
    check; ``settings_of`` restores it: a new alignment learning rate (or evaluation prompt count) reruns
    exactly the jobs it feeds, not silently reusing results of the old config."""
    from workflow_helpers import snakemake_in

    same = snakemake_in(mini_copy, "-n", "all", "--quiet", "rules")
    assert "Nothing to be done" in same.stdout + same.stderr, (same.stdout + same.stderr)[-2000:]
    for change, rule in (("emotion={align: {lr: 2.0e-3}}", "emotion_align"),
                         ("emotion={evaluate: {n_prompts: 128}}", "emotion_evaluate"),
                         ("hh={evaluate: {max_new_tokens: 24}}", "hh_evaluate")):
        plan = snakemake_in(mini_copy, "-n", "all", "--quiet", "rules", "--config", change)
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout + plan.stderr, re.M))
        assert rule in counts, (change, counts)


def test_every_params_function_that_reads_input_has_its_settings_twin(repo):
    """Snakemake leaves a params function that reads ``input`` out of its change check, so each one needs
    ``settings=settings_of(<the same function>)`` in its rule (lm_eval_select_hh lacked it: a new hh.evaluate.alphas
    did not rerun the selection). Read from the rule files: every ``name=X.method,`` param whose method takes
    ``input``."""
    import inspect

    from workflow_scripts.armorm.workflow import ArmoRMRules
    from workflow_scripts.emotion.workflow import EmotionRules
    from workflow_scripts.hh.workflow import HHRules
    from workflow_scripts.lm_eval.workflow import LMEvalRules
    from workflow_scripts.radius_coverage.workflow import RadiusCoverageRules

    helpers = {"A": ArmoRMRules, "E": EmotionRules, "H": HHRules, "L": LMEvalRules, "RC": RadiusCoverageRules}
    checked, missing = 0, []
    for path in sorted((repo / "rules").glob("*.smk")):
        for block in re.split(r"^(?=(?:use )?rule )", path.read_text(), flags=re.M):
            name = block.split(":", 1)[0].strip()
            for param, owner, method in re.findall(r"^\s+(\w+)=(\w+)\.(\w+),\s*$", block, re.M):
                function = getattr(helpers.get(owner), method, None)
                if param == "settings" or function is None or "input" not in inspect.signature(function).parameters:
                    continue
                checked += 1
                if f"settings=settings_of({owner}.{method})" not in block:
                    missing.append(f"{path.name}: {name} ({param}={owner}.{method})")
    assert checked >= 10, checked                         # the pattern still finds the rules' params functions
    assert not missing, missing


def test_job_paths_are_derived_from_one_path():
    """W.train_outputs / align_outputs / eval_outputs, W.log and W.benchmark give the paths the rules used to spell
    out by hand (here literally, for the mini preset), wildcards kept in single braces."""
    from snakemake.io import is_flagged

    from workflow_scripts.core.workflow import Workflow

    w = Workflow({"preset": "mini"})
    run = "{variant}/{radius}/{hp}/{seed}"
    assert w.RUN == run
    assert w.log("hh/{pair}/align", run) == "logs/mini/hh/{pair}/align/{variant}/{radius}/{hp}/{seed}.log"
    assert w.benchmark("emotion/sft") == "benchmarks/mini/emotion/sft.tsv"

    trained = w.train_outputs("hh/{policy}/sft")
    assert trained == {"model": "results/mini/hh/{policy}/sft/model", "metrics": "results/mini/hh/{policy}/sft/metrics.json",
                       "run_info": "results/mini/hh/{policy}/sft/run_info.json"}
    aligned = w.align_outputs("armorm/align/{pair}@online")
    base = "results/mini/armorm/align/{pair}@online/{variant}/{radius}/{hp}/{seed}"
    assert aligned == {"policy": f"{base}/policy", "metrics": f"{base}/metrics.json",
                       "history": f"{base}/history.csv", "run_info": f"{base}/run_info.json"}
    # the model and the policy are directories (Snakemake creates and removes them whole)
    assert is_flagged(trained["model"], "directory") and is_flagged(aligned["policy"], "directory")
    assert not any(is_flagged(aligned[k], "directory") for k in ("metrics", "history", "run_info"))

    assert w.eval_outputs("emotion/eval", "sft/{seed}") == {
        "validation": "results/mini/emotion/eval/validation/sft/{seed}.csv",
        "test": "results/mini/emotion/eval/test/sft/{seed}.csv",
        "completions": "results/mini/emotion/eval/completions/sft/{seed}.parquet"}
    assert list(w.eval_outputs("hh/{policy}/eval", "{aggregation}/{scale}", run)) == ["validation", "test", "completions"]
