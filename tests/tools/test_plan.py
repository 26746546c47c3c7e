"""The grid planner (workflow_scripts/tools/plan): DAG reading, shapes, throughput table, memory, scheduling,
and its calibration on one mini run's benchmark files predicting a second, larger mini run.

No workflow runs here: the two mini runs' ``benchmarks/`` trees are fixtures (tests/tools/data/, how they
were made: tests/tools/data/README.md), so the prediction-vs-measurement check is deterministic."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from workflow_scripts.core.experiments import experiment_modules
from workflow_scripts.tools.plan import calibrate as cal
from workflow_scripts.tools.plan import memory, report, schedule, work
from workflow_scripts.tools.plan.cli import main, plan
from workflow_scripts.tools.plan.dag import JobSpec, plan_jobs
from workflow_scripts.tools.plan.inputs import Context, SamplingInputs, evaluation
from workflow_scripts.tools.plan.shapes import KNOWN, shape_of
from workflow_scripts.tools.plan.throughput import DEFAULT_TABLE, Throughput

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
MINI = DATA / "mini.yaml"             # presets/mini.yaml as both runs used it
HELDOUT = DATA / "heldout.yaml"       # the second run's overrides: 2 seeds, 768 emotion pairs, 2 ArmoRM pairs

#: Per-rule bound of the calibrated prediction, and the bound on the total.
RULE_BOUND, TOTAL_BOUND = 0.35, 0.20


@pytest.fixture(scope="module")
def paper():
    return plan([], ["all"], gpu="h100", gpus_available=64)


# ---------------------------------------------------------------------------------------------- the DAG
def test_paper_plan_has_every_job_of_the_grid_and_costs_every_gpu_rule(paper):
    counts = {}
    for e in paper.estimates:
        counts[e.rule] = counts.get(e.rule, 0) + 1
    # docs/configuration.md's counts of `snakemake -n all` on the paper preset
    assert (counts["emotion_align"], counts["armorm_align"], counts["hh_align"]) == (120, 126, 162)
    assert (counts["emotion_evaluate"], counts["armorm_evaluate"], counts["hh_evaluate"]) == (120, 126, 162)
    for e in paper.estimates:
        assert e.on_gpu == (e.devices > 0)
        if e.on_gpu:
            assert e.device_hours > 0, e.job.label
            assert e.work.tokens > 0 or e.rule == "gpu_canary", e.job.label     # the canary: start-up only
    rows = {r["rule"]: r for r in paper.rows}
    assert rows["emotion_align"]["devices_per_job"] == "2" and rows["armorm_align"]["devices_per_job"] == "4"
    # the profile's config (launch.canary) puts the canary in the cluster's DAG, on the alignment jobs' GPUs
    assert rows["gpu_canary"]["jobs"] == 1 and rows["gpu_canary"]["devices_per_job"] == "2"
    assert rows["total"]["device_hours"] == pytest.approx(sum(e.device_hours for e in paper.estimates))
    assert 0 < paper.critical_path_seconds() <= paper.wall_seconds()
    text = paper.markdown()
    assert "GPU-h by stage:" in text and "generation" in text and "training" in text


def test_planning_imports_no_torch_and_leaves_no_trace(tmp_path):
    code = (f"import sys; from workflow_scripts.tools.plan.cli import plan; plan([{str(MINI)!r}], gpu='h100'); "
            "print(sorted(m for m in ('torch', 'transformers', 'deepspeed') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert not list(tmp_path.iterdir()), "planning wrote into the directory it was called from"


def test_plan_target_is_one_job_and_not_part_of_all():
    _, jobs = plan_jobs([MINI], ["results/mini/plan.md"])
    assert [j.rule for j in jobs] == ["plan"]
    _, jobs = plan_jobs([MINI], ["all"])
    assert "plan" not in {j.rule for j in jobs}


def test_local_cpu_mode_counts_processes():
    result = plan([MINI], ["emotion"], gpu="cpu", gpus_available=2)
    devices = {e.job.wildcards.get("variant"): e.devices for e in result.estimates if e.rule == "emotion_align"}
    assert devices["chi2-rebel"] == 2 and devices["rebel"] == 1    # launch.align_two_process_variants


def test_alignment_work_follows_the_trainer():
    """Mini emotion alignment, by hand: 512 pairs, iteration batch 32, 2 epochs -> 32 iterations, 1024 trained
    pairs of 2 sequences of min(40, 4 + 0.6 x 24) tokens; reference log-probs once per pair; a statistics pass
    only for the non-separable sets when a rank has several micro-batches (global 32 / micro 16 / ranks)."""
    result = plan([MINI], ["emotion"], gpu="cpu", gpus_available=2)
    work = {(e.job.wildcards["variant"], e.job.wildcards["radius"]): e.work for e in result.estimates
            if e.rule == "emotion_align"}
    seq = 2 * min(40, 4 + 0.6 * 24)

    def tokens(w, phase):
        return sum(p.tokens for p in w.phases if p.phase == phase)

    rebel = work[("rebel", "0")]
    assert tokens(rebel, "train_step") == pytest.approx(1024 * seq)
    assert tokens(rebel, "forward") == pytest.approx(512 * seq)                      # reference only
    assert tokens(work[("kl-rebel", "1")], "forward") == pytest.approx((1024 + 512) * seq)    # + statistics pass
    assert tokens(work[("chi2-rebel", "1")], "forward") == pytest.approx(512 * seq)  # 2 ranks: 1 micro-batch each
    assert tokens(work[("w-rebel", "1")], "forward") == pytest.approx((3 * 1024 + 512) * seq)  # sqrt_mean: + input grad
    assert {p.family for p in work[("wdpo", "1")].phases if p.phase == "train_step"} == {"wasserstein"}


# ---------------------------------------------------------------------------------------------- families
def test_every_experiment_rule_with_model_work_has_its_family(paper):
    """The experiments' plan modules give each of their GPU rules a family; everything else is start-up only."""
    expected = {"sft": ["emotion_sft", "hh_sft"], "reward": ["emotion_reward_model", "hh_reward_model"],
                "generate": ["emotion_pairs", "armorm_completions", "armorm_scores", "hh_completions"],
                "align": ["emotion_align", "emotion_align_online", "armorm_align", "armorm_align_online", "hh_align"],
                "evaluate": ["emotion_evaluate", "emotion_evaluate_sft", "emotion_evaluate_online", "armorm_evaluate",
                             "armorm_evaluate_base", "armorm_evaluate_online", "hh_evaluate", "hh_evaluate_sft"],
                "lm_eval": ["lm_eval_armorm", "lm_eval_armorm_base", "lm_eval_hh", "lm_eval_hh_sft"],
                "simulation": ["radius_coverage_simulate"]}
    assert {rule: family for rule, (family, _) in work.rules().items()} == \
        {rule: family for family, rules in expected.items() for rule in rules}
    assert work.family_of("emotion_data") == "cpu"
    assert all(e.family != "cpu" for e in paper.estimates if e.on_gpu and e.rule != "gpu_canary")  # start-up only


