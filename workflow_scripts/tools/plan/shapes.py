"""Model shapes: parameter counts and layer dimensions of every model a config can name.

The planner turns tokens into seconds and bytes through a model's size, so it needs the shape of
each model the grid loads **without downloading anything**: hub ids of the paper preset come from
the table below (their published ``config.json``), models built from a config mapping (the mini
preset's GPT-2s and Llamas) from their own dimensions. An unknown hub id or directory is an error
that names the id: a guessed size would make every number of the plan wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer (GPT-2 or Llama family), enough of it for FLOPs and memory."""

    name: str
    n_layer: int
    d_model: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    n_positions: int = 0          # learned position embeddings (GPT-2); 0 for rotary models
    tied: bool = True             # the output head shares the input embedding
    family: str = "gpt2"          # gpt2 (LayerNorm, GELU MLP, biases) or llama (RMSNorm, gated MLP)
    qkv_bias: bool = False        # Qwen2 has biases on q, k, v
    extra_params: int = 0         # heads beyond the LM (ArmoRM's regression and gating layers)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def layer_params(self) -> int:
        """Parameters of one transformer block."""
        d, f, kv = self.d_model, self.d_ff, self.n_kv_heads * self.head_dim
        if self.family == "gpt2":
            return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d   # qkv+proj (with biases), MLP, two LayerNorms
        bias = (d + 2 * kv) if self.qkv_bias else 0
        return 2 * d * d + 2 * d * kv + bias + 3 * d * f + 2 * d   # q, o, k, v, gated MLP, two RMSNorms

    @property
    def params(self) -> int:
        """Every parameter (what the optimizer holds and a checkpoint weighs)."""
        embeddings = self.vocab * self.d_model + self.n_positions * self.d_model
        head = 0 if self.tied else self.vocab * self.d_model
        final_norm = 2 * self.d_model if self.family == "gpt2" else self.d_model   # LayerNorm has a bias
        return embeddings + head + self.n_layer * self.layer_params + final_norm + self.extra_params

    @property
    def compute_params(self) -> int:
        """Parameters that cost FLOPs per token: the blocks and the output head (an embedding lookup is free)."""
        return self.n_layer * self.layer_params + self.vocab * self.d_model + self.extra_params

    @property
    def scoring_params(self) -> int:
        """Parameters that cost FLOPs per token when the model scores (a reward model): the blocks and its own
        heads, not the vocabulary-sized LM head a checkpoint may carry (a classifier's is d x labels)."""
        return self.n_layer * self.layer_params + self.extra_params + self.d_model

    def weight_bytes(self, bytes_per_param: int = 2) -> int:
        return self.params * bytes_per_param

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        """KV-cache bytes of one token over all layers (generation)."""
        return 2 * self.n_layer * self.n_kv_heads * self.head_dim * bytes_per_value


def _llama3(name, n_layer, d, f, heads, kv, tied, extra=0):
    return Shape(name, n_layer, d, f, heads, kv, 128256, tied=tied, family="llama", extra_params=extra)


#: Published configs (config.json on the hub) of the models the paper preset loads.
KNOWN: dict[str, Shape] = {s.name: s for s in (
    Shape("gpt2", 12, 768, 3072, 12, 12, 50257, n_positions=1024),
    Shape("gpt2-medium", 24, 1024, 4096, 16, 16, 50257, n_positions=1024),
    Shape("gpt2-large", 36, 1280, 5120, 20, 20, 50257, n_positions=1024),
    _llama3("meta-llama/Llama-3.2-1B-Instruct", 16, 2048, 8192, 32, 8, tied=True),
    _llama3("meta-llama/Llama-3.2-1B", 16, 2048, 8192, 32, 8, tied=True),
    # ArmoRM = Llama-3-8B (no LM head used for scoring, but the checkpoint carries it) + 19-head regression
    # layer and a small gating network (~1.1M parameters).
    _llama3("RLHFlow/ArmoRM-Llama3-8B-v0.1", 32, 4096, 14336, 32, 8, tied=False, extra=1_100_000),
    Shape("Qwen/Qwen2.5-1.5B-Instruct", 28, 1536, 8960, 12, 2, 151936, tied=True, family="llama", qkv_bias=True),
)}
#: Hub ids that are another known model's shape (the HH reward models are GPT-2-large classifiers).
ALIASES = {
    "Ray2333/gpt2-large-helpful-reward_model": "gpt2-large",
    "Ray2333/gpt2-large-harmless-reward_model": "gpt2-large",
    "openai-community/gpt2": "gpt2",
    "openai-community/gpt2-large": "gpt2-large",
}


def shape_of(spec: Any, vocab: Optional[int] = None, name: str = "model") -> Shape:
    """The shape of a model spec: a known hub id, or a config mapping (GPT2Config or LlamaConfig arguments;
    ``vocab`` is the tokenizer's size for models whose vocabulary comes from a trained tokenizer)."""
    if isinstance(spec, Mapping):
        return _from_mapping(spec, vocab, name)
    key = ALIASES.get(str(spec), str(spec))
    if key not in KNOWN:
        raise ValueError(f"unknown model {spec!r}: add its shape to workflow_scripts/tools/plan/shapes.py "
                         f"(known: {', '.join(sorted(KNOWN))}).")
    return KNOWN[key]


def _from_mapping(spec: Mapping[str, Any], vocab: Optional[int], name: str) -> Shape:
    v = int(spec.get("vocab_size") or vocab or 50257)
    if "n_embd" in spec or "n_layer" in spec:          # GPT2Config arguments (transformers' defaults otherwise)
        d = int(spec.get("n_embd", 768))
        return Shape(name, int(spec.get("n_layer", 12)), d, int(spec.get("n_inner") or 4 * d),
                     int(spec.get("n_head", 12)), int(spec.get("n_head", 12)), v,
                     n_positions=int(spec.get("n_positions", 1024)))
    d = int(spec.get("hidden_size", 4096))                # LlamaConfig arguments (and the ArmoRM stand-in)
    heads = int(spec.get("num_attention_heads", 32))
    extra = 0
    if "gating_hidden_dim" in spec:                       # the stand-in's regression + gating heads
        g = int(spec["gating_hidden_dim"])
        extra = d * 19 + d * g + g * g * int(spec.get("gating_n_hidden", 1)) + g * 19
    return Shape(name, int(spec.get("num_hidden_layers", 32)), d, int(spec.get("intermediate_size", 11008)), heads,
                 int(spec.get("num_key_value_heads", heads)), v, tied=bool(spec.get("tie_word_embeddings", False)),
                 family="llama", extra_params=extra)
