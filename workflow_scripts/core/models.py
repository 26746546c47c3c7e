"""Build models from a config (mini preset, random init) or load them by hub id / path (paper).

A *model spec* in config is either a string (a hub id such as ``gpt2`` or a local
directory) or a mapping of config arguments, which builds a model with random weights: GPT-2
by default (``GPT2Config``: ``n_layer``, ``n_embd``, ...), or another architecture named by
``architecture`` (``llama``, ``qwen2``: that model type's config arguments). A ``vocab_size`` in
the mapping pads the embedding matrix to the real model's vocabulary (the paper-shapes preset
trains a small BPE but must have the real parameter count); the extra rows are never used.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Union

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    PreTrainedTokenizerBase,
)

logger = logging.getLogger(__name__)

ModelSpec = Union[str, Mapping[str, Any]]

#: Attention kernels. PyTorch's fused scaled-dot-product attention (flash / memory-efficient on GPU,
#: the flash kernel on CPU) is the fast one, but its backward cannot be differentiated again; the
#: Wasserstein penalty differentiates a gradient (grad of a grad through every layer), so only its
#: variants train with eager attention. Everything else (bases, KL, chi2, SFT, reward models, reference
#: and anchor log-probs, generation) runs the fused kernel.
FAST_ATTENTION = "sdpa"
DOUBLE_BACKWARD_ATTENTION = "eager"
ATTENTION_CHOICES = ("auto", FAST_ATTENTION, DOUBLE_BACKWARD_ATTENTION)


def training_attention(needs_double_backward: bool, setting: str = "auto") -> str:
    """The kernel a training job uses: ``auto`` picks eager only where a double backward is needed;
    forcing the fused kernel on such a job is refused (it would fail, or worse, silently drop terms)."""
    if setting not in ATTENTION_CHOICES:
        raise ValueError(f"attention must be one of {ATTENTION_CHOICES}, got {setting!r}.")
    if setting == "auto":
        return DOUBLE_BACKWARD_ATTENTION if needs_double_backward else FAST_ATTENTION
    if setting == FAST_ATTENTION and needs_double_backward:
        raise ValueError("attention 'sdpa' has no double backward, which the Wasserstein penalty needs; "
                         "use auto or eager for Wasserstein variants.")
    return setting


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _model_config(spec: Mapping[str, Any], tokenizer: PreTrainedTokenizerBase, **extra):
    """The config of a model built from a spec mapping (GPT-2 unless ``architecture`` says otherwise)."""
    from transformers import AutoConfig

    spec = dict(spec)
    architecture = spec.pop("architecture", "gpt2")
    vocab = max(len(tokenizer), int(spec.pop("vocab_size", 0)))
    ids = dict(bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if architecture == "gpt2":
        # GPT-2's GELU (tanh approximation) as torch's fused kernel: the same function as the pretrained
        # checkpoints' "gelu_new" (2e-7 apart), 2.5x faster forward + backward on a CPU (our choice).
        spec.setdefault("activation_function", "gelu_pytorch_tanh")
        return GPT2Config(vocab_size=vocab, **ids, **spec, **extra)
    try:
        return AutoConfig.for_model(architecture, vocab_size=vocab, **ids, **spec, **extra)
    except ValueError as error:
        raise ValueError(f"model spec: unknown architecture {architecture!r} ({error})") from None



def spec_parameter_count(spec: Mapping[str, Any], vocab_size: int = 512) -> int:
    """Parameters of the causal LM a spec mapping builds, counted on the meta device (no memory)."""
    class _Tok:
        bos_token_id = eos_token_id = 0
        pad_token_id = 0

        def __len__(self):
            return vocab_size

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(_model_config(spec, _Tok()))
    return sum(p.numel() for p in model.parameters())


def build_causal_lm(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, seed: int = 0,
                    attention: str = FAST_ATTENTION):
    """The policy to fine-tune: hub id / directory, or a random-init GPT-2 from a config mapping."""
    if isinstance(spec, str):
        model = AutoModelForCausalLM.from_pretrained(spec, attn_implementation=attention)
    else:
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(_model_config(spec, tokenizer), attn_implementation=attention)
        logger.info("built a %s policy from config %s (%.2fM parameters, random init)", model.config.model_type,
                    dict(spec), sum(p.numel() for p in model.parameters()) / 1e6)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def build_sequence_classifier(spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, num_labels: int,
                              problem_type: str = "multi_label_classification", seed: int = 0,
                              attention: str = FAST_ATTENTION):
    """A classifier with ``num_labels`` outputs on a GPT-2 trunk (hub id / directory / config mapping)."""
    if isinstance(spec, str):
        model = AutoModelForSequenceClassification.from_pretrained(
            spec, num_labels=num_labels, problem_type=problem_type, attn_implementation=attention)
    else:
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(
            _model_config(spec, tokenizer, num_labels=num_labels, problem_type=problem_type),
            attn_implementation=attention)
    # GPT-2 classifiers read the last non-pad token: they must know the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_causal_lm(path: str, dtype: torch.dtype = torch.float32, attention: str = FAST_ATTENTION):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attention)
    return model


# --------------------------------------------------------------------------- where and in what a job runs
def job_device() -> torch.device:
    """This process's device: its own GPU under a launcher (LOCAL_RANK), else the CPU. Every
    non-training job (sampling, scoring, evaluation) asks here, so they all agree."""
    import os

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """Inference dtype: ``bf16`` on a GPU that has it (fp32 elsewhere), ``fp32``, or ``auto`` (= bf16 where possible)."""
    if dtype not in ("bf16", "fp32", "auto"):
        raise ValueError(f"dtype must be bf16, fp32 or auto, got {dtype!r}.")
    on_gpu = torch.device(device).type == "cuda"
    if dtype in ("bf16", "auto") and on_gpu and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_sampling_policy(path: str, device: torch.device):
    """A policy for sampling (not training): bf16 on a GPU that has it, fp32 on CPU, in eval mode."""
    return load_causal_lm(path, dtype=resolve_dtype("auto", device)).to(device).eval()
