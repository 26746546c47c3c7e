"""core.evaluate.evaluate_policy with a fake sampler and scorer: the sampler closes before the scorer loads,
every split's table carries the labels, and the completions parquet holds the scored rows of every split.
And core.policy_job, the start every policy-sampling job shares."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.core.evaluate import evaluate_policy


class Events(list):
    def sampler(self):
        events = self

        class Sampler:
            def close(self):
                events.append("close sampler")
        self.append("open sampler")
        return Sampler()

    def scorer(self):
        events = self

        class Scorer:
            objectives = ("length", "bias")

            def score(self, prompts, completions, desc="scoring"):
                events.append(desc)
                return pd.DataFrame({"length": [float(len(c)) for c in completions],
                                     "bias": [float(p == "hi") for p in prompts]})
        self.append("open scorer")
        return Scorer()


def sample(events):
    def sample(sampler, split, texts):
        events.append(f"sample {split}")
        n = len(texts)
        return pd.DataFrame({"prompt_idx": np.arange(n), "prompt": texts, "prompt_ids": [[1]] * n,
                             "response_ids": [[2, 3]] * n, "response": [t * 2 for t in texts]})
    return sample


def mean_length(split, scored):
    return pd.DataFrame({"objective": ["length"], "value": [scored["length"].mean()], "n": [len(scored)]})


@pytest.mark.parametrize("labelled", [False, True])
def test_splits_are_sampled_then_scored_and_written_with_their_labels(tmp_path, labelled):
    events = Events()
    outputs = {"validation": str(tmp_path / "v.csv"), "test": str(tmp_path / "t.csv")}
    evaluate_policy({"test": ["hi", "abc"], "validation": ["x"]}, outputs, open_sampler=events.sampler,
                    sample=sample(events), open_scorer=events.scorer, aggregate=mean_length,
                    labels={"variant": "dpo", "seed": 3}, completions_out=str(tmp_path / "c.parquet"),
                    labelled_completions=labelled)
    # the prompts' order; the policy's sampler is closed before the reward model loads
    assert events == ["open sampler", "sample test", "sample validation", "close sampler", "open scorer",
                      "test scoring", "validation scoring"]
    test = pd.read_csv(tmp_path / "t.csv")
    assert test.to_dict("list") == {"variant": ["dpo"], "seed": [3], "split": ["test"], "objective": ["length"],
                                    "value": [(4 + 6) / 2], "n": [2]}
    assert pd.read_csv(tmp_path / "v.csv")["value"].tolist() == [2.0]
    rows = pd.read_parquet(tmp_path / "c.parquet")
    tail = ["split", "variant", "seed"] if labelled else ["split"]
    assert list(rows.columns) == ["prompt_idx", "prompt", "response", "length", "bias", *tail]   # no token ids
    assert rows["split"].tolist() == ["test", "test", "validation"]
    assert rows["bias"].tolist() == [1.0, 0.0, 0.0]


def test_a_split_column_from_the_sampler_stays_where_it_is_and_splits_must_match(tmp_path):
    events = Events()

    def with_split(sampler, split, texts):
        return pd.DataFrame({"split": split, "prompt": texts, "completion": texts})

    evaluate_policy({"test": ["ab"]}, {"test": str(tmp_path / "t.csv")}, open_sampler=events.sampler,
                    sample=with_split, open_scorer=events.scorer, aggregate=mean_length, labels={},
                    completions_out=str(tmp_path / "c.parquet"), response="completion")
    assert list(pd.read_parquet(tmp_path / "c.parquet").columns) == ["split", "prompt", "completion", "length", "bias"]
    with pytest.raises(ValueError, match=r"prompt splits \['test'\] differ from output splits \['validation'\]"):
        evaluate_policy({"test": []}, {"validation": "v.csv"}, open_sampler=events.sampler, sample=with_split,
                        open_scorer=events.scorer, aggregate=mean_length, labels={})


def test_a_policy_job_starts_seeded_on_its_device_with_the_policys_tokenizer(tmp_path):
    import argparse

    import torch

    from workflow_scripts.core.policy_job import start_policy_job
    from workflow_scripts.core.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(["one two three four"] * 10, 260, tmp_path / "policy")

    def parse_args(argv):
        p = argparse.ArgumentParser()
        p.add_argument("--policy")
        p.add_argument("--seed", type=int)
        return p.parse_args(argv)

    a, device, loaded = start_policy_job(parse_args, ["--policy", str(tmp_path / "policy"), "--seed", "11"])
    assert (a.policy, a.seed) == (str(tmp_path / "policy"), 11)
    assert torch.initial_seed() == 11 and np.random.get_state()[1][0] == 11
    assert device == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    assert loaded("one two")["input_ids"] == tokenizer("one two")["input_ids"]
