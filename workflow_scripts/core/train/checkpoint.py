"""Resumable training: DeepSpeed checkpoints that survive SIGKILL, SIGTERM and corruption.

Layout, inside the job's own directory (``<job>/checkpoints/``)::

    step-00000040/            one DeepSpeed checkpoint (model, optimizer, scheduler) + client state
        manifest.json         size and sha256 of every file, written last
    step-00000060/

A checkpoint is written under ``.incoming/`` and renamed into place only when every rank has
finished and the manifest is written, so a crash mid-write never leaves a plausible
checkpoint behind. Only the last ``keep`` are kept. On start, the newest checkpoint whose
manifest verifies (and whose fingerprint matches this job's arguments) is loaded; a
corrupted one is skipped with a warning and the previous one used.

SIGTERM (what SLURM sends before killing a job) sets a flag; at the next step boundary all
ranks agree on it, save a checkpoint and exit with status :data:`EXIT_PREEMPTED`.

Loading uses ``torch.load(..., weights_only=True)``, with the few DeepSpeed state classes a ZeRO
checkpoint references as the only allow-listed globals.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist

from workflow_scripts.core.io import write_json_atomic

logger = logging.getLogger(__name__)

#: Exit status after a checkpoint-on-signal (128 + SIGTERM, what a killed shell job reports).
EXIT_PREEMPTED = 143
#: Test hook: ``kill@N`` (SIGKILL) or ``term@N`` (SIGTERM) sent to this process after step N
#: completes and is checkpointed if due. Used by the fault-injection tests only.
FAULT_ENV = "DRO_REBEL_FAULT"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class SafeTorchCheckpointEngine:
    """DeepSpeed's torch checkpoint engine, loading with ``weights_only=True``."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def load(self, path, map_location=None):
        with torch.serialization.safe_globals(deepspeed_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)


def deepspeed_safe_globals() -> list:
    """The DeepSpeed classes a ZeRO checkpoint references (found with
    ``torch.serialization.get_unsafe_globals_in_checkpoint``): plain state holders, no code."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(directory: Path, fingerprint: str, step: int) -> None:
    files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(directory.iterdir()) if p.is_file()}
    write_json_atomic(directory / "manifest.json", {"step": step, "fingerprint": fingerprint, "files": files})


def verify(directory: Path, fingerprint: str) -> Optional[str]:
    """``None`` if the checkpoint is intact and belongs to this job, else the reason it is not."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        return "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return f"unreadable manifest ({error})"
    if manifest.get("fingerprint") != fingerprint:
        return "written by a job with different arguments"
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.exists():
            return f"missing {name}"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']} (truncated?)"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def fingerprint_of(args: dict) -> str:
    """What makes two jobs the same job: every argument except where outputs go."""
    relevant = {k: v for k, v in sorted(args.items()) if k not in ("out", "metrics", "run_info", "checkpoint_dir")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Checkpointer:
    """Periodic, atomic, verified DeepSpeed checkpoints plus checkpoint-on-SIGTERM."""

    def __init__(self, engine, directory: str | os.PathLike, *, every: int, keep: int, fingerprint: str, rank: int):
        self.engine = engine
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = max(1, int(keep))
        self.fingerprint = fingerprint
        self.rank = rank
        self._terminate = False
        engine.checkpoint_engine = SafeTorchCheckpointEngine(engine.checkpoint_engine)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._fault = self._parse_fault(os.environ.get(FAULT_ENV, ""))

    # ------------------------------------------------------------------ signals
    def _on_sigterm(self, signum, frame):
        # Only set a flag: checkpointing inside a signal handler could interrupt a collective.
        self._terminate = True

    def _all_agree_to_stop(self) -> bool:
        flag = torch.tensor([1.0 if self._terminate else 0.0])
        if dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    @staticmethod
    def _parse_fault(spec: str):
        match = re.fullmatch(r"(kill|term)@(\d+)", spec.strip())
        return (match.group(1), int(match.group(2))) if match else None

    # ------------------------------------------------------------------ save / resume
    def _steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _STEP_DIR.match(p.name)))

    def save(self, step: int, client_state: dict) -> None:
        """Collective: every rank calls it. Atomic: renamed into place once complete."""
        tag = f"step-{step:08d}"
        incoming = self.directory / ".incoming"
        if self.rank == 0:
            shutil.rmtree(incoming / tag, ignore_errors=True)
            incoming.mkdir(parents=True, exist_ok=True)
        self._barrier()
        self.engine.save_checkpoint(str(incoming), tag=tag, client_state=client_state, save_latest=False)
        self._barrier()
        if self.rank == 0:
            _write_manifest(incoming / tag, self.fingerprint, step)
            final = self.directory / tag
            shutil.rmtree(final, ignore_errors=True)
            os.replace(incoming / tag, final)
            for old in self._steps()[:-self.keep]:
                shutil.rmtree(self.directory / f"step-{old:08d}", ignore_errors=True)
            logger.info("checkpoint %s saved (keeping the last %d)", final, self.keep)
        self._barrier()

    def resume(self) -> Optional[dict]:
        """Load the newest intact checkpoint of this job; returns its client state, or None."""
        for step in reversed(self._steps()):
            path = self.directory / f"step-{step:08d}"
            problem = verify(path, self.fingerprint)
            if problem is None:
                try:
                    _, client_state = self.engine.load_checkpoint(
                        str(self.directory), tag=path.name, load_optimizer_states=True, load_lr_scheduler_states=True)
                except Exception as error:   # a checkpoint that verifies but does not load: try an older one
                    problem = f"failed to load ({type(error).__name__}: {error})"
                else:
                    if client_state is None:
                        problem = "failed to load"
                    else:
                        logger.info("resumed from %s", path)
                        return client_state
            logger.warning("skipping checkpoint %s: %s; trying the previous one", path, problem)
        return None

    def step_done(self, step: int, state: Callable[[], dict]) -> None:
        """Call after optimizer step ``step`` (1-based count of completed steps).

        Saves every ``every`` steps, and on SIGTERM saves then exits with EXIT_PREEMPTED.
        """
        stop = self._all_agree_to_stop()
        if stop or (self.every > 0 and step % self.every == 0):
            self.save(step, state())
        if stop:
            logger.warning("SIGTERM: checkpoint at step %d saved; exiting with status %d for a retry",
                           step, EXIT_PREEMPTED)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_PREEMPTED)
        if self._fault and self._fault[1] == step:
            kind = self._fault[0]
            logger.warning("fault injection (%s=%s@%d): sending SIG%s to myself", FAULT_ENV, kind, step, kind.upper())
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL if kind == "kill" else signal.SIGTERM)
            if kind == "term":
                # The handler has set the flag: take the SIGTERM path at this boundary.
                self.step_done(step, state)

    def finish(self) -> None:
        """Training completed and outputs are written: checkpoints are no longer needed."""
        self._barrier()
        if self.rank == 0:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