def test_a_new_experiment_needs_only_its_plan_module(monkeypatch):
    """An experiment the planner has never seen: its plan module maps a rule to a family and says what the
    family needs; the job is priced with no change to workflow_scripts/tools (tokens by hand)."""
    gpt2 = KNOWN["gpt2"]
    toy = type("module", (), {"RULES": {"toy_evaluate": ("evaluate", lambda ctx, job: SamplingInputs(
        gpt2, (gpt2, gpt2), 10, 20, 8, 0.5, 4, per_prompt=2))}})
    monkeypatch.setattr(work, "experiment_modules", lambda kind: {**experiment_modules(kind), "toy": toy})
    work.rules.cache_clear()
    try:
        job = JobSpec(0, "toy_evaluate", {}, 1, "b.tsv")
        w = work.work_of(Context({}, {}), job)
        assert work.family_of("toy_evaluate") == "evaluate" and work.family_of("emotion_pairs") == "generate"
    finally:
        work.rules.cache_clear()
    tokens = {}
    for p in w.phases:
        tokens[p.phase] = tokens.get(p.phase, 0) + p.tokens
    assert tokens == {"prefill": 10 * 20, "generation": 10 * 8, "scoring": 2 * 10 * (20 + 0.5 * 8)}
    assert w.memory.models == (gpt2, gpt2, gpt2) and w.memory.length == 28 and w.memory.batch == 4


