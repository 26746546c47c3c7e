"""A training job's start-up: what DeepSpeed builds or imports at start that our training never uses.

A CPU grid is hundreds of short jobs, and each pays its start-up before its first step. Two costs are
DeepSpeed's own and avoidable (measured on 2 cores, DeepSpeed 0.19.8, torch 2.13;
``workflow_scripts.tools.bench_startup`` prints them side by side):

- on a CPU it JIT-compiles a C++ op into torch's extension cache (25-30 s whenever another environment
  built it last, and concurrent jobs wait on the build's lock);
- ZeRO's optimizer check imports its Muon optimizer, whose ``@torch.compile`` decorators import inductor's
  compile machinery (about 1 s) for an optimizer we never use.

:func:`lean_deepspeed_startup` removes both without changing what is computed; it is tested
(tests/core/test_job_startup.py), so that a DeepSpeed upgrade that renames what is patched fails a test
instead of silently making every job compile again. What remains is the libraries' import: transformers
5.23 imports torch._dynamo on the import path of every model class (``masking_utils`` imports one of its
submodules; decorators in ``integrations`` and ``continuous_batching`` apply dynamo markers when loaded),
which no scoped change can avoid.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from typing import Iterator

import torch

#: Set to 1 to keep DeepSpeed's stock start-up (JIT build of the shm op, eager Muon import): a diagnostic
#: switch, and how ``workflow_scripts.tools.bench_startup`` measures what the lean start-up saves.
STOCK_STARTUP_ENV = "DRO_REBEL_STOCK_STARTUP"


def _lazy_compile(*args, **kwargs):
    """``torch.compile`` (as DeepSpeed's ``compiler.compile()`` returns it) compiling on the first call."""
    if args and callable(args[0]):
        return _lazy_compile(**kwargs)(args[0])

    def decorate(fn):
        compiled = None

        @functools.wraps(fn)
        def call(*a, **k):
            nonlocal compiled
            if compiled is None:
                compiled = torch.compile(fn, **kwargs)
            return compiled(*a, **k)

        return call

    return decorate


@contextlib.contextmanager
def _swapped(owner, name: str, replacement) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def lean_deepspeed_startup() -> None:
    """Skip the start-up work DeepSpeed does that our training never uses (idempotent).

    - **No C++ build at start-up.** On a CPU, DeepSpeed's comm backend JIT-compiles its shared-memory
      all-reduce op (``deepspeed_shm_comm``) into torch's extension cache, and again whenever another
      environment (a second venv, another node sharing the home directory) built it last; jobs that
      start together wait on the build's lock. The op serves only ``inference_all_reduce`` (DeepSpeed's
      tensor-parallel inference); training reduces through torch.distributed (gloo / nccl).
    - **No compiler import for an optimizer we do not use.** ZeRO's optimizer check imports DeepSpeed's
      Muon module, whose ``@torch.compile`` decorators import torch._dynamo and inductor. Imported here
      with compilation deferred to the first call (which never comes: we train with AdamW).
    """
    if os.environ.get(STOCK_STARTUP_ENV) == "1":      # DeepSpeed's own start-up, to compare (bench_startup)
        return
    # importlib, not `import deepspeed.comm.torch as ...`: deepspeed.comm's attribute `torch` is torch itself
    ds_comm_torch = importlib.import_module("deepspeed.comm.torch")
    ds_compiler = importlib.import_module("deepspeed.runtime.compiler")

    ds_comm_torch.build_shm_op = _no_shm_op
    if "deepspeed.runtime.zero.muon.muon_optimizer" in sys.modules:
        return
    with _swapped(ds_compiler, "compile", lambda: _lazy_compile):
        try:
            import deepspeed.runtime.zero.muon.muon_optimizer  # noqa: F401
        except ImportError:          # a DeepSpeed without Muon: nothing to defer
            pass


def _no_shm_op():
    return None
