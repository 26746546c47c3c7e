"""The ArmoRM reward model (SPEC 5.2): objective names, the output adapter, loading and batched scoring.

``RLHFlow/ArmoRM-Llama3-8B-v0.1`` returns an output with ``rewards`` (B, 19: one regression head
per objective, in :data:`OBJECTIVES` order) and ``score`` (B,: the gated mixture-of-experts
scalar, called ``ArmoRM`` here). Everything downstream reads the 20 named columns that
:func:`reward_columns` makes from such an output, whichever model produced it: the real ArmoRM
(hub remote code, or :class:`ArmoRMGatingRewardModel` reading its weights) or the mini preset's
stand-in (:mod:`.armorm_standin`).

Loading (:func:`load_reward_model`):

- a local directory holding an :class:`ArmoRMGatingRewardModel` (the stand-in) loads through that
  class: no remote code;
- ``loader="remote_code"``: ``AutoModelForSequenceClassification`` with ``trust_remote_code=True``
  **only** when the id is on the allow-list (config ``armorm.trust_remote_code_allowlist``);
- ``loader="native"``: :class:`ArmoRMGatingRewardModel` (this file's port of the published
  architecture: Llama trunk, 19-way regression layer, gating MLP on the end-of-prompt token,
  reward transform matrix) reads the checkpoint's weights, no remote code. ArmoRM's published
  ``modeling_custom.py`` imports ``LLAMA_INPUTS_DOCSTRING``, which transformers 5 no longer has,
  so under this project's pinned transformers the remote-code path fails at import.

Scoring (:class:`ArmoRMScorer`): each (prompt, response) goes through the reward model's own chat
template as a user/assistant conversation, sequences are sorted by length and right-padded in
batches (ArmoRM reads the last non-pad token), the outputs go through :func:`reward_columns`, and
the rows come back in input order.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaModel, LlamaPreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from workflow_scripts.core.models import resolve_dtype  # noqa: E402

logger = logging.getLogger(__name__)

#: ArmoRM's 19 objective heads, in the order of ``output.rewards`` (SPEC 5.2).
OBJECTIVES: tuple[str, ...] = (
    "helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence", "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score", "ultrafeedback-instruction_following", "ultrafeedback-truthfulness",
    "ultrafeedback-honesty", "ultrafeedback-helpfulness",
    "beavertails-is_safe", "prometheus-score",
    "argilla-overall_quality", "argilla-judge_lm",
    "code-complexity", "code-style", "code-explanation", "code-instruction-following", "code-readability",
)
#: The gated score's column name.
GATED = "ArmoRM"
#: Every column the scorer writes: the 19 heads, then the gated score.
SCORE_COLUMNS: tuple[str, ...] = OBJECTIVES + (GATED,)

#: ArmoRM's gating token: the user turn's end followed by the assistant header, in Llama-3 ids
#: ("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n").
LLAMA3_GATING_PATTERN = (128009, 128006, 78191, 128007, 271)


# ----------------------------------------------------------------------------- the adapter
def reward_columns(output, n_objectives: int = len(OBJECTIVES)) -> dict[str, np.ndarray]:
    """Named float columns from any output with ``.rewards`` (B, 19) and ``.score`` (B,) or (B, 1).

    The one adapter between a reward model and the rest of the workflow: the real ArmoRM and
    the stand-in both pass through here.
    """
    rewards = getattr(output, "rewards", None)
    score = getattr(output, "score", None)
    if rewards is None or score is None:
        raise ValueError(f"reward-model output {type(output).__name__} lacks 'rewards' and/or 'score'; "
                         "expected the ArmoRM output structure.")
    rewards = torch.as_tensor(rewards).detach().float().cpu()
    score = torch.as_tensor(score).detach().float().cpu()
    if rewards.ndim != 2 or rewards.shape[1] != n_objectives:
        raise ValueError(f"reward-model output 'rewards' has shape {tuple(rewards.shape)}; expected (batch, {n_objectives}).")
    if score.ndim == 2 and score.shape[1] == 1:
        score = score[:, 0]
    if score.ndim != 1 or score.shape[0] != rewards.shape[0]:
        raise ValueError(f"reward-model output 'score' has shape {tuple(score.shape)}; expected ({rewards.shape[0]},).")
    columns = {name: rewards[:, j].numpy() for j, name in enumerate(OBJECTIVES[:n_objectives])}
    columns[GATED] = score.numpy()
    return columns


# ----------------------------------------------------------------------------- the architecture
@dataclass
class ArmoRMOutput(ModelOutput):
    """The fields of ArmoRM's output (``rewards``, ``score`` and the gating internals)."""

    rewards: torch.FloatTensor | None = None
    hidden_state: torch.FloatTensor | None = None
    prompt_embedding: torch.FloatTensor | None = None
    gating_output: torch.FloatTensor | None = None
    score: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class GatingNetwork(nn.Module):
    """ArmoRM's gating MLP: ReLU hidden layers, softmax(x / temperature) scaled by a learnt logit scale."""

    def __init__(self, in_features: int, out_features: int, temperature: float = 10.0, hidden_dim: int = 1024,
                 n_hidden: int = 3):
        super().__init__()
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1))
        layers = []
        for _ in range(n_hidden):
            layers.append(nn.Linear(in_features, hidden_dim))
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, out_features, bias=True))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return F.softmax(x / self.temperature, dim=1) * self.logit_scale[0]


