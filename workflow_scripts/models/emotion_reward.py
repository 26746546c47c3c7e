"""The emotion reward model: a multi-label classifier whose sigmoid outputs are rewards in (0, 1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer

#: The five objectives of the emotion experiment: dair-ai/emotion's labels minus "surprise".
REWARD_EMOTIONS = ("sadness", "joy", "love", "anger", "fear")


class EmotionRewardModel:
    """Scores texts with the trained classifier; ``scores(texts)`` is ``(N, 5)`` in (0, 1)."""

    def __init__(self, path: str, device: torch.device | str = "cpu", max_length: int = 256):
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
        self.device = device
        self.max_length = max_length
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        missing = set(REWARD_EMOTIONS) - set(self.labels)
        if missing:
            raise ValueError(f"{path}: reward model lacks labels {sorted(missing)}; it has {self.labels}.")

    @torch.no_grad()
    def scores(self, texts: Sequence[str], batch_size: int = 64, desc: str = "scoring") -> np.ndarray:
        out = []
        for start in tqdm(range(0, len(texts), batch_size), desc=desc, leave=False, mininterval=5):
            enc = self.tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                                 truncation=True, max_length=self.max_length).to(self.device)
            out.append(torch.sigmoid(self.model(**enc).logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def objectives(self, texts: Sequence[str], names: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        s = self.scores(texts, batch_size)
        return {name: s[:, self.labels.index(name)] for name in names}
