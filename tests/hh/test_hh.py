"""HH-Alignment: dialogue parsing, z-scores and the pessimistic aggregates (hand-computed), the Ray2333
reward-model adapter on a tiny local GPT-2 classifier, win rates and worst cases, nested data scales,
the paper grid's plan, and the mini stage of the session's mini run."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import planned_jobs

from workflow_scripts.core.zscores import zscore_stats
from workflow_scripts.hh.data import pairs_of
from workflow_scripts.hh.dialogue import split_dialogue
from workflow_scripts.hh.prefs import aggregate, build_pairs, cvar, scale_subset, zscores
from workflow_scripts.hh.report import run_table



# ----------------------------------------------------------------------------- what is scored is what is trained
class StubSampler:
    """Returns fixed token ids for every prompt (the issue's example: a response that runs on into a new
    human turn the model invented)."""

    def __init__(self, tokenizer, texts):
        self.rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def sample(self, prompt_ids, *, n, stop_strings=None, **kw):
        assert stop_strings == ["\n\nHuman:"]                     # generation is told to stop at a new turn
        return [self.rows[(i * n + s) % len(self.rows)] for i in range(len(prompt_ids)) for s in range(n)]


@pytest.fixture(scope="module")
def hh_tokenizer(tmp_path_factory):
    from workflow_scripts.core.tokenizer import train_bpe_tokenizer

    corpus = ["\n\nHuman: hi\n\nAssistant: Sure, here it is.\n\nHuman: thanks\n\nAssistant: you are welcome"] * 50
    return train_bpe_tokenizer(corpus, 300, tmp_path_factory.mktemp("tok"))


def test_responses_are_cut_at_a_new_human_turn_in_ids_and_text_alike(hh_tokenizer):
    from workflow_scripts.hh.completions import sample

    texts = [" Sure, here it is.\n\nHuman: thanks\n\nAssistant: you are welcome", " Sure, here it is.",
             " Fine.\n\nHum", " ok.\n\n\nHuman: x"]
    frame = sample(StubSampler(hh_tokenizer, texts), hh_tokenizer, ["\n\nHuman: hi\n\nAssistant:"] * 2, n=2,
                   temperature=1.0, top_p=1.0, max_new_tokens=64, max_prompt_tokens=32, seed=0)
    for row in frame.itertuples():     # the reward models score exactly the decoded training ids
        assert hh_tokenizer.decode(row.response_ids, skip_special_tokens=True) == row.response
        assert "\n\nHuman:" not in row.response
    assert frame["response"].tolist()[:2] == [" Sure, here it is.", " Sure, here it is."]
    assert frame["cut_at_human_turn"].tolist() == [True, False, False, True]
    assert frame["response"].iloc[2] == " Fine.\n\nHum"                # no complete marker: kept whole
    assert frame["response"].iloc[3].startswith(" ok.") and len(frame["response"].iloc[3]) <= len(" ok.\n")


# ----------------------------------------------------------------------------- the hh format
def test_prompt_is_the_dialogue_up_to_the_last_assistant_turn():
    dialogue = ("\n\nHuman: Hi.\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke."
                "\n\nAssistant: Why did the chicken cross the road?")
    prompt, response = split_dialogue(dialogue)
    assert prompt == "\n\nHuman: Hi.\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant:"
    assert response == " Why did the chicken cross the road?"
    assert prompt + response == dialogue


def test_missing_assistant_turn_names_the_row():
    frame = pd.DataFrame({"chosen": ["\n\nHuman: a\n\nAssistant: b", "\n\nHuman: only a question"],
                          "rejected": ["\n\nHuman: a\n\nAssistant: c", "\n\nHuman: only a question"]})
    with pytest.raises(ValueError, match=r"helpful-base/train row 1 \(chosen\): no assistant turn") as error:
        pairs_of(frame, "helpful-base/train")
    assert "\n" not in str(error.value).replace("\\n", "")
    with pytest.raises(ValueError, match="missing column"):
        pairs_of(frame.drop(columns=["rejected"]), "x")


def test_pairs_share_their_prompt():
    frame = pd.DataFrame({"chosen": ["\n\nHuman: q\n\nAssistant: good", "\n\nHuman: x\n\nAssistant: y"],
                          "rejected": ["\n\nHuman: q\n\nAssistant: bad", "\n\nHuman: other\n\nAssistant: z"]})
    pairs = pairs_of(frame, "t")
    assert pairs.to_dict("records") == [{"prompt": "\n\nHuman: q\n\nAssistant:", "chosen": " good", "rejected": " bad"}]


# ----------------------------------------------------------------------------- z-scores and aggregates
def test_zscores_use_the_splits_mean_and_population_std():
    frame = pd.DataFrame({"helpful": [1.0, 2.0, 3.0, 6.0], "harmless": [5.0, 5.0, 5.0, 5.0]})
    stats = zscore_stats(frame, ["helpful", "harmless"])
    assert stats["helpful"] == {"mean": 3.0, "std": math.sqrt((4 + 1 + 0 + 9) / 4)}
    z = zscores(frame, stats)
    assert z[:, 0] == pytest.approx([(v - 3.0) / math.sqrt(3.5) for v in (1, 2, 3, 6)])
    assert (z[:, 1] == 0).all()                                    # a constant objective is 0, not NaN


@pytest.mark.parametrize("q, expected", [
    (0.25, [-2.0, 0.5, 1.0]),                  # q <= 1/2: the minimum (hard-min)
    (0.5, [-2.0, 0.5, 1.0]),
    (0.75, [(0.5 * -2 + 0.25 * 1) / 0.75, 0.5, (0.5 * 1 + 0.25 * 3) / 0.75]),
    (1.0, [-0.5, 0.5, 2.0]),                   # q = 1: the mean
])
def test_cvar_of_two_objectives_by_hand(q, expected):
    z = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 1.0]])
    assert cvar(z, q) == pytest.approx(expected)


def test_cvar_equals_the_quantile_integral_for_three_objectives():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3))
    u = (np.arange(30000) + 0.5) / 30000                           # midpoint rule over the quantile function
    for q in (0.2, 1 / 3, 0.5, 0.9, 1.0):
        quantile = np.sort(z, axis=1)[:, np.minimum((u * 3).astype(int), 2)]
        brute = (quantile * (u <= q)).sum(axis=1) / (u <= q).sum()
        assert cvar(z, q) == pytest.approx(brute, abs=2e-3)


def test_mixture_and_hard_min_by_hand():
    z = np.array([[1.0, -2.0], [0.5, 0.5]])
    assert aggregate(z, "mixture", alpha0=0.25) == pytest.approx([0.25 - 1.5, 0.5])
    assert aggregate(z, "hard_min") == pytest.approx([-2.0, 0.5])
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(z, "max")


def _completions(n_prompts=6):
    rng = np.random.default_rng(3)
    rows = []
    for p in range(n_prompts):
        for s in (0, 1):
            rows.append({"prompt_idx": p, "sample": s, "subset": "helpful-base", "prompt_ids": [1, 2],
                         "response_ids": [10 + 2 * p + s], "helpful": rng.normal(), "harmless": rng.normal()})
    return pd.DataFrame(rows)


def test_pairs_carry_the_aggregated_rewards_and_scales_are_nested():
    frame = _completions(8)
    small, _ = build_pairs(frame, ["helpful", "harmless"], "hard_min", alpha0=0.5, q=0.5, scale=3, bt_scale=1.0, seed=2)
    large, summary = build_pairs(frame, ["helpful", "harmless"], "hard_min", alpha0=0.5, q=0.5, scale=6, bt_scale=1.0,
                                 seed=2)
    assert len(small) == 3 and len(large) == 6 and summary["n_pairs"] == 6
    assert list(large["prompt_idx"][:3]) == list(small["prompt_idx"])        # the smaller scale is a prefix
    z = zscores(frame, zscore_stats(frame, ["helpful", "harmless"]))
    hard_min = dict(zip(zip(frame["prompt_idx"], frame["sample"]), z.min(axis=1)))
    for row in large.itertuples():
        assert row.r1 == pytest.approx(hard_min[(row.prompt_idx, 0)]) and row.r2 == pytest.approx(hard_min[(row.prompt_idx, 1)])
    assert list(scale_subset(np.arange(10), 4, 1)) == list(scale_subset(np.arange(10), 7, 1)[:4])
    with pytest.raises(ValueError, match="exceeds"):
        scale_subset(np.arange(3), 5, 0)


# ----------------------------------------------------------------------------- win rate and worst case
def test_win_rate_against_sft_and_worst_case_over_alpha():
    alphas = [0.0, 0.5, 1.0]
    rows = []
    # SFT: z = (0, 0) on both prompts; the policy: prompt 0 (1, -1), prompt 1 (0, 0) -> a tie
    for variant, values in (("sft", [(0, 0), (0, 0)]), ("dpo", [(1, -1), (0, 0)])):
        for p, (h, harm) in enumerate(values):
            rows.append({"split": "test", "policy": "mini", "aggregation": "" if variant == "sft" else "mixture",
                         "scale": "" if variant == "sft" else "all", "variant": variant,
                         "radius": "0", "hp": "sft" if variant == "sft" else "beta0.1", "seed": 0,
                         "prompt_idx": p, "z_helpful": float(h), "z_harmless": float(harm)})
    runs = run_table(pd.DataFrame(rows), alphas, alpha0=0.5).set_index("variant")
    dpo = runs.loc["dpo"]
    assert dpo["z_helpful"] == 0.5 and dpo["z_harmless"] == -0.5
    assert [dpo[f"r_{a:g}"] for a in alphas] == [-0.5, 0.0, 0.5]
    assert dpo["worst_alpha"] == -0.5 and dpo["mean_alpha"] == 0.0
    # alpha 0: prompt 0 loses (-1 < 0), prompt 1 ties -> 0.25; alpha 0.5: 0 vs 0 ties twice -> 0.5; alpha 1: 0.75
    assert dpo["win_rate_alpha0"] == 0.5 and dpo["win_rate_worst"] == 0.25
    assert runs.loc["sft", "win_rate_worst"] == 0.5                        # against itself: all ties


# ----------------------------------------------------------------------------- the Ray2333 adapter
@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from workflow_scripts.core.tokenizer import train_bpe_tokenizer

    root = tmp_path_factory.mktemp("rm")
    texts = ["\n\nHuman: how do I bake bread?\n\nAssistant: Sure, first mix flour and water.",
             "\n\nHuman: hurt someone\n\nAssistant: I'm sorry, I can't help with that."] * 20
    tok = train_bpe_tokenizer(texts, 300, root / "model")
    model = GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tok), n_layer=1, n_embd=16, n_head=2,
                                                     n_positions=128, num_labels=1, pad_token_id=tok.pad_token_id))
    model.save_pretrained(root / "model")
    return root / "model"


def test_reward_is_logits0_of_the_model_card_call(tiny_classifier):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from workflow_scripts.hh.reward import EnsembleScorer, HHRewardScorer

    prompts = ["\n\nHuman: I just came out of jail, any suggestion?\n\nAssistant:",
               "\n\nHuman: how do I bake bread?\n\nAssistant:", "\n\nHuman: hi\n\nAssistant:"]
    responses = [" Go back to jail you scum", " Sure, first mix flour and water, then knead it for ten minutes.", " Hi!"]
    scorer = HHRewardScorer(str(tiny_classifier), name="helpful", batch_size=2)
    scores = scorer.score(prompts, responses)
    # the Ray2333 model card: tokenizer(q, a, return_tensors='pt', truncation=True), reward = logits[0]
    tok = AutoTokenizer.from_pretrained(tiny_classifier)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    with torch.no_grad():
        expected = [model(**tok(q, a, return_tensors="pt", truncation=True)).logits[0].item()
                    for q, a in zip(prompts, responses)]
    assert list(scores.columns) == ["helpful"]
    assert scores["helpful"].to_numpy() == pytest.approx(expected, abs=1e-5)   # batched with padding = one at a time
    ids = scorer.encode(prompts[:1], responses[:1])["input_ids"][0].tolist()
    assert ids == tok(prompts[0])["input_ids"] + tok(responses[0])["input_ids"]  # the text pair, no separator
    both = EnsembleScorer.load(json.dumps({"helpful": str(tiny_classifier), "harmless": str(tiny_classifier)}))
    assert list(both.score(prompts, responses).columns) == ["helpful", "harmless"]


# ----------------------------------------------------------------------------- the workflow
def test_paper_preset_plans_the_hh_grid_offline():
    counts = planned_jobs("results/paper/figures/hh_pareto.pdf")
    # 3 scales x 3 seeds x [mixture: (2 + 6 x 2) variant-radius configs + hard_min, cvar: 2 bases each]
    assert counts["hh_align"] == 3 * 3 * (14 + 2 * 2) == counts["hh_evaluate"]
    assert counts["hh_prefs"] == 3 * 3 * 3 and counts["hh_completions"] == 3 and counts["hh_sft"] == 1
    assert "hh_reward_model" not in counts                              # the public Ray2333 models are loaded


@pytest.mark.slow
def test_mini_hh_stage(mini_run):
    root = mini_run / "results/mini"
    for name in ("hh_pareto", "hh_alpha_sweep", "hh_scale"):
        for ext in ("pdf", "png"):
            assert (root / f"figures/{name}.{ext}").stat().st_size > 5000
    table = pd.read_csv(root / "tables/hh_objectives.csv", dtype={"radius": str, "scale": str})
    rows = set(zip(table["aggregation"].fillna(""), table["variant"]))
    assert {("mixture", "rebel"), ("mixture", "dpo"), ("mixture", "chi2-dpo"), ("hard_min", "dpo"),
            ("cvar", "dpo"), ("", "sft")} <= rows
    assert set(table.loc[table["variant"] != "sft", "scale"]) == {"200", "all"}
    chosen = table[table["selected"]]
    groups = set(zip(*(table.loc[table["variant"] != "sft", c].fillna("") for c in ("aggregation", "variant", "scale"))))
    # one radius chosen per (aggregation, variant, data scale), never the SFT row
    assert len(chosen) == len(groups) == 2 * (len(rows) - 1) and not chosen["variant"].eq("sft").any()
    numeric = table.select_dtypes("number").drop(columns=["validation_score"], errors="ignore")
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    assert "DPO" in (root / "tables/hh_objectives.md").read_text() and "hard-min" in (
        root / "tables/hh_objectives.md").read_text()
    # CVaR always carries its level (the mini preset's cvar_q: 0.75), in every format
    assert "CVaR₀.₇₅" in (root / "tables/hh_objectives.md").read_text()
    assert "CVaR$_{0.75}$" in (root / "tables/hh_objectives.tex").read_text()
    assert "CVaR " not in (root / "tables/hh_objectives.md").read_text()
    # what the reward models scored is what the policy trains on, in every sampled row of the run
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(root / "hh/mini/sft/model")
    trained = [pd.read_parquet(p) for p in (root / "hh/mini").glob("completions/*/*.parquet")]
    assert trained and sum(len(f) for f in trained) > 100
    for frame in trained:
        decoded = [tokenizer.decode(list(ids), skip_special_tokens=True) for ids in frame["response_ids"]]
        assert decoded == frame["response"].tolist()
    for frame in trained + [pd.read_parquet(p) for p in (root / "hh/mini/eval/completions").rglob("*.parquet")]:
        assert not frame["response"].str.contains("\n\nHuman:", regex=False).any()
    for objective in ("helpful", "harmless"):
        metrics = json.loads((root / f"hh/reward_models/{objective}/metrics.json").read_text())
        assert metrics["validation_pairwise_accuracy"] > 0.8, (objective, metrics)   # the reward models learned
    # The two objectives genuinely disagree (workflow_scripts/hh/corpus.py): on the held-out harmless-base pairs
    # (a risky request, refused vs complied with) the harmless model prefers the refusal and the helpful
    # model the compliance. (The sign of their correlation on the tiny SFT policy's samples is not a property
    # of the design: it follows whatever mix of responses that policy happens to produce.)
    from workflow_scripts.hh.reward import HHRewardScorer

    pairs = pd.read_parquet(root / "hh/data/preferences/harmless-base/validation.parquet")
    margins = {}
    for objective in ("helpful", "harmless"):
        scorer = HHRewardScorer.load(str(root / f"hh/reward_models/{objective}/model"), name=objective)
        chosen, rejected = (scorer.score(list(pairs["prompt"]), list(pairs[c]))[objective] for c in ("chosen", "rejected"))
        margins[objective] = (chosen - rejected).to_numpy()
    assert (margins["harmless"] > 0).mean() > 0.8 and (margins["helpful"] < 0).mean() > 0.5, margins


def test_evaluation_prompts_keep_each_subsets_share():
    from workflow_scripts.hh.evaluate import stratified_subset

    prompts = pd.DataFrame({"prompt_idx": range(300), "subset": ["helpful-base"] * 200 + ["harmless-base"] * 100,
                            "prompt": [f"p{i}" for i in range(300)]})
    assert prompts.head(30)["subset"].eq("helpful-base").all()               # what head(n) did: one subset only
    for n in (30, 31, 7):
        subset = stratified_subset(prompts, n)
        counts = subset["subset"].value_counts()
        assert len(subset) == n and subset["prompt_idx"].is_unique and subset["prompt_idx"].is_monotonic_increasing
        assert abs(counts.get("helpful-base", 0) - 2 * n / 3) < 1 and abs(counts.get("harmless-base", 0) - n / 3) < 1
    assert stratified_subset(prompts, 30).equals(stratified_subset(prompts, 30))      # the same for every policy
    assert len(stratified_subset(prompts, 0)) == 300 and len(stratified_subset(prompts, 999)) == 300


def test_hh_tokenizers_carry_the_format_their_policy_trains_on(tmp_path):
    """lm-eval and any chat tool format conversations with the tokenizer's template: for HH policies it is
    HH's raw dialogue, exactly the prompt format of the training data (hh.dialogue.split_dialogue)."""
    from workflow_scripts.core.tokenizer import prepare_tokenizer

    (tmp_path / "data").mkdir()
    pd.DataFrame({"text": ["\n\nHuman: hi\n\nAssistant: hello there"] * 40}).to_json(
        tmp_path / "data/train.jsonl", orient="records", lines=True)
    tok = prepare_tokenizer("train-bpe", tmp_path / "tok", data_dir=tmp_path / "data", vocab_size=300,
                            chat_template="hh")
    dialogue = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and then?\n\nAssistant: more"
    prompt, response = split_dialogue(dialogue)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "and then?"}]
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert reloaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == prompt
    assert response == " more"


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    from workflow_scripts.hh.report import pareto_front

    points = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.2], [0.5, 0.4], [1.0, -1.0]])
    front = pareto_front(points)
    assert front.tolist() == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(200, 2))
    front = pareto_front(cloud)
    for p in cloud:        # every point is dominated by (or is) a point of the front
        assert any((f >= p).all() for f in front)
    assert (np.diff(front[:, 0]) >= 0).all() and (np.diff(front[:, 1]) <= 0).all()
