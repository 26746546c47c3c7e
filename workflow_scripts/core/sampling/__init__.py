"""Generation backends: one small interface over HF ``generate`` and the vLLM offline engine.

Every stage that samples text (pairs, completions, evaluation, the online regime) asks
:func:`make_sampler` (or :func:`sampler_from_args` in a CLI) for an object with

    sampler.sample(prompt_ids, *, n, temperature, top_p, top_k, max_new_tokens, seed) -> list[list[int]]

returning ``len(prompt_ids) * n`` completions (token ids without the prompt, cut after the first stop
id), prompt-major, in the order of ``prompt_ids``; sample ``s`` of prompt ``i`` is seeded on its own,
so a row does not depend on the batch it lands in. The two backends draw different random numbers: the
same seed gives different (equally distributed) completions.

Where things live:

- :mod:`.seeds`: per-sample seeds (why per sample) and the counter-based uniforms of the hf draws;
- :mod:`.stops`: which ids end a completion (model, tokenizer) and the cut after the first;
- :mod:`.protocol`: the :class:`~.protocol.Sampler` interface and its tokens/s bookkeeping;
- :mod:`.memory`: bytes per generated row, which size the hf sampler's automatic GPU batch;
- :mod:`.hf`: the ``hf`` backend (left padding, the seeded logits processor, :class:`HFSampler`);
- :mod:`.vllm`: the ``vllm`` backend (:class:`~.vllm.VLLMSampler`; vLLM imported only when built);
- :mod:`.backends`: the backend names and :func:`make_sampler`;
- :mod:`.cli`: the sampling and ``generation:`` flags and :func:`sampler_from_args`.

Nothing here computes training log-probs: reference and anchor log-probs always come from the
training forward (:mod:`workflow_scripts.core.logprobs`), never from a generation engine.
This package needs only torch and transformers (it also runs in a vLLM-only environment).
"""
from workflow_scripts.core.sampling.backends import make_sampler
from workflow_scripts.core.sampling.cli import (CAPACITY_ARGS, add_generation_args, add_sampling_args,
                                                sampler_from_args)
from workflow_scripts.core.sampling.hf import HFSampler, RowSeededSampling, left_pad
from workflow_scripts.core.sampling.memory import row_bytes
from workflow_scripts.core.sampling.seeds import sample_seed
from workflow_scripts.core.sampling.stops import stop_token_ids
from workflow_scripts.core.sampling.vllm import VLLM_MISSING

__all__ = ["CAPACITY_ARGS", "HFSampler", "RowSeededSampling", "VLLM_MISSING", "add_generation_args",
           "add_sampling_args", "left_pad", "make_sampler", "row_bytes", "sample_seed", "sampler_from_args",
           "stop_token_ids"]
