"""Attention kernels and the log-prob forward: the fused kernel (SDPA) wherever no double backward is
needed, eager for the Wasserstein variants; the LM head only from the first response position.

Tolerances (stated, measured on these tiny models): eager vs SDPA log-probs of ~20-token responses
agree to 1e-4 in fp32 (measured 0 for GPT-2, 4e-6 for Llama) and 1e-2 under bf16 autocast (measured
3e-3): both kernels compute the same softmax attention, only the summation order differs.
"""
from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from workflow_scripts.core.logprobs import build_pair_batch, forward_logprob
from workflow_scripts.core.losses import robust_objective
from workflow_scripts.core.models import training_attention

VOCAB = 64


def tiny(arch: str, attention: str):
    torch.manual_seed(0)
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=64,
                                          bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0,
                                          attn_pdrop=0.0, attn_implementation=attention)).eval()
    return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64,
                                        bos_token_id=0, eos_token_id=0, attn_implementation=attention)).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in (3, 7, 5, 9)]
    responses = [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in (10, 4, 12, 6)]
    return build_pair_batch(prompts + prompts, responses + responses[::-1], 0, 30)


def naive_logprob(model, batch):
    """Every position through the LM head, a full log-softmax: the textbook computation."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), -1)
    tokens = torch.gather(logprobs, 2, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    return (tokens * batch["response_mask"][:, 1:]).sum(1)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_head_on_response_positions_only_equals_the_full_computation(arch, batch):
    model = tiny(arch, "sdpa")
    with torch.no_grad():
        ours, _ = forward_logprob(model, batch)
        full = naive_logprob(model, batch)
    assert torch.allclose(ours, full, rtol=0, atol=1e-5), (ours - full).abs().max()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_eager_and_sdpa_log_probs_agree(arch, batch):
    eager, sdpa = tiny(arch, "eager"), tiny(arch, "sdpa")
    with torch.no_grad():
        a, _ = forward_logprob(eager, batch)
        b, _ = forward_logprob(sdpa, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a16, _ = forward_logprob(eager, batch)
            b16, _ = forward_logprob(sdpa, batch)
    assert (a - b).abs().max() <= 1e-4
    assert (a16 - b16).abs().max() <= 1e-2


def test_only_wasserstein_variants_train_with_eager_attention():
    for variant in ("rebel", "dpo", "kl-rebel", "kl-dpo", "chi2-rebel", "chi2-dpo", "w-rebel", "wdpo"):
        needs = robust_objective(variant, 0.0 if variant in ("rebel", "dpo") else 0.5).needs_embeddings
        assert needs == (variant in ("w-rebel", "wdpo"))
        assert training_attention(needs) == ("eager" if needs else "sdpa")
    with pytest.raises(ValueError, match="double backward"):
        training_attention(True, "sdpa")
    assert training_attention(False, "eager") == "eager"


def _wasserstein_gradient(model, batch):
    """The WDPO objective's parameter gradient (penalty through a gradient w.r.t. the embeddings)."""
    objective = robust_objective("wdpo", 0.5, beta=0.1, wasserstein_form="pointwise")
    model.zero_grad(set_to_none=True)
    logp, embeddings = forward_logprob(model, batch, with_embeddings=True)
    n = logp.shape[0] // 2
    losses = objective.per_sample(torch.stack([logp[:n], logp[n:]], 1), torch.zeros(n, 2, dtype=logp.dtype),
                                  reward=torch.rand(n, 2, generator=torch.Generator().manual_seed(3), dtype=logp.dtype))
    sqnorm = objective.sample_sqnorm(losses, embeddings)
    objective.surrogate(losses, sqnorm, objective.plan(objective.statistics(losses, sqnorm)), 0).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_the_fused_kernel_cannot_differentiate_twice(batch):
    """Why Wasserstein variants keep eager attention: SDPA's backward has no derivative."""
    with pytest.raises(RuntimeError, match="derivative"):
        _wasserstein_gradient(tiny("gpt2", "sdpa").train(), batch)


def test_gradient_checkpointing_keeps_the_wasserstein_gradient_exact(batch):
    plain = _wasserstein_gradient(tiny("gpt2", "eager").double().train(), batch)
    from workflow_scripts.core.train.engine import enable_gradient_checkpointing

    model = tiny("gpt2", "eager").double().train()
    enable_gradient_checkpointing(model)
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    checkpointed = _wasserstein_gradient(model, batch)
    # Exact up to float64 rounding (measured 1.7e-16 relative: the recomputed forward may sum the
    # gradient's pieces in another order); a lost double-backward term would be orders larger.
    assert plain.norm() > 0 and (plain - checkpointed).norm() <= 1e-12 * plain.norm()
