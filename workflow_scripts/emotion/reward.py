"""The emotion reward model as a :class:`~workflow_scripts.core.scoring.Scorer`: a multi-label classifier
whose sigmoid outputs are the five objective rewards in (0, 1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

#: The five objectives of the emotion experiment: dair-ai/emotion's labels minus "surprise".
REWARD_EMOTIONS = ("sadness", "joy", "love", "anger", "fear")


class EmotionScorer:
    """Scores ``prompt + completion`` with the trained classifier: columns sadness, joy, love, anger, fear."""

    objectives = REWARD_EMOTIONS

    def __init__(self, path: str, device: torch.device | str = "cpu", max_length: int = 256, batch_size: int = 64):
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        missing = set(REWARD_EMOTIONS) - set(self.labels)
        if missing:
            raise ValueError(f"{path}: reward model lacks labels {sorted(missing)}; it has {self.labels}.")

    @classmethod
    def load(cls, path: str, device="cpu", **options) -> "EmotionScorer":
        return cls(path, device, **options)

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str], desc: str = "scoring") -> np.ndarray:
        """(N, labels) sigmoid outputs, in the classifier's label order."""
        out = []
        for start in tqdm(range(0, len(texts), self.batch_size), desc=desc, leave=False, mininterval=5):
            enc = self.tokenizer(list(texts[start:start + self.batch_size]), return_tensors="pt", padding=True,
                                 truncation=True, max_length=self.max_length).to(self.device)
            out.append(torch.sigmoid(self.model(**enc).logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def score(self, prompts: Sequence[str], completions: Sequence[str], desc: str = "scoring") -> pd.DataFrame:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions.")
        probs = self.probabilities([p + c for p, c in zip(prompts, completions)], desc)
        return pd.DataFrame({e: probs[:, self.labels.index(e)] for e in REWARD_EMOTIONS})
