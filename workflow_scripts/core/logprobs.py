"""Sequence log-probabilities of (prompt, response) pairs under a causal LM: the training forward's.

Conventions used across the project:
- a pair is one right-padded ``prompt + response`` row (:func:`build_pair_batch`); prompts are
  left-padded only for generation (:func:`workflow_scripts.core.sampling.left_pad`);
- ``logp(y|x)`` is the SUM of log-probabilities of the response tokens only: prompt tokens
  and padding are masked out (SPEC section 2).
"""
from __future__ import annotations

from typing import Sequence

import torch


def build_pair_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int,
                     max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded ``prompt + response`` rows with a mask selecting the response tokens.

    ``response_mask[b, t] = 1`` iff token t of row b belongs to the response; the log-prob
    of token t is predicted from position t - 1.
    """
    rows, starts = [], []
    for p, r in zip(prompts, responses):
        seq = list(p) + list(r)
        if max_length is not None:
            seq = seq[:max_length]
        rows.append(seq)
        starts.append(min(len(p), len(seq)))
    width = max(len(s) for s in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (seq, s) in enumerate(zip(rows, starts)):
        ids[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[i, :len(seq)] = 1
        response[i, s:len(seq)] = 1
    return {"input_ids": ids, "attention_mask": attention, "response_mask": response}


def sequence_logprob(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Sum over response tokens of ``log pi(token_t | tokens_<t)``; prompt and padding excluded.

    ``logits`` may cover only the last ``k`` positions (``k <= T``, see :func:`forward_logprob`): the
    position predicting token t is t - 1, so they score tokens ``T - k + 1 ..``; the mask must be 0 before.
    log pi = logit[token] - logsumexp(logits), in fp32: no (B, T, V) log-softmax copy is kept.
    """
    k = logits.shape[1]
    targets = input_ids[:, input_ids.shape[1] - k + 1:]
    mask = response_mask[:, response_mask.shape[1] - k + 1:]
    logits = logits[:, :-1].float()
    picked = torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1)
    token_logprobs = picked - torch.logsumexp(logits, dim=-1)
    return (token_logprobs * mask.to(token_logprobs.dtype)).sum(dim=1)


def first_scored_position(response_mask: torch.Tensor) -> int:
    """The first column any row's response starts at (>= 1: token 0 has no prediction)."""
    columns = response_mask.any(dim=0).nonzero()
    return max(1, int(columns[0])) if len(columns) else response_mask.shape[1] - 1


#: Causal-LM classes whose logits are ``lm_head(base_model(...).last_hidden_state)`` and nothing else (no
#: soft-capping or scaling in between): for these the head runs on the scored tokens only.
HEAD_ON_SCORED_TOKENS = ("gpt2", "llama", "qwen2", "mistral")


def forward_logprob(model, batch: dict[str, torch.Tensor], *, with_embeddings: bool = False):
    """Sequence log-probs of a pair batch; optionally also the embedding-layer output.

    The vocabulary-sized LM head (and its log-sum-exp) runs on the hidden states of the **scored tokens
    only**, the positions predicting a response token: not on prompts, and not on the right padding of
    the shorter responses of a batch. On the emotion pairs (responses of 16 tokens on average, padded to
    40) that is 41 % of the positions; at Llama-3's 128k vocabulary and 1k-token prompts the head is most
    of the step. For architectures not known to be ``lm_head(last_hidden_state)``, the model's own forward
    runs the head from the first scored position on (``logits_to_keep``).

    The embeddings are computed explicitly and fed as ``inputs_embeds`` so that they are a
    node of the autograd graph (the Wasserstein penalty differentiates with respect to them).
    """
    ids = batch["input_ids"]
    # Position ids from the attention mask keep right padding harmless.
    if with_embeddings:
        embeddings = model.get_input_embeddings()(ids)
        inputs = {"inputs_embeds": embeddings, "attention_mask": batch["attention_mask"]}
    else:
        embeddings = None
        inputs = {"input_ids": ids, "attention_mask": batch["attention_mask"]}
    if model.config.model_type not in HEAD_ON_SCORED_TOKENS:
        keep = ids.shape[1] - first_scored_position(batch["response_mask"]) + 1
        out = model(**inputs, logits_to_keep=keep)
        return sequence_logprob(out.logits, ids, batch["response_mask"]), embeddings
    hidden = model.base_model(**inputs).last_hidden_state
    # position t - 1 predicts token t: the scored positions are those whose next token is a response token
    rows, cols = batch["response_mask"][:, 1:].nonzero(as_tuple=True)
    logits = model.get_output_embeddings()(hidden[rows, cols]).float()
    targets = ids[rows, cols + 1]
    token_logprobs = logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=-1)
    return token_logprobs.new_zeros(ids.shape[0]).index_add(0, rows, token_logprobs), embeddings
