"""The ArmoRM multi-objective stage: z-score mixing and pairing, the reward-model output adapter, the
stand-in, shard resumption of completions, config checks, and the mini stage end to end."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_helpers import REPO, planned_jobs, snakemake

from workflow_scripts.core.config import ConfigError, validate_config
from workflow_scripts.armorm.prefs import build_pairs, extreme_pairs, mixed_zscores, zscore
from workflow_scripts.core.zscores import zscore_stats
from workflow_scripts.core.grid import format_pair, training_pairs
from workflow_scripts.armorm.model import (OBJECTIVES, SCORE_COLUMNS, ArmoRMGatingRewardModel, ArmoRMOutput,
                                            ArmoRMScorer, load_reward_model, reward_columns)

VARIANTS = ["rebel", "w-rebel", "kl-rebel", "chi2-rebel", "dpo", "wdpo", "kl-dpo", "chi2-dpo"]
PAIR = "ultrafeedback-truthfulness+helpsteer-complexity"
AXES = ["helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence", "ultrafeedback-honesty", "ArmoRM"]


# ----------------------------------------------------------------------------- z-scores, mixing, pairing
def test_zscore_is_standardised_and_constant_columns_are_zero():
    z = zscore([1.0, 2.0, 3.0], 2.0, np.std([1.0, 2.0, 3.0]))
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    assert zscore([4.0, 4.0, 4.0], 4.0, 0.0).tolist() == [0.0, 0.0, 0.0]
    stats = zscore_stats(pd.DataFrame({"a": [5.0, 5.0], "b": [0.0, 2.0]}), ["a", "b"])
    assert stats == {"a": {"mean": 5.0, "std": 0.0}, "b": {"mean": 1.0, "std": 1.0}}


def test_mixed_zscores_weight_each_standardised_objective():
    scores = pd.DataFrame({"a": [0.0, 10.0, 20.0, 30.0], "b": [1.0, 1.0, 3.0, 3.0]})
    za = (scores["a"] - 15.0) / np.std(scores["a"])
    zb = np.array([-1.0, -1.0, 1.0, 1.0])
    assert mixed_zscores(scores, ["a", "b"], [0.3, 0.7]) == pytest.approx(0.3 * za + 0.7 * zb)
    # scale invariance: multiplying an objective by 1000 changes nothing
    scaled = scores.assign(a=scores["a"] * 1000 + 7)
    assert mixed_zscores(scaled, ["a", "b"], [0.5, 0.5]) == pytest.approx(mixed_zscores(scores, ["a", "b"], [0.5, 0.5]))


def test_extreme_pairs_argmax_argmin_with_ties():
    picks = extreme_pairs(
        prompt_idx=[0, 0, 0, 1, 1, 2, 2, 2, 3],
        sample=[0, 1, 2, 0, 1, 0, 1, 2, 0],
        score=[0.5, 0.9, 0.1,   # prompt 0: chosen 1, rejected 2
               0.3, 0.3,        # prompt 1: all tie -> dropped
               0.7, 0.7, 0.2,   # prompt 2: tie at the max -> the first sample (0)
               1.0])            # prompt 3: a single completion -> dropped
    assert picks["prompt_idx"].tolist() == [0, 2]
    assert picks["chosen_sample"].tolist() == [1, 0]
    assert picks["rejected_sample"].tolist() == [2, 2]
    assert (picks["chosen_score"] > picks["rejected_score"]).all()
    # tie at the min: the first sample is rejected; sample order, not row order, decides
    picks = extreme_pairs([5, 5, 5], [2, 0, 1], [0.0, 0.0, 1.0])
    assert picks[["chosen_sample", "rejected_sample"]].values.tolist() == [[1, 0]]


def _completions_and_scores(a, b):
    n = len(a)
    completions = pd.DataFrame({"prompt_idx": np.repeat(np.arange(n // 2), 2), "sample": np.tile([0, 1], n // 2),
                                "prompt_ids": [[1, 2]] * n, "response_ids": [[10 + i] for i in range(n)]})
    scores = completions[["prompt_idx", "sample"]].assign(a=a, b=b)
    return completions, scores


def test_build_pairs_schema_for_the_alignment_entry_point():
    completions, scores = _completions_and_scores(a=[0.0, 1.0, 5.0, 2.0, 3.0, 3.0], b=[2.0, 0.0, 1.0, 1.0, 4.0, 4.0])
    pairs, summary = build_pairs(completions, scores, ["a", "b"], [0.5, 0.5])
    from workflow_scripts.core.pairs import PAIR_COLUMNS

    assert set(PAIR_COLUMNS) <= set(pairs.columns)
    assert summary["n_pairs"] == 2 and summary["n_dropped_ties"] == 1       # prompt 2 ties on both objectives
    assert (pairs["label"] == 1).all() and (pairs["r1"] > pairs["r2"]).all()
    # prompt 0: z_a(1) > z_a(0) but z_b(0) > z_b(1); mixed decides
    za, zb = zscore(scores["a"], **zscore_stats(scores, ["a"])["a"]), zscore(scores["b"], **zscore_stats(scores, ["b"])["b"])
    mixed = 0.5 * za + 0.5 * zb
    chosen0 = int(np.argmax(mixed[:2]))
    row = pairs[pairs["prompt_idx"] == 0].iloc[0]
    assert list(row["y1_ids"]) == [10 + chosen0] and list(row["y2_ids"]) == [11 - chosen0]
    assert row["r1"] == pytest.approx(mixed[chosen0]) and row["r2"] == pytest.approx(mixed[1 - chosen0])


def test_build_pairs_constant_objective_and_all_ties():
    completions, scores = _completions_and_scores(a=[3.0] * 4, b=[1.0, 2.0, 5.0, 4.0])
    pairs, summary = build_pairs(completions, scores, ["a", "b"], [0.5, 0.5])    # a constant: b alone decides
    assert pairs["chosen_sample"].tolist() == [1, 0] and np.isfinite(pairs[["r1", "r2"]].values).all()
    assert summary["zscore_stats"]["a"]["std"] == 0.0
    completions, scores = _completions_and_scores(a=[3.0] * 4, b=[1.0] * 4)
    with pytest.raises(ValueError, match="no preference pairs"):
        build_pairs(completions, scores, ["a", "b"], [0.5, 0.5])


# ----------------------------------------------------------------------------- the reward-model adapter
def test_reward_columns_names_the_armorm_output():
    rewards = torch.arange(3 * 19, dtype=torch.bfloat16).reshape(3, 19)
    cols = reward_columns(SimpleNamespace(rewards=rewards, score=torch.tensor([[0.5], [1.5], [2.5]])))
    assert list(cols) == list(SCORE_COLUMNS) and len(cols) == 20
    assert cols["helpsteer-helpfulness"].tolist() == [0.0, 19.0, 38.0]
    assert cols["code-readability"].tolist() == [18.0, 37.0, 56.0]
    assert cols["ArmoRM"].tolist() == [0.5, 1.5, 2.5]
    with pytest.raises(ValueError, match="expected \\(batch, 19\\)"):
        reward_columns(SimpleNamespace(rewards=torch.zeros(3, 18), score=torch.zeros(3)))
    with pytest.raises(ValueError, match="lacks"):
        reward_columns(SimpleNamespace(logits=torch.zeros(3, 1)))
    with pytest.raises(ValueError, match="'score' has shape"):
        reward_columns(SimpleNamespace(rewards=torch.zeros(3, 19), score=torch.zeros(2)))


@pytest.fixture(scope="module")
def chat_tokenizer():
    from workflow_scripts.armorm.prompts import generate_prompts
    from workflow_scripts.armorm.policy import train_chat_tokenizer

    return train_chat_tokenizer(generate_prompts(40, 0), 400)


class FakeArmoRM(torch.nn.Module):
    """Returns the ArmoRM output structure: head j = mean token id + j, score = token count."""

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.float()
        mean = (input_ids.float() * mask).sum(1) / mask.sum(1)
        return ArmoRMOutput(rewards=mean[:, None] + torch.arange(19.0)[None], score=mask.sum(1))


def test_scorer_batches_by_length_and_keeps_input_order(chat_tokenizer):
    prompts = ["Write a poem.", "Explain the water cycle to a child, please, in detail.", "Hi", "Give tips."]
    responses = ["Sure.", "x", "A much longer answer with many more words in it than the others.", ""]
    frames = [ArmoRMScorer(FakeArmoRM(), chat_tokenizer, batch_size=b).score(prompts, responses) for b in (1, 3)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    scorer = ArmoRMScorer(FakeArmoRM(), chat_tokenizer)
    lengths = [len(scorer.encode(p, r)) for p, r in zip(prompts, responses)]
    assert frames[0]["ArmoRM"].tolist() == lengths
    first = scorer.encode(prompts[0], responses[0])
    assert frames[0].loc[0, "helpsteer-correctness"] == pytest.approx(np.mean(first) + 1, rel=1e-6)


def test_standin_reloads_without_remote_code_and_is_deterministic(chat_tokenizer, tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from workflow_scripts.armorm.standin import build_standin

    model = build_standin(chat_tokenizer, {"hidden_size": 16, "intermediate_size": 32}, seed=3)
    again = build_standin(chat_tokenizer, {"hidden_size": 16, "intermediate_size": 32}, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.save_pretrained(tmp_path / "rm")
    chat_tokenizer.save_pretrained(tmp_path / "rm")

    def no_auto(*args, **kwargs):
        raise AssertionError("the stand-in must not load through Auto* / remote code")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", no_auto)
    loaded, tokenizer = load_reward_model(str(tmp_path / "rm"), allowlist=[], dtype="fp32")
    assert isinstance(loaded, ArmoRMGatingRewardModel)
    scores = ArmoRMScorer(loaded, tokenizer, batch_size=2).score(["Write a poem.", "Hi"], ["Sure, here it is.", "Hello"])
    reference = ArmoRMScorer(model.eval(), chat_tokenizer, batch_size=1).score(["Write a poem.", "Hi"],
                                                                                ["Sure, here it is.", "Hello"])
    pd.testing.assert_frame_equal(scores, reference, atol=1e-5, rtol=1e-5)
    assert scores[list(OBJECTIVES)].std().gt(0).all()        # the heads differ between completions


def test_trust_remote_code_only_for_allowlisted_ids(monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    calls = []

    class Dummy(torch.nn.Module):
        pass

    def fake_model(source, **kwargs):
        calls.append((source, kwargs["trust_remote_code"]))
        return Dummy()

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", fake_model)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda source, **kw: None)
    allow = ["RLHFlow/ArmoRM-Llama3-8B-v0.1"]
    load_reward_model("RLHFlow/ArmoRM-Llama3-8B-v0.1", allowlist=allow, dtype="fp32")
    load_reward_model("someone/Other-RM", allowlist=allow, dtype="fp32")
    assert calls == [("RLHFlow/ArmoRM-Llama3-8B-v0.1", True), ("someone/Other-RM", False)]


# ----------------------------------------------------------------------------- shard resumption
@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory, chat_tokenizer):
    from workflow_scripts.armorm.prompts import generate_prompts
    from workflow_scripts.armorm.policy import build_llama_policy

    root = tmp_path_factory.mktemp("policy")
    spec = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 2, "max_position_embeddings": 128}
    build_llama_policy(spec, chat_tokenizer).save_pretrained(root / "policy")
    chat_tokenizer.save_pretrained(root / "policy")
    prompts = generate_prompts(10, 1)
    pd.DataFrame({"prompt_idx": np.arange(10), "prompt": prompts}).to_parquet(root / "prompts.parquet")
    return root


def _completions(tiny_policy, out, *extra):
    from workflow_scripts.armorm.completions import main

    main(["--prompts", str(tiny_policy / "prompts.parquet"), "--policy", str(tiny_policy / "policy"), "--out", str(out),
          "--per-prompt", "2", "--max-new-tokens", "6", "--max-prompt-tokens", "32",
          "--batch-size", "2", "--shard-size", "3", "--seed", "4", *extra])


def test_completions_resume_after_a_kill_without_duplicates_or_losses(tiny_policy, tmp_path):
    from workflow_scripts.core.shards import STOPPED_EXIT, shard_dir

    out = tmp_path / "resumed/train.parquet"
    with pytest.raises(SystemExit) as stopped:
        _completions(tiny_policy, out, "--stop-after-shards", "1")        # "killed" after one shard
    assert stopped.value.code == STOPPED_EXIT
    shards = shard_dir(out)
    assert sorted(p.name for p in shards.glob("shard-*.parquet")) == ["shard-00000.parquet"] and not out.exists()
    first_shard = pd.read_parquet(shards / "shard-00000.parquet")
    (shards / ".shard-00001.parquet.half.tmp").write_text("half-written by the killed run")

    _completions(tiny_policy, out)
    resumed = pd.read_parquet(out)
    assert not shards.exists()                                            # merged and cleaned up
    assert len(resumed) == 20 and not resumed.duplicated(["prompt_idx", "sample"]).any()
    assert sorted(set(resumed["prompt_idx"])) == list(range(10))
    pd.testing.assert_frame_equal(resumed.head(len(first_shard)), first_shard)   # the first shard was kept

    _completions(tiny_policy, tmp_path / "straight/train.parquet")
    straight = pd.read_parquet(tmp_path / "straight/train.parquet")
    pd.testing.assert_frame_equal(resumed, straight)                      # same rows as a run never stopped


def test_shards_from_other_settings_are_discarded(tiny_policy, tmp_path):
    from workflow_scripts.core.shards import shard_dir

    out = tmp_path / "train.parquet"
    with pytest.raises(SystemExit):
        _completions(tiny_policy, out, "--stop-after-shards", "2")
    _completions(tiny_policy, out, "--temperature", "0.3")                # settings changed: start over
    changed = pd.read_parquet(out)
    _completions(tiny_policy, tmp_path / "fresh.parquet", "--temperature", "0.3")
    pd.testing.assert_frame_equal(changed, pd.read_parquet(tmp_path / "fresh.parquet"))
    assert not shard_dir(out).exists()


# ----------------------------------------------------------------------------- config
def _merged_config(*overrides):
    def merge(base, extra):
        for k, v in extra.items():
            base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return base

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for o in (yaml.safe_load((REPO / "presets/mini.yaml").read_text()), *overrides):
        config = merge(config, o)
    return config


def test_pair_names_are_canonical_and_path_safe():
    assert format_pair(["ultrafeedback-truthfulness", "helpsteer-complexity"]) == PAIR
    assert format_pair(["a", "b"], [0.3, 0.7]) == "a+b_w0.3-0.7"
    assert format_pair(["a", "b"], [0.3, 0.7], "short") == "short"
    pairs = training_pairs(yaml.safe_load((REPO / "config.yaml").read_text())["armorm"])
    assert [p["name"] for p in pairs] == [PAIR, "ultrafeedback-helpfulness+helpsteer-coherence",
                                          "helpsteer-correctness+helpsteer-helpfulness"]
    validate_config(_merged_config())


@pytest.mark.parametrize("pairs, key", [
    ([{"objectives": ["helpsteer-coherence", "helpsteer-coherence"]}], "armorm.training_pairs[0].objectives"),
    ([{"objectives": ["helpsteer-coherence", "helpsteer-typo"]}], "armorm.training_pairs[0].objectives[1]"),
    ([{"objectives": ["ArmoRM", "helpsteer-coherence"], "weights": [0.6, 0.6]}], "armorm.training_pairs[0].weights"),
    ([{"objectives": ["ArmoRM", "helpsteer-coherence"]}, {"objectives": ["ArmoRM", "helpsteer-coherence"]}],
     "armorm.training_pairs[1]"),
])
def test_bad_training_pairs_fail_with_one_line(pairs, key):
    with pytest.raises(ConfigError) as error:
        validate_config(_merged_config({"armorm": {"training_pairs": pairs}}))
    message = str(error.value)
    assert "\n" not in message and f"'{key}" in message, message


def test_same_objective_twice_stops_snakemake_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"armorm": {"training_pairs": [{"objectives": ["ArmoRM", "ArmoRM"]}]}}))
    result = snakemake("-n", "all", "--cores", "1", "--configfile", "presets/mini.yaml", str(bad))
    lines = [l for l in result.stderr.splitlines() if l.startswith("Config error:")]
    assert result.returncode != 0 and len(lines) == 1, result.stderr[-2000:]
    assert "'armorm.training_pairs[0].objectives'" in lines[0] and "Traceback" not in result.stderr


def test_paper_preset_plans_the_armorm_grid_offline():
    counts = planned_jobs("results/paper/figures/armorm_spider.pdf")
    # 3 pairs x (2 non-robust + 6 robust x 2 radii) x 3 seeds, each evaluated on validation and test (one job)
    assert counts["armorm_align"] == 126 and counts["armorm_evaluate"] == 126
    assert counts["armorm_evaluate_base"] == 3 and "armorm_align_online" not in counts   # paper: offline only
    # completions / scores per training seed (per_seed), preference pairs per training pair and seed
    assert counts["armorm_completions"] == 3 and counts["armorm_scores"] == 3 and counts["armorm_prefs"] == 9
    assert "armorm_reward_model" not in counts                       # the real ArmoRM is loaded, not built
    assert not any(rule.startswith("emotion") for rule in counts)


# ----------------------------------------------------------------------------- the mini stage end to end
TARGETS = ["results/mini/figures/armorm_spider.pdf", "results/mini/figures/armorm_alpha_sweep.pdf",
           "results/mini/tables/armorm_objectives.csv"]


@pytest.fixture(scope="module")
def armorm_run(mini_run):
    """The mini ArmoRM stage (1 seed, 1 training pair, 8 variants, one radius each), built end to end
    by the session's mini run of `all` (conftest.py), which includes it: one run serves every module."""
    for target in TARGETS:
        assert (mini_run / target).exists(), f"the mini run of `all` did not build {target}"
    return SimpleNamespace(dir=mini_run)


