"""core.pairs.label_pairs (score -> mix -> Bradley-Terry label -> pairs) and core.completions.completion_frame,
each against a computation by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.core.completions import completion_frame
from workflow_scripts.core.pairs import PAIR_COLUMNS, label_pairs


class CountingScorer:
    """'long': the completion's length; 'vowels': its vowels; 'prompted': 1 where the prompt text is 'p1'."""

    objectives = ("long", "vowels", "prompted")

    def __init__(self):
        self.calls = []

    def score(self, prompts, completions, desc="scoring"):
        self.calls.append((list(prompts), list(completions)))
        return pd.DataFrame({"long": [float(len(c)) for c in completions],
                             "vowels": [float(sum(ch in "aeiou" for ch in c)) for c in completions],
                             "prompted": [float(p == "p1") for p in prompts]})


def decode(ids):
    return "".join("abcdefghijklmnopqrstuvwxyz"[i] for i in ids)


def test_label_pairs_mixes_two_objectives_and_draws_bradley_terry_labels():
    scorer = CountingScorer()
    prompt_ids, y1, y2 = [[1], [2], [3]], [[0, 1, 4], [3], [0, 4, 8, 14]], [[1], [0, 4], [1, 2]]
    uniforms = [0.3, 0.9, 0.5]
    pairs = label_pairs(scorer, ["p0", "p1", "p2"], prompt_ids, y1, y2, decode, objectives=("long", "vowels"),
                        alpha0=0.25, mixture="convex", bt_scale=2.0, uniforms=uniforms, score_columns=True)
    # the scorer reads the prompt texts with each side's decoded completions
    assert scorer.calls == [(["p0", "p1", "p2"], ["abe", "d", "aeio"]), (["p0", "p1", "p2"], ["b", "ae", "bc"])]
    r1 = [0.25 * 3 + 0.75 * 2, 0.25 * 1 + 0.75 * 0, 0.25 * 4 + 0.75 * 4]
    r2 = [0.25 * 1 + 0.75 * 0, 0.25 * 2 + 0.75 * 2, 0.25 * 2 + 0.75 * 0]
    p = [1 / (1 + math.exp(-2.0 * (a - b))) for a, b in zip(r1, r2)]
    assert list(pairs.columns[:6]) == list(PAIR_COLUMNS)
    assert pairs["r1"].tolist() == pytest.approx(r1) and pairs["r2"].tolist() == pytest.approx(r2)
    assert pairs["label"].tolist() == [int(u < q) for u, q in zip(uniforms, p)]
    assert pairs["prompt_ids"].tolist() == prompt_ids and pairs["y1_ids"].tolist() == y1
    # every objective of the scorer, both sides, objective-major
    assert list(pairs.columns[6:]) == [f"y{k}_{o}" for o in CountingScorer.objectives for k in (1, 2)]
    assert pairs["y1_prompted"].tolist() == [0.0, 1.0, 0.0] and pairs["y2_long"].tolist() == [1.0, 2.0, 2.0]


def test_label_pairs_draws_from_a_generator_and_names_a_missing_objective():
    scorer = CountingScorer()
    args = (["p0", "p1"], [[1], [2]], [[0], [0, 4, 8]], [[1, 2], [3]], decode)
    pairs = label_pairs(scorer, *args, objectives=("long", "vowels"), alpha0=1.0, mixture="convex", bt_scale=50.0,
                        rng=np.random.default_rng(0))
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert pairs["label"].tolist() == [0, 1]          # P(y1 > y2) = sigmoid(50 * -1) and sigmoid(50 * 2)
    with pytest.raises(ValueError, match=r"no objective \['joy'\]"):
        label_pairs(scorer, *args, objectives=("long", "joy"), alpha0=0.5, mixture="convex", bt_scale=1.0,
                    rng=np.random.default_rng(0))


def test_completion_frame_is_prompt_major_with_key_columns_first():
    frame = completion_frame(["p", "q"], [[1, 2], [3]], [[5], [6, 7], [], [8, 9, 10]], ["f", "gh", "", "ijk"], 2,
                             keys={"prompt_idx": np.array([7, 3]), "subset": np.array(["x", "y"], dtype=object)},
                             finished=[True, False, False, True])
    assert list(frame.columns) == ["prompt_idx", "subset", "sample", "prompt", "prompt_ids", "response_ids",
                                   "response", "n_tokens", "finished"]
    assert frame.to_dict("list") == {
        "prompt_idx": [7, 7, 3, 3], "subset": ["x", "x", "y", "y"], "sample": [0, 1, 0, 1],
        "prompt": ["p", "p", "q", "q"], "prompt_ids": [[1, 2], [1, 2], [3], [3]],
        "response_ids": [[5], [6, 7], [], [8, 9, 10]], "response": ["f", "gh", "", "ijk"],
        "n_tokens": [1, 2, 0, 3], "finished": [True, False, False, True]}
    assert frame["sample"].dtype == np.int64 and frame["prompt_idx"].dtype == np.int64
    with pytest.raises(ValueError, match="2 prompts x 2 samples, but 3 response ids"):
        completion_frame(["p", "q"], [[1], [2]], [[5], [6], [7]], ["a", "b", "c"], 2)


def test_completion_frame_takes_a_frames_key_columns_whatever_its_index():
    """HH passes its prompts' ``prompt_idx`` and ``subset`` columns as a DataFrame slice of a stratified subset (an
    index that is neither 0-based nor contiguous); a DataFrame has no truth value, so ``keys or {}`` failed."""
    prompts = pd.DataFrame({"prompt_idx": [11, 4], "subset": ["harmless-base", "helpful-base"]}, index=[5, 2])
    frame = completion_frame(["p", "q"], [[1], [2]], [[5], [6], [7], [8]], ["a", "b", "c", "d"], 2,
                             keys=prompts[["prompt_idx", "subset"]])
    assert frame[["prompt_idx", "subset"]].to_dict("list") == {
        "prompt_idx": [11, 11, 4, 4], "subset": ["harmless-base", "harmless-base", "helpful-base", "helpful-base"]}
    assert list(frame.index) == [0, 1, 2, 3]
