"""DeepSpeed engine setup shared by SFT, reward-model and alignment training.

One place decides: the process group (gloo on CPU, nccl on GPU), the precision (bf16 autocast
with fp32 master weights where the hardware has bf16, fp32 on CPU), the batch split (global
batch = micro batch x gradient accumulation x world size, derived, never hard-coded), and the
generated ZeRO config.
"""
from __future__ import annotations

import atexit
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from workflow_scripts.core.shards import leave_process_group

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSplit:
    global_batch: int
    micro_batch: int
    grad_accum: int
    world_size: int


def split_batch(global_batch: int, micro_batch: int, world_size: int) -> BatchSplit:
    """Derive gradient accumulation from the global batch; refuse splits that don't divide."""
    if global_batch <= 0 or micro_batch <= 0:
        raise ValueError(f"batch sizes must be positive, got global {global_batch}, micro {micro_batch}.")
    per_step = micro_batch * world_size
    if global_batch % per_step:
        raise ValueError(
            f"global batch {global_batch} is not divisible by micro batch {micro_batch} x world size {world_size}; "
            "choose sizes that divide.")
    return BatchSplit(global_batch, micro_batch, global_batch // per_step, world_size)


def init_distributed() -> tuple[int, int, torch.device]:
    """Join the process group started by the launcher (torchrun / deepspeed), or run alone.

    Returns ``(rank, world_size, device)``.
    """
    import deepspeed

    from workflow_scripts.core.startup import lean_deepspeed_startup

    lean_deepspeed_startup()
    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if "RANK" not in os.environ:
        # Started as a plain CLI, not by a launcher: a one-process group that rendezvouses through a
        # private file, not a TCP port. A port picked as "free" can be taken before the store binds it
        # (two jobs starting together on one node: EADDRINUSE); a file in our own temp dir cannot.
        # The env variables are still set so DeepSpeed does not go looking for MPI.
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT="0")
        if not dist.is_initialized():
            store_dir = tempfile.mkdtemp(prefix="dist-store-")
            atexit.register(shutil.rmtree, store_dir, ignore_errors=True)
            store = Path(store_dir) / "store"
            deepspeed.init_distributed(dist_backend=backend, init_method=f"file://{store}", rank=0, world_size=1)
    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend=backend)
    if dist.is_initialized():
        atexit.unregister(leave_process_group)             # once per process, however often a job calls this,
        atexit.register(leave_process_group)               # and after the store's rmtree (atexit runs LIFO)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return rank, world, device


def resolve_precision(precision: str) -> str:
    """``auto`` -> bf16 on GPUs that support it, fp32 otherwise (CPU).

    ``bf16`` means torch autocast to bfloat16 around every forward, with fp32 parameters and
    optimizer state (DeepSpeed's ``torch_autocast``); it is honoured on a CPU too (slow, but
    the same numerics, which the tests use).
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}.")
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str):
    """The forward context of a precision: bf16 autocast, or nothing for fp32. Every forward whose
    outputs are compared (policy, reference, anchor) runs inside the same one."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def deepspeed_config(split: BatchSplit, *, zero_stage: int = 2, precision: str = "fp32", grad_clip: float = 1.0,
                     steps_per_print: int = 10**9) -> dict:
    """The ZeRO config DeepSpeed receives, generated from the workflow config."""
    return {
        "train_batch_size": split.global_batch,
        "train_micro_batch_size_per_gpu": split.micro_batch,
        "gradient_accumulation_steps": split.grad_accum,
        "gradient_clipping": grad_clip,
        "zero_optimization": {
            "stage": zero_stage,
            "overlap_comm": torch.cuda.is_available(),
            "contiguous_gradients": True,
            "reduce_scatter": True,
        },
        # bf16 = autocast with fp32 master weights (DeepSpeed's torch_autocast): parameters stay fp32,
        # so a reference computed from the same module under the same autocast is bit-identical.
        "torch_autocast": {"enabled": precision == "bf16", "dtype": "bfloat16"},
        # torch's AdamW is passed as the client optimizer (DeepSpeed's fused Adam needs CUDA
        # kernels compiled at install time); ZeRO partitions it all the same.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": steps_per_print,
        "wall_clock_breakdown": False,
    }


def warmup_cosine(optimizer, total_steps: int, warmup_ratio: float):
    """Linear warmup then cosine decay to 0 (the WDPO paper's schedule)."""
    warmup = int(round(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_engine(model, split: BatchSplit, *, lr: float, total_steps: int, warmup_ratio: float = 0.0,
                weight_decay: float = 0.0, zero_stage: int = 2, precision: str = "fp32", grad_clip: float = 1.0,
                gradient_checkpointing: bool = False):
    """Wrap ``model`` in a DeepSpeed engine with AdamW and warmup+cosine. Returns ``(engine, ds_config)``."""
    import deepspeed

    if gradient_checkpointing:
        enable_gradient_checkpointing(model)

    config = deepspeed_config(split, zero_stage=zero_stage, precision=precision, grad_clip=grad_clip)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    scheduler = warmup_cosine(optimizer, total_steps, warmup_ratio)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    return engine, config


def run_info_fields(split: BatchSplit, config: dict, precision: str) -> dict:
    return {**asdict(split), "zero_stage": config["zero_optimization"]["stage"], "precision": precision,
            "parameter_dtype": "float32", "autocast": "bfloat16" if precision == "bf16" else None}


def disable_dropout(model) -> None:
    """Alignment losses compare log-probs across two forward passes: dropout would make them noisy."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def enable_gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward instead of storing them (1B at 2048 tokens).

    Non-reentrant checkpointing: it supports ``torch.autograd.grad`` with ``create_graph=True``, so the
    Wasserstein penalty's double backward still sees the whole graph (tested against the plain model).
    HF applies it in train mode only; the reference / anchor passes run in eval mode, unchanged.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):        # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:                                                       # e.g. 5.17 on the offline GPU node
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False


def save_model(engine_or_model, tokenizer, out_dir, rank: int) -> None:
    """Gather the full weights (ZeRO-2 keeps parameters whole on every rank) and save from rank 0."""
    from workflow_scripts.core.io import AtomicDirectory

    model = getattr(engine_or_model, "module", engine_or_model)
    if rank == 0:
        with AtomicDirectory(out_dir) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    if dist.is_initialized():
        dist.barrier()