def _last_occurrence(row: list[int], pattern: Sequence[int]) -> int:
    k = len(pattern)
    for j in range(len(row) - k, -1, -1):
        if row[j:j + k] == list(pattern):
            return j
    raise ValueError(f"gating token pattern {list(pattern)} not found in a scored sequence: the reward model "
                     "needs its chat template's end-of-prompt tokens.")


class ArmoRMGatingRewardModel(LlamaPreTrainedModel):
    """ArmoRM's architecture (``LlamaForRewardModelWithGating``), ported to this transformers version.

    Llama trunk -> hidden state of the last non-pad token -> ``regression_layer`` (19 heads, the
    ``rewards``); the hidden state at the last occurrence of the gating token pattern (end of the
    prompt) -> :class:`GatingNetwork` -> weights over the objectives; ``score`` =
    ``sum(gating * (rewards @ reward_transform_matrix))``. Parameter names follow the published
    checkpoint, so ``from_pretrained("RLHFlow/ArmoRM-Llama3-8B-v0.1")`` reads its weights.

    Config extras (defaults = ArmoRM's): ``num_objectives`` 19, ``gating_temperature`` 10,
    ``gating_hidden_dim`` 1024, ``gating_n_hidden`` 3, ``gating_token_pattern`` (Llama-3 ids).
    Inputs must be right-padded (or unpadded) with an attention mask.
    """

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        extra = config.to_dict()
        self.num_objectives = int(extra.get("num_objectives", len(OBJECTIVES)))
        self.gating_token_pattern = tuple(extra.get("gating_token_pattern") or LLAMA3_GATING_PATTERN)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, self.num_objectives, bias=False)
        self.reward_transform_matrix = nn.Parameter(torch.eye(self.num_objectives), requires_grad=False)
        self.gating = GatingNetwork(config.hidden_size, self.num_objectives,
                                    temperature=float(extra.get("gating_temperature", 10.0)),
                                    hidden_dim=int(extra.get("gating_hidden_dim", 1024)),
                                    n_hidden=int(extra.get("gating_n_hidden", 3)))
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, GatingNetwork):
            init.ones_(module.logit_scale)
        if isinstance(module, ArmoRMGatingRewardModel):
            init.eye_(module.reward_transform_matrix)

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, **kwargs) -> ArmoRMOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(input_ids.shape[0], device=hidden.device)
        lengths = attention_mask.sum(dim=1)
        last = (lengths - 1).clamp(min=0).to(hidden.device)
        last_hidden = hidden[rows, last]
        rewards = self.regression_layer(last_hidden)
        gate_pos = [_last_occurrence(ids[: int(n)].tolist(), self.gating_token_pattern)
                    for ids, n in zip(input_ids, lengths)]
        prompt_embedding = hidden[rows, torch.tensor(gate_pos, device=hidden.device)]
        gating = self.gating(prompt_embedding)
        score = (gating * (rewards @ self.reward_transform_matrix)).sum(dim=1)
        return ArmoRMOutput(rewards=rewards, hidden_state=last_hidden, prompt_embedding=prompt_embedding,
                            gating_output=gating, score=score, logits=score)


