"""Which token ids end a completion, and the cut after the first of them (the same for every backend)."""
from __future__ import annotations

import os
from typing import Sequence


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a turn: the generation config's (Llama-3 instruct models list several,
    e.g. ``<|end_of_text|>``, ``<|eom_id|>``, ``<|eot_id|>``) plus the tokenizer's EOS."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    ids.append(tokenizer.eos_token_id)
    return sorted({int(i) for i in ids if i is not None})


def stop_ids_of(model_or_path, tokenizer) -> list[int]:
    """Every id that ends a turn (:func:`stop_token_ids`), from a model or from a model directory's
    generation config (the vLLM backend never loads the HF model)."""
    if not isinstance(model_or_path, (str, os.PathLike)):
        return stop_token_ids(model_or_path, tokenizer)
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(model_or_path)
    except (OSError, ValueError):
        config = None

    class _Holder:
        generation_config = config

    return stop_token_ids(_Holder(), tokenizer)


def cut_at_stop(row: Sequence[int], stops) -> list[int]:
    """A completion up to and including its first stop id (or all of it)."""
    row = list(row)
    end = next((i for i, token in enumerate(row) if token in stops), None)
    return row if end is None else row[: end + 1]
