"""The completions frame: sampled responses, one row per (prompt, sample), as the chat experiments
(ArmoRM, HH) write them for pair building and evaluation.

Rows are prompt-major (prompt 0's samples 0..n-1, then prompt 1's, ...), the order every sampler
returns. Columns: the prompt's key columns (``keys``: e.g. ``prompt_idx``, ``subset``), ``sample,
prompt, prompt_ids, response_ids, response, n_tokens``, then the experiment's own columns (``extra``:
e.g. whether a response ended with a stop token).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd


def completion_frame(prompts: Sequence[str], prompt_ids: Sequence[Sequence[int]],
                     response_ids: Sequence[Sequence[int]], responses: Sequence[str], n: int, *,
                     keys: Mapping[str, Sequence] | None = None, **extra) -> pd.DataFrame:
    """``n`` responses per prompt (``response_ids`` and their texts ``responses``, prompt-major) as one frame;
    ``keys`` hold one value per prompt, repeated for its samples; ``extra`` one value per response."""
    if len(response_ids) != n * len(prompts) or len(responses) != len(response_ids):
        raise ValueError(f"{len(prompts)} prompts x {n} samples, but {len(response_ids)} response ids and "
                         f"{len(responses)} texts.")
    # `keys` may be a DataFrame (its columns), whose truth value is ambiguous: test for None, never `keys or {}`.
    columns = {name: np.repeat(np.asarray(values), n) for name, values in ({} if keys is None else keys).items()}
    return pd.DataFrame({**columns,
                         "sample": np.tile(np.arange(n), len(prompts)),
                         "prompt": [p for p in prompts for _ in range(n)],
                         "prompt_ids": [p for p in prompt_ids for _ in range(n)],
                         "response_ids": list(response_ids),
                         "response": list(responses),
                         "n_tokens": [len(r) for r in response_ids],
                         **extra})