def is_gating_checkpoint(path: str | Path) -> bool:
    """True for a local directory saved from :class:`ArmoRMGatingRewardModel` (e.g. the stand-in)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    return ArmoRMGatingRewardModel.__name__ in (json.loads(config.read_text()).get("architectures") or [])


# ----------------------------------------------------------------------------- loading
def load_reward_model(source: str, *, allowlist: Sequence[str] = (), loader: str = "remote_code",
                      dtype: str = "bf16", device: torch.device | str = "cpu"):
    """``(model, tokenizer)`` for a reward model with the ArmoRM output structure (see the module doc)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch_dtype = resolve_dtype(dtype, device)
    if loader not in ("remote_code", "native"):
        raise ValueError(f"loader must be remote_code or native, got {loader!r}.")
    if is_gating_checkpoint(source) or loader == "native":
        model = ArmoRMGatingRewardModel.from_pretrained(source, dtype=torch_dtype)
        how = "ArmoRMGatingRewardModel (no remote code)"
    else:
        trust = source in set(allowlist)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(source, trust_remote_code=trust,
                                                                       dtype=torch_dtype)
        except ImportError as error:
            # ArmoRM's published modeling code imports names that transformers 5 removed.
            raise RuntimeError(f"the remote code of {source} does not import under this transformers "
                               f"({error}); set armorm.reward_loader: native to load its weights into "
                               "this workflow's port of the architecture") from error
        how = f"AutoModelForSequenceClassification, trust_remote_code={trust}" + (" (allow-listed)" if trust else "")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = model.to(device).eval()
    logger.info("reward model %s loaded via %s, %s on %s", source, how, torch_dtype, device)
    return model, tokenizer


# ----------------------------------------------------------------------------- scoring
class ArmoRMScorer:
    """Batched scoring of (prompt, response) pairs into the 20 named columns of :data:`SCORE_COLUMNS`
    (a :class:`~workflow_scripts.core.scoring.Scorer`)."""

    objectives = SCORE_COLUMNS

    @classmethod
    def load(cls, path: str, device="cpu", *, allowlist: Sequence[str] = (), loader: str = "remote_code",
             dtype: str = "bf16", batch_size: int = 8, max_length: int = 4096) -> "ArmoRMScorer":
        model, tokenizer = load_reward_model(path, allowlist=allowlist, loader=loader, dtype=dtype, device=device)
        return cls(model, tokenizer, device=device, batch_size=batch_size, max_length=max_length)

    def __init__(self, model, tokenizer, *, device: torch.device | str = "cpu", batch_size: int = 8,
                 max_length: int = 4096):
        self.model, self.tokenizer, self.device = model, tokenizer, torch.device(device)
        self.batch_size, self.max_length = batch_size, max_length
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            logger.warning("the reward model's tokenizer has no pad token: scoring one sequence at a time.")
            self.batch_size = 1

    def encode(self, prompt: str, response: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[: self.max_length]

    @torch.no_grad()
    def score(self, prompts: Sequence[str], responses: Sequence[str], desc: str = "scoring") -> pd.DataFrame:
        from tqdm.auto import tqdm

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses.")
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses)]
        order = np.argsort([len(e) for e in encoded], kind="stable")       # batches of similar length
        columns = {name: np.zeros(len(encoded), dtype=np.float32) for name in SCORE_COLUMNS}
        for start in tqdm(range(0, len(order), self.batch_size), desc=desc, leave=False, mininterval=5):
            idx = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id if self.pad_id is not None else 0, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :len(encoded[i])] = torch.tensor(encoded[i], dtype=torch.long)
                mask[row, :len(encoded[i])] = 1
            output = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            for name, values in reward_columns(output).items():
                columns[name][idx] = values
        return pd.DataFrame(columns)