def test_an_unknown_family_is_named_with_its_experiment(monkeypatch):
    toy = type("module", (), {"RULES": {"toy_x": ("distill", None)}})
    monkeypatch.setattr(work, "experiment_modules", lambda kind: {"toy": toy})
    work.rules.cache_clear()
    try:
        with pytest.raises(ValueError, match="toy/plan.py: rule toy_x has an unknown family 'distill'"):
            work.family_of("toy_x")
    finally:
        work.rules.cache_clear()


@pytest.mark.parametrize("cap, prompts", [(None, 3 + 10), (5, 3 + 5), (2, 2 + 2)])
def test_evaluation_samples_validation_and_test_prompts(cap, prompts):
    from workflow_scripts.tools.plan.sizes import Splits

    split = Splits(train=100, validation=3, test=10, prompt_tokens=7, text_tokens=9, response_fraction=0.25)
    section = {"n_prompts": cap, "samples_per_prompt": 4, "max_new_tokens": 16}
    x = evaluation(section, split, KNOWN["gpt2"], (), 7, 32)
    assert (x.sequences, x.per_prompt, x.new_tokens, x.batch) == (4 * prompts, 4, 16, 32)
    assert x.scored_tokens == 7 + 0.25 * 16 and x.length == 7 + 16


# ---------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name, published", [
    ("gpt2", 124.44e6), ("gpt2-large", 774.03e6), ("meta-llama/Llama-3.2-1B-Instruct", 1.2358e9),
    ("RLHFlow/ArmoRM-Llama3-8B-v0.1", 8.0315e9), ("Qwen/Qwen2.5-1.5B-Instruct", 1.5437e9),
])
def test_known_shapes_match_published_parameter_counts(name, published):
    assert KNOWN[name].params == pytest.approx(published, rel=0.005)


def test_config_built_models_count_what_transformers_builds():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    gpt2 = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 96}
    llama = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 2, "max_position_embeddings": 256, "tie_word_embeddings": True}
    built = GPT2LMHeadModel(GPT2Config(vocab_size=512, **gpt2))
    assert shape_of(gpt2, 512).params == sum(p.numel() for p in built.parameters())
    built = LlamaForCausalLM(LlamaConfig(vocab_size=512, **llama))
    assert shape_of(llama, 512).params == sum(p.numel() for p in built.parameters())


def test_unknown_hub_model_is_one_line_error():
    with pytest.raises(ValueError, match="unknown model 'org/mystery'.*shapes.py"):
        shape_of("org/mystery")


# ---------------------------------------------------------------------------------------------- throughput
def test_table_is_versioned_and_its_estimates_are_the_flops_model():
    table = Throughput.load()
    assert isinstance(table.version, int)
    listed = {k: e for k, e in table.entries.items() if e["source"] == "estimate"}
    expected = {(e["gpu"], e["model"], e["phase"], e["family"]): e for e in table.estimate_entries()}
    measured = {k for k, e in table.entries.items() if e["source"] == "measured"}
    assert set(listed) == set(expected) - measured, "run: python -m workflow_scripts.tools.plan --write-throughput"
    for key, e in listed.items():
        assert e["tokens_per_s"] == pytest.approx(expected[key]["tokens_per_s"], rel=1e-3), key
    for key in measured:
        assert {"where", "when"} <= set(table.entries[key]), f"measured entry {key} must say where and when"
    assert "No entry is measured yet" in DEFAULT_TABLE.read_text() or measured


def test_wasserstein_steps_cost_more_and_generation_is_not_flops_bound():
    table = Throughput.load()
    llama = KNOWN["meta-llama/Llama-3.2-1B-Instruct"]
    base = table.rate(llama, "train_step", "h100").tokens_per_s
    assert table.rate(llama, "train_step", "h100", "wasserstein").tokens_per_s == pytest.approx(base / 2.2, rel=1e-3)
    decode = table.rate(llama, "generation", "h100", "hf", batch=32).tokens_per_s
    assert decode < table.rate(llama, "prefill", "h100").tokens_per_s / 10
    assert table.rate(llama, "generation", "h100", "hf", batch=64).tokens_per_s == pytest.approx(2 * decode, rel=1e-3)


