"""The HH reward models as :class:`~workflow_scripts.core.scoring.Scorer` s.

Each objective (helpful, harmless) has one sequence classifier with a single output: by default the
public ``Ray2333/gpt2-large-helpful-reward_model`` / ``Ray2333/gpt2-large-harmless-reward_model``
(GPT-2-large, reported test accuracy 0.726 / 0.737), or one trained here on the subset's preference
pairs (:mod:`.train_reward`, a config switch). The input is the HH dialogue: the prompt
(``"\\n\\nHuman: ... \\n\\nAssistant:"``) and the response as a text pair, exactly as the Ray2333
model cards call the tokenizer (``tokenizer(q, a, truncation=True)``); the reward is ``logits[0]``.
"""
from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm


class HHRewardScorer:
    """One reward model: ``score(prompts, responses)`` -> one column named after its objective."""

    def __init__(self, path: str, device="cpu", name: str = "reward", max_length: int = 1024, batch_size: int = 16,
                 dtype: torch.dtype = torch.float32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).to(device).eval()
        # GPT-2 classifiers pool the last non-pad token: they must know the pad id.
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device, self.name = device, name
        self.objectives = (name,)
        self.max_length, self.batch_size = max_length, batch_size

    @classmethod
    def load(cls, path: str, device="cpu", **options) -> "HHRewardScorer":
        return cls(path, device, **options)

    def encode(self, prompts: Sequence[str], responses: Sequence[str]):
        """The model-card call: the prompt and the response as a text pair, truncated to ``max_length``."""
        return self.tokenizer(list(prompts), list(responses), return_tensors="pt", padding=True, truncation=True,
                              max_length=self.max_length)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], completions: Sequence[str], desc: str = "scoring") -> pd.DataFrame:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} responses.")
        lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
        order = np.argsort(lengths, kind="stable")                       # batches of similar length
        rewards = np.zeros(len(prompts), dtype=np.float64)
        for start in tqdm(range(0, len(order), self.batch_size), desc=f"{desc} ({self.name})", leave=False,
                          mininterval=5):
            idx = order[start:start + self.batch_size]
            batch = self.encode([prompts[i] for i in idx], [completions[i] for i in idx]).to(self.device)
            rewards[idx] = self.model(**batch).logits[:, 0].float().cpu().numpy()
        return pd.DataFrame({self.name: rewards})


class EnsembleScorer:
    """Several one-objective scorers as one: a column per objective (helpful, harmless)."""

    def __init__(self, scorers: Sequence[HHRewardScorer]):
        self.scorers = list(scorers)
        self.objectives = tuple(o for s in self.scorers for o in s.objectives)

    @classmethod
    def load(cls, path: str, device="cpu", **options) -> "EnsembleScorer":
        """``path``: a JSON mapping objective -> reward model (hub id or directory)."""
        models = json.loads(path) if isinstance(path, str) else dict(path)
        return cls([HHRewardScorer(source, device, name=name, **options) for name, source in models.items()])

    def score(self, prompts: Sequence[str], completions: Sequence[str], desc: str = "scoring") -> pd.DataFrame:
        return pd.concat([s.score(prompts, completions, desc) for s in self.scorers], axis=1)


def ensemble(models: Mapping[str, str], device, **options) -> EnsembleScorer:
    return EnsembleScorer([HHRewardScorer(source, device, name=name, **options) for name, source in models.items()])
