"""Memory estimates that size the hf sampler's automatic GPU batch (bytes per generated row)."""
from __future__ import annotations

import torch


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of KV cache one token takes: 2 (K, V) x layers x KV heads x head dim x element size."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return 2 * layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def row_bytes(config, dtype: torch.dtype, width: int, max_new_tokens: int, vocab: int) -> int:
    """A (rough, generous) memory estimate for one generated row: its KV cache over prompt + completion,
    the prefill activations of its prompt, and the fp32/fp64 copies of its logits the sampler makes."""
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    inner = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    size = torch.tensor([], dtype=dtype).element_size()
    prefill = width * (4 * hidden + 2 * inner) * size
    if getattr(config, "_attn_implementation", "eager") == "eager":
        heads = getattr(config, "num_attention_heads", None) or config.n_head
        prefill += heads * width * width * 4
    return (width + max_new_tokens) * kv_bytes_per_token(config, dtype) + prefill + vocab * 64
