"""Sampling completions and scoring them with sequence log-probabilities.

Conventions used across the project:
- prompts are left-padded for generation (so every prompt ends at the same column and the
  KV cache is used), completions are right-padded;
- ``logp(y|x)`` is the SUM of log-probabilities of the response tokens only: prompt tokens
  and padding are masked out (SPEC section 2).
"""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s):
            ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s):] = 1
    return ids, mask


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a turn: the generation config's (Llama-3 instruct models list several,
    e.g. ``<|end_of_text|>``, ``<|eom_id|>``, ``<|eot_id|>``) plus the tokenizer's EOS."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    ids.append(tokenizer.eos_token_id)
    return sorted({int(i) for i in ids if i is not None})


@torch.no_grad()
def sample_completions(model, prompts: Sequence[Sequence[int]], *, eos_id: int | Sequence[int], pad_id: int,
                       max_new_tokens: int,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, batch_size: int = 64,
                       generator_seed: int | None = None, desc: str = "sampling", num_return_sequences: int = 1,
                       device: torch.device | str = "cpu") -> list[list[int]]:
    """Sample completions (token ids, without the prompt, cut after the first stop id) for each prompt.

    ``eos_id`` is one stop id or several (see :func:`stop_token_ids`). Returns
    ``len(prompts) * num_return_sequences`` lists, prompt-major. ``top_k=0`` and ``top_p=1``
    is plain ancestral sampling (the emotion protocol).
    """
    stops = {int(eos_id)} if isinstance(eos_id, int) else {int(i) for i in eos_id}
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    was_training = model.training
    model.eval()
    out: list[list[int]] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False, mininterval=5):
        chunk = prompts[start:start + batch_size]
        ids, mask = left_pad(chunk, pad_id)
        generated = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
            temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens,
            num_return_sequences=num_return_sequences, pad_token_id=pad_id, eos_token_id=sorted(stops), use_cache=True,
        )
        for row in generated[:, ids.shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), None)
            out.append(row if end is None else row[: end + 1])
    model.train(was_training)
    return out


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


@torch.no_grad()
def score_logprobs(model, prompts, responses, *, pad_id: int, batch_size: int = 64, max_length: int | None = None,
                   device="cpu", desc: str = "log-probs") -> torch.Tensor:
    """``logp(response | prompt)`` for many pairs, in eval mode, batched."""
    was_training = model.training
    model.eval()
    out = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False, mininterval=5):
        batch = build_pair_batch(prompts[start:start + batch_size], responses[start:start + batch_size], pad_id, max_length)
        batch = {k: v.to(device) for k, v in batch.items()}
        lp, _ = forward_logprob(model, batch)
        out.append(lp.float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