@pytest.mark.parametrize("argv, message", [
    (["--gpu", "tpu9"], "unknown GPU type 'tpu9': choose one of h200, h100, a100, cpu"),
    (["--calibrate", "/nonexistent/run"], "no benchmarks/ directory under /nonexistent/run"),
    (["--configfile", "missing.yaml"], "config file missing.yaml not found"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert message in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------- memory
def test_memory_flags_the_wasserstein_llama_jobs_with_the_knob_that_fixes_them(paper):
    # The paper preset turns gradient checkpointing on for ArmoRM alignment: every job fits.
    assert all(e.fit.fits for e in paper.estimates if e.fit is not None)
    assert "Will not fit in memory" not in paper.markdown()
    # Without it, the eager-attention (Wasserstein) Llama-1B jobs are flagged, with the knob that fixes them.
    off = plan([], ["armorm"], gpu="h100", gpus_available=64,
               config={"armorm": {"align": {"gradient_checkpointing": False}}})
    bad = [e for e in off.estimates if e.fit is not None and not e.fit.fits]
    assert bad and {e.job.wildcards["variant"] for e in bad} <= {"w-rebel", "wdpo"}
    armorm = next(e for e in bad if e.rule == "armorm_align")
    assert armorm.fit.advice == "armorm.align.gradient_checkpointing: true"
    fixed = replace(armorm.work.memory, checkpointing=True)
    assert memory.check(fixed, armorm.devices, 80).fits
    assert "Will not fit in memory" in off.markdown()


def test_more_gpus_shard_the_optimizer_state():
    m = next(e for e in plan([], ["armorm"], gpu="a100").estimates if e.rule == "armorm_align").work.memory
    assert memory.train_peak(m, 8) < memory.train_peak(m, 4) < memory.train_peak(m, 1)


# ---------------------------------------------------------------------------------------------- schedule
class _Est:
    def __init__(self, i, seconds, devices, deps=()):
        self.job = JobSpec(i, f"r{i}", {}, 1, f"b{i}.tsv", list(deps), devices)
        self.seconds, self.devices, self.on_gpu = seconds, devices, devices > 0


def test_list_scheduling_respects_dependencies_and_capacity():
    # 0 -> {1, 2, 3} -> 4; each of 1..3 takes one GPU for 10 s; 5 is an independent CPU job of 100 s.
    jobs = [_Est(0, 5, 1), _Est(1, 10, 1, [0]), _Est(2, 10, 1, [0]), _Est(3, 10, 1, [0]), _Est(4, 1, 2, [1, 2, 3]),
            _Est(5, 100, 0)]
    assert schedule.makespan(jobs, 3) == pytest.approx(100)         # the CPU job never waits for GPUs
    assert schedule.makespan(jobs[:5], 3) == pytest.approx(16)
    assert schedule.makespan(jobs[:5], 1) == pytest.approx(5 + 30 + 2)   # 4 needs 2 GPUs: runs on 1, twice as long
    assert schedule.makespan(jobs[:5], 2) == pytest.approx(5 + 20 + 1)


# ---------------------------------------------------------------------------------------------- calibration
#: Rules with fewer held-out jobs than this are below the machine's noise floor for the per-rule bound (the
#: same job, same work, varies by more than 35 % between two runs for a third of the jobs, see
#: test_the_fixture_runs_were_measured_under_comparable_load): they are checked within FEW_JOBS_FACTOR instead,
#: listed in the output, and count in the total.
MIN_JOBS, FEW_JOBS_FACTOR = 4, 3.0
#: Same-work ratio (held-out / pilot) beyond which two runs were measured under different load.
LOAD_BOUND = 0.25


@pytest.fixture(scope="module")
def heldout():
    result = plan([MINI, HELDOUT], ["all"], gpu="cpu", gpus_available=2)
    return result, cal.measured(result.estimates, DATA / "heldout")


def _same_work(pilot_dir, heldout_plan, heldout_seconds):
    """(pilot, held-out) seconds of every job both runs ran with the same modelled work (same benchmark
    path, same compute): data, tokenizers, SFT, reward models, the seed-0 ArmoRM and HH jobs, ..."""
    pilot = plan([MINI], ["all"], gpu="cpu", gpus_available=2)
    a = cal.measured(pilot.estimates, pilot_dir)
    by_path = {e.job.benchmark: (a[e.job.id], e.compute_s) for e in pilot.estimates if e.job.id in a}
    pairs = []
    for e in heldout_plan.estimates:
        if e.job.id in heldout_seconds and e.job.benchmark in by_path:
            seconds, compute = by_path[e.job.benchmark]
            if compute == pytest.approx(e.compute_s, rel=1e-9):
                pairs.append((seconds, heldout_seconds[e.job.id]))
    return pairs


def _loaded_copy(tmp_path, factor):
    """The pilot's benchmark tree with every job ``factor`` times slower: what a second job sharing the cores
    does to a run (the first pilot of this fixture, measured that way, took 1.48x as long: data/README.md)."""
    source, root = DATA / "pilot/benchmarks", tmp_path / "loaded" / "benchmarks"
    for tsv in source.rglob("*.tsv"):
        table = pd.read_csv(tsv, sep="\t")
        table["s"] = table["s"] * factor
        target = root / tsv.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(target, sep="\t", index=False)
    return root.parent


def test_the_fixture_runs_were_measured_under_comparable_load(heldout, tmp_path, capsys):
    """The fixture is an experiment only if the machine ran about as fast during both runs: the jobs of
    identical work must take about as long in total. A pilot slowed down as a shared machine slows it is
    rejected by the same check."""
    result, seconds = heldout
    lines = []
    for name, pilot in (("pilot", DATA / "pilot"), ("pilot x1.48 (as if loaded)", _loaded_copy(tmp_path, 1.48))):
        pairs = _same_work(pilot, result, seconds)
        ratio = sum(b for _, b in pairs) / sum(a for a, _ in pairs)
        noisy = sum(abs(b / a - 1) > RULE_BOUND for a, b in pairs)
        lines.append(f"{name}: {len(pairs)} same-work jobs, held-out / pilot = {ratio:.2f}; "
                     f"{noisy} of them differ by more than {RULE_BOUND:.0%} between the runs")
        if name == "pilot":
            assert len(pairs) >= 20 and abs(ratio - 1) <= LOAD_BOUND, lines[-1]
        else:
            assert abs(ratio - 1) > LOAD_BOUND, lines[-1]
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_calibrated_on_one_mini_run_predicts_a_larger_one(heldout, capsys):
    """Fixture A: a mini run (1 seed). Fixture B: mini + 2 seeds, 768 emotion pairs, 2 ArmoRM training pairs
    (243 jobs instead of 116; emotion pairs and alignment jobs 1.5x larger). Calibrated on A's benchmark
    files only, the planner predicts B's per-rule seconds."""
    result = plan([MINI, HELDOUT], ["all"], gpu="cpu", gpus_available=2, calibrate=DATA / "pilot",
                  calibrate_config=[MINI])
    _, seconds = heldout
    with_benchmark = [e for e in result.estimates if e.job.benchmark is not None]
    assert len(seconds) == len(with_benchmark), "every planned job of B has its benchmark file"
    assert {e.source for e in with_benchmark} == {"calibrated"}
    rows = report.comparison(result.estimates, seconds)
    few = [r for r in rows[:-1] if r["jobs"] < MIN_JOBS]
    with capsys.disabled():
        print("\n" + report.comparison_markdown(rows))
        print(f"per-rule bound +-{RULE_BOUND:.0%} on the {len(rows) - 1 - len(few)} rules with >= {MIN_JOBS} jobs; "
              f"{len(few)} rules of 1-{MIN_JOBS - 1} jobs (below the noise floor) within a factor {FEW_JOBS_FACTOR:g}: "
              + ", ".join(f"{r['rule']} {100 * r['error']:+.0f}%" for r in few if abs(r["error"]) > RULE_BOUND))
    few_predicted, few_measured = sum(r["predicted_s"] for r in few), sum(r["measured_s"] for r in few)
    with capsys.disabled():
        print(f"the {len(few)} few-job rules together ({sum(r['jobs'] for r in few)} jobs): "
              f"{few_predicted:.0f} s predicted, {few_measured:.0f} s measured, "
              f"{100 * (few_predicted / few_measured - 1):+.1f}%")
    total = rows[-1]
    assert abs(total["error"]) <= TOTAL_BOUND, total
    assert abs(few_predicted / few_measured - 1) <= RULE_BOUND
    off = [r for r in rows[:-1] if r["jobs"] >= MIN_JOBS and abs(r["error"]) > RULE_BOUND]
    assert not off, off
    gross = [r for r in few if not 1 / FEW_JOBS_FACTOR <= r["predicted_s"] / r["measured_s"] <= FEW_JOBS_FACTOR]
    assert not gross, gross


def test_calibration_reproduces_the_pilot_itself():
    """Fitted on a run, the planner gives back that run's own per-rule totals (the fit is unbiased per rule)."""
    result = plan([MINI], ["all"], gpu="cpu", gpus_available=2, calibrate=DATA / "pilot", calibrate_config=[MINI])
    rows = report.comparison(result.estimates, cal.measured(result.estimates, DATA / "pilot"))
    for r in rows:
        assert r["predicted_s"] == pytest.approx(r["measured_s"], rel=1e-6), r["rule"]


def test_several_pilot_runs_are_averaged_per_job(tmp_path):
    result = plan([MINI], ["radius_coverage"], gpu="cpu", gpus_available=2)
    one = cal.measured(result.estimates, DATA / "pilot")
    loaded = _loaded_copy(tmp_path, 2.0)
    other = cal.measured(result.estimates, loaded)
    both = cal.measured(result.estimates, [DATA / "pilot", loaded])
    assert both and all(other[j] == pytest.approx(2 * one[j]) for j in one)
    assert all(both[j] == pytest.approx(1.5 * one[j]) for j in both)


# ---------------------------------------------------------------------------------------------- what is computed
def test_gradient_checkpointing_is_charged_its_recompute():
    on, off = (plan([], ["armorm"], gpu="h100", gpus_available=64,
                    config={"armorm": {"align": {"gradient_checkpointing": flag}}}) for flag in (True, False))
    hours = [{r["rule"]: r for r in p.rows}["armorm_align"]["device_hours"] for p in (on, off)]
    # one extra forward (2N per token) per trained token (6N): between 1/6 and 1/3 more, by the phases' MFUs
    assert 1.1 < hours[0] / hours[1] < 1.4, hours


def test_a_reward_model_scoring_is_not_charged_an_lm_head():
    table = Throughput.load(DEFAULT_TABLE)
    armorm = KNOWN["RLHFlow/ArmoRM-Llama3-8B-v0.1"]
    ratio = table.estimate(armorm, "scoring", "h100") / table.estimate(armorm, "forward", "h100")
    head = armorm.vocab * armorm.d_model
    assert ratio == pytest.approx(armorm.compute_params / armorm.scoring_params, rel=1e-9)
    assert armorm.compute_params - armorm.scoring_params == pytest.approx(head - armorm.d_model)
    assert 1.06 < ratio < 1.10                     # the 7-9 % the old estimate over-charged


def test_lm_eval_multiple_choice_is_charged_what_the_harness_forwards(tmp_path):
    """The dry pass over the harness's requests (tools.plan.lm_eval_requests) against the harness itself: a
    tiny model under lm-eval, every token its forwards see counted (batch size 1: no padding)."""
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    import tiny_models
    from workflow_scripts.lm_eval.demo_task import main as write_demo
    from workflow_scripts.tools.plan.lm_eval_requests import leaf_tasks, request_statistics

    write_demo(["--out", str(tmp_path / "demo")])
    policy = tiny_models.build(tmp_path / "tiny")["policy"]
    tokenizer = AutoTokenizer.from_pretrained(policy)
    model = HFLM(pretrained=str(policy), batch_size=1, device="cpu")
    stats = request_statistics(leaf_tasks(["dro_rebel_demo_mc"], str(tmp_path / "demo"))["dro_rebel_demo_mc"],
                               tokenizer, max_length=model.max_length)
    seen = []
    hook = model.model.register_forward_pre_hook(lambda m, args, kw: seen.append(
        int((kw.get("input_ids") if kw.get("input_ids") is not None else args[0]).numel())), with_kwargs=True)
    try:
        with torch.no_grad():
            lm_eval.simple_evaluate(model=model, tasks=["dro_rebel_demo_mc"],
                                    task_manager=TaskManager(include_path=str(tmp_path / "demo")))
    finally:
        hook.remove()
    assert stats["requests_per_doc"] == 3
    assert sum(seen) == pytest.approx(stats["docs"] * stats["forward_tokens_per_doc"], rel=0.02)
    # what the old model charged (one context per document, cut to the model's context) is a third of it here
    assert stats["forward_tokens_per_doc"] > 2.5 * min(stats["context_tokens"], model.max_length)