def test_mini_spider_target_builds_only_the_armorm_stage(tmp_path):
    counts = planned_jobs(TARGETS[0], workdir=tmp_path)
    assert counts["armorm_align"] == 8 and counts["armorm_evaluate"] == 8 and counts["armorm_evaluate_base"] == 1
    assert counts["armorm_align_online"] == 2 and counts["armorm_evaluate_online"] == 2
    assert counts["armorm_reward_model"] == 1
    assert not any(rule.startswith(("emotion", "radius")) for rule in counts), counts


@pytest.mark.slow
def test_mini_table_has_every_variant_and_objective(armorm_run):
    table = pd.read_csv(armorm_run.dir / "results/mini/tables/armorm_objectives.csv", dtype={"radius": str})
    # both regimes are configured in the mini preset: the online runner's rows follow the offline ones
    assert table["pair"].unique().tolist() == [PAIR, PAIR + "@online"]
    offline = table[table["pair"] == PAIR]
    assert offline["variant"].tolist() == ["sft"] + VARIANTS                # one radius each, SFT first
    assert offline.loc[offline.variant == "sft", "radius"].item() == "0"
    assert offline["selected"].tolist() == [False] + [True] * len(VARIANTS)  # a single choice per variant
    online = table[table["pair"] == PAIR + "@online"]
    assert online["variant"].tolist() == ["sft", "rebel", "kl-dpo"]          # armorm.online.variants
    assert (table["n_seeds"] == 1).all()
    numeric = table.select_dtypes("number")
    assert numeric.notna().all().all() and np.isfinite(numeric.to_numpy(dtype=float)).all()
    for axis in AXES + ["trained_mix", "worst_unseen"]:
        assert f"{axis}_mean" in table and (table[f"{axis}_std"] == 0).all()
    # every axis is unseen for this pair: the worst case is the minimum over all of them
    assert table["worst_unseen_mean"].to_numpy() == pytest.approx(table[[f"{a}_mean" for a in AXES]].min(axis=1))
    md = (armorm_run.dir / "results/mini/tables/armorm_objectives.md").read_text()
    assert "χ²-REBEL" in md and "Worst unseen" in md and "(online)" in md
    assert (armorm_run.dir / "results/mini/tables/armorm_objectives.tex").stat().st_size > 500


