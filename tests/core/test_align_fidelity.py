"""The alignment entry point's invariants, checked on tiny models with real DeepSpeed engines (CPU, gloo).

- The robust weights / Wasserstein normaliser cover the whole global batch: 1 process with gradient
  accumulation 4 and 2 processes with accumulation 2 train exactly like 1 process holding the whole
  batch (every variant; parameters and logged objective).
- One precision: the reference log-probs come from the policy's own forward, so the log-ratio of the
  untrained policy to its reference is exactly 0 at step 0 (fp32 and bf16 autocast), every variant.
- REBEL's iteration structure (online regime, iterate anchor): the anchor of iteration t+1 is the policy
  after iteration t, samples are fresh each iteration, the first minibatch's loss is (r1 - r2)^2 and
  the iteration's regression loss decreases over its passes.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import tiny_models
from workflow_scripts.core.train.schedule import check_iteration_structure

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ["rebel", "w-rebel", "kl-rebel", "chi2-rebel", "dpo", "wdpo", "kl-dpo", "chi2-dpo"]
#: name -> (processes, micro batch, precision); the global batch is 16 pairs.
CONFIGS = {"whole": (1, 16, "fp32"), "accum4": (1, 4, "fp32"), "bf16": (1, 4, "bf16"), "world2": (2, 4, "fp32")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_models.build(tmp_path_factory.mktemp("tiny"))


def _driver(tiny, out, nproc, configs):
    spec = [f"{name}:{CONFIGS[name][1]}:{CONFIGS[name][2]}" for name in configs]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(REPO / "tests/align_driver.py"), "--inputs", str(tiny["policy"].parent), "--out", str(out),
           "--config", *spec]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-5000:]


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    _driver(tiny, out, 1, ["whole", "accum4", "bf16"])
    _driver(tiny, out, 2, ["world2"])
    return {name: {v: torch.load(out / name / f"{v}.pt", weights_only=False) for v in VARIANTS} for name in CONFIGS}


@pytest.fixture(scope="module")
def initial(tiny):
    from transformers import AutoModelForCausalLM

    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(tiny["policy"]).state_dict().items()}


def _distance(a: dict, b: dict) -> float:
    """L2 distance between two parameter sets (all tensors as one vector)."""
    return sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in b) ** 0.5


@pytest.mark.parametrize("split", ["accum4", "world2"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_any_split_of_the_global_batch_trains_alike(runs, initial, variant, split):
    ref, got = runs["whole"][variant], runs[split][variant]
    assert (ref["world"], ref["grad_accum"]) == (1, 1)
    assert (got["world"], got["grad_accum"]) == {"accum4": (1, 4), "world2": (2, 2)}[split]
    update = _distance(ref["params"], initial)
    assert update > 1e-3, "the policy did not move"
    # relative to the training update: the old per-micro-step weights were measured 65% away. What remains
    # is rounding (other micro-batch widths), which Adam's normalisation amplifies on near-zero gradients
    # (measured 2e-5 to 5e-5 of the update).
    assert _distance(got["params"], ref["params"]) / update < 1e-3
    # The logged statistics describe the whole global batch: at step 0 (same parameters) they agree to
    # rounding; later steps start from parameters that differ by rounding, which the KL weights amplify by 1/tau.
    for column in ("objective", "mean_loss", "ess_fraction", "max_weight", "penalty"):
        if column in ref["history"]:
            assert got["history"][column][0] == pytest.approx(ref["history"][column][0], rel=1e-6, abs=1e-8), column
            assert got["history"][column] == pytest.approx(ref["history"][column], rel=1e-4, abs=1e-7), column


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_log_ratio_is_exactly_zero_at_step_0(runs, variant, config):
    history = runs[config][variant]["history"]
    assert history["logratio_ref_absmax"][0] == 0.0
    assert history["logratio_ref_mean"][0] == 0.0
    assert history["logratio_ref_absmax"][-1] > 0.0          # ... and the policy then moves away


def test_a_reference_in_other_numerics_would_not_be_zero(tiny):
    """What the step-0 test guards against: fp32 reference log-probs of a bf16-autocast policy are off."""
    from transformers import AutoModelForCausalLM

    from workflow_scripts.core.logprobs import build_pair_batch, forward_logprob

    pairs = pd.read_parquet(tiny["pairs"]).head(8)
    model = AutoModelForCausalLM.from_pretrained(tiny["policy"]).eval()
    batch = build_pair_batch(list(pairs["prompt_ids"]), list(pairs["y1_ids"]), 0, 24)
    with torch.no_grad():
        fp32, _ = forward_logprob(model, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16, _ = forward_logprob(model, batch)
    assert (fp32 - bf16).abs().max() > 1e-4


# ----------------------------------------------------------------------------- REBEL's iteration structure
def _online_aligner(tiny, out):
    """chi2-REBEL online, iterate anchor: 2 iterations of 16 prompts, 3 passes of 2 minibatches each.

    eta 10 and lr 1e-4 because the tiny random reward model's gaps are ~0.03: one Adam step moves the
    log-ratios by more than that, so with eta 1 every step overshoots the regression target."""
    from workflow_scripts.core.train.align import Aligner, parse_args

    return Aligner(parse_args([
        "--pairs", str(tiny["pairs"]), "--policy", str(tiny["policy"]), "--reward-model", str(tiny["reward_model"]),
        "--scorer", "workflow_scripts.emotion.reward:EmotionScorer",
        "--out", str(out), "--variant", "chi2-rebel", "--radius", "0.5", "--eta", "10", "--seed", "0",
        "--regime", "online", "--anchor", "iterate", "--iterations", "2", "--iteration-batch", "16",
        "--global-batch", "8", "--micro-batch", "4", "--updates-per-iteration", "3", "--lr", "1e-4",
        "--warmup-ratio", "0", "--max-length", "24", "--max-new-tokens", "8", "--bt-scale", "10"]))


def test_online_iterate_anchor_follows_the_policy(tiny, tmp_path):
    from workflow_scripts.core.models import load_causal_lm

    aligner = _online_aligner(tiny, tmp_path / "online")
    aligner.engine.module.train()
    rows = {0: aligner.run_iteration(0)}
    first = aligner.last_iteration
    after_0 = copy.deepcopy(aligner.engine.module.state_dict())
    rows[1] = aligner.run_iteration(1)
    second = aligner.last_iteration

    # the anchor of iteration 1 is the policy after iteration 0, computed by the same forward
    snapshot = load_causal_lm(str(tiny["policy"]))
    snapshot.load_state_dict(after_0)
    expected = aligner.logprob_table(snapshot, second["pairs"], aligner.plan.first_pass_micro_batches(1, 0))
    assert torch.equal(expected.float(), second["anchor"])
    assert not torch.equal(second["anchor"], second["reference"])        # it is not the reference
    # fresh samples each iteration
    assert first["pairs"].first != second["pairs"].first
    # two iterations x 3 passes x 2 minibatches
    assert [(r["iteration"], r["update"], r["minibatch"]) for r in rows[0] + rows[1]] == \
        [(t, u, j) for t in (0, 1) for u in range(3) for j in range(2)]
    assert rows[0][0]["logratio_ref_absmax"] == 0.0                       # the frozen reference = pi_0
    for t in (0, 1):
        start = rows[t][0]
        # at the first minibatch the policy equals its anchor: REBEL's loss is (r1 - r2)^2 exactly
        assert start["mean_loss"] == pytest.approx(start["reward_gap_sq"], rel=1e-6)
        by_pass = pd.DataFrame(rows[t]).groupby("update")["mean_loss"].mean()
        assert by_pass.iloc[-1] < by_pass.iloc[0]                         # the regression is being solved


def test_an_iterate_anchor_that_cannot_move_is_rejected():
    with pytest.raises(ValueError, match="one optimizer step per iteration"):
        check_iteration_structure("iterate", 32, 32, 1)
    check_iteration_structure("iterate", 32, 32, 2)
    check_iteration_structure("iterate", 64, 32, 1)
    check_iteration_structure("reference", 32, 32, 1)
    with pytest.raises(ValueError, match="multiple of the global batch"):
        check_iteration_structure("reference", 48, 32, 1)


# ----------------------------------------------------------------------------- online regime, 1 vs 2 processes
def _online_cli(tiny, out, nproc, variant):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "workflow_scripts.core.train.align", "--pairs", str(tiny["pairs"]), "--policy", str(tiny["policy"]),
           "--reward-model", str(tiny["reward_model"]), "--scorer", "workflow_scripts.emotion.reward:EmotionScorer",
           "--out", str(out), "--variant", variant, "--radius", "0", "--beta", "0.1", "--eta", "10", "--seed", "4",
           "--regime", "online", "--anchor", "reference", "--iterations", "3", "--iteration-batch", "16",
           "--global-batch", "8", "--micro-batch", "4", "--lr", "1e-3", "--warmup-ratio", "0", "--max-length", "24",
           "--max-new-tokens", "8", "--bt-scale", "30"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-4000:]
    from safetensors.torch import load_file

    return pd.read_csv(out / "history.csv"), load_file(out / "policy" / "model.safetensors")


def test_online_dpo_is_the_same_run_on_one_or_two_processes(tiny, tmp_path):
    """Samples AND Bradley-Terry labels are seeded by position in the iteration's batch: DPO, whose update
    depends on which completion won, ends with the same parameters on 1 and on 2 processes (labels drawn per
    rank, as before, changed them)."""
    one, params_one = _online_cli(tiny, tmp_path / "w1", 1, "dpo")
    two, params_two = _online_cli(tiny, tmp_path / "w2", 2, "dpo")
    assert one["mean_reward"].tolist() == pytest.approx(two["mean_reward"].tolist(), abs=1e-6)   # same samples
    assert one["objective"].tolist() == pytest.approx(two["objective"].tolist(), abs=1e-5)       # same labels
    for name, value in params_one.items():
        assert torch.allclose(value, params_two[name], atol=1e-5), name


# ----------------------------------------------------------------------------- preference metrics, TensorBoard
def test_preference_metrics_by_hand():
    from workflow_scripts.core.train.align import preference_metrics

    ratio = torch.tensor([[0.5, -0.5], [0.2, 0.4], [-1.0, 1.0]], dtype=torch.float64)
    winner = torch.tensor([0, 0, 1])
    m = preference_metrics(ratio, winner)
    # chosen 0.5, 0.2, 1.0; rejected -0.5, 0.4, -1.0; margins 1.0, -0.2, 2.0
    assert m["chosen_logratio"] == pytest.approx(1.7 / 3) and m["rejected_logratio"] == pytest.approx(-1.1 / 3)
    assert m["margin"] == pytest.approx(2.8 / 3) and m["preference_accuracy"] == pytest.approx(2 / 3)


def test_an_alignment_job_writes_its_scalars_for_tensorboard(tiny, tmp_path):
    """history.csv and the TensorBoard event files carry the same points, the TRL-style metrics among them;
    at step 0 (policy = reference) every log-ratio is 0, so the margin is 0 and no pair is ranked right."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "dpo"
    cmd = [sys.executable, "-m", "workflow_scripts.core.train.align", "--pairs", str(tiny["pairs"]), "--policy",
           str(tiny["policy"]), "--out", str(out), "--variant", "kl-dpo", "--radius", "0.5", "--beta", "0.1",
           "--seed", "0", "--iterations", "3", "--global-batch", "16", "--micro-batch", "8", "--lr", "1e-3",
           "--max-length", "24"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    history = pd.read_csv(out / "history.csv")
    assert history.loc[0, "margin"] == 0.0 and history.loc[0, "preference_accuracy"] == 0.0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for metric in ("objective", "margin", "preference_accuracy", "chosen_logratio", "ess_fraction"):
        points = events.Scalars(f"align/{metric}")
        assert [p.step for p in points] == history["step"].tolist()
        assert [p.value for p in points] == pytest.approx(history[metric].tolist(), rel=1e-6, abs=1e-7)