@pytest.mark.slow
def test_mini_figures_and_intermediate_outputs(armorm_run):
    root = armorm_run.dir / "results/mini"
    for name in ("armorm_spider", "armorm_alpha_sweep", "armorm_training"):
        for ext in ("pdf", "png"):
            assert (root / f"figures/{name}.{ext}").stat().st_size > 5000
    prompts = {split: pd.read_parquet(root / f"armorm/prompts/{split}.parquet") for split in ("train", "validation", "test")}
    assert [len(prompts[s]) for s in ("train", "validation", "test")] == [36, 12, 12]     # 48 = 36 + 12 held out
    assert not set(prompts["validation"]["prompt"]) & set(prompts["train"]["prompt"])
    scores = pd.read_parquet(root / "armorm/scores/0/train.parquet")
    assert list(scores.columns) == ["prompt_idx", "sample", *SCORE_COLUMNS] and len(scores) == 72
    pairs = pd.read_parquet(root / f"armorm/prefs/{PAIR}/0/train.parquet")
    assert (pairs["label"] == 1).all() and (pairs["r1"] > pairs["r2"]).all()
    metrics = json.loads((root / f"armorm/align/{PAIR}/kl-dpo/0.5/beta0.1/0/metrics.json").read_text())
    assert metrics["regime"] == "offline" and metrics["anchor"] == "reference" and metrics["variant"] == "kl-dpo"
    info = json.loads((root / f"armorm/align/{PAIR}/w-rebel/1/eta1/0/run_info.json").read_text())
    assert info["zero_stage"] == 2 and info["args"]["pairs"].endswith(f"prefs/{PAIR}/0/train.parquet")
    assert info["args"]["wasserstein_form"] == "pointwise"            # where the ArmoRM radii come from
    # the online runner: iterations sample from pi_t and are scored by the ArmoRM stand-in (a Scorer)
    metrics = json.loads((root / f"armorm/align/{PAIR}@online/rebel/0/eta1/0/metrics.json").read_text())
    assert metrics["regime"] == "online" and metrics["anchor"] == "iterate" and metrics["iterations"] == 2
    history = pd.read_csv(root / f"armorm/align/{PAIR}@online/rebel/0/eta1/0/history.csv")
    assert history["mean_reward"].notna().all() and history["logratio_ref_absmax"].iloc[0] == 0.0
    assert history.groupby("iteration")["mean_reward"].nunique().eq(1).all()   # one fresh batch per iteration
    assert history["mean_reward"].nunique() == 2                                # ... and a new one each time
    info = json.loads((root / f"armorm/align/{PAIR}@online/rebel/0/eta1/0/run_info.json").read_text())
    assert info["args"]["scorer"] == "workflow_scripts.armorm.model:ArmoRMScorer"
    assert info["args"]["objectives"] == PAIR.split("+") and info["args"]["alpha0"] == 0.1
    for split, n in (("validation", 12), ("test", 12)):
        evaluation = pd.read_csv(root / f"armorm/eval/{split}/{PAIR}/dpo/0/beta0.1/0.csv")
        assert evaluation["objective"].tolist() == list(SCORE_COLUMNS) and (evaluation["n"] == 2 * n).all()
        assert (evaluation["split"] == split).all()
