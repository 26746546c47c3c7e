"""Every training job's scalars as TensorBoard event files, next to its ``history.csv`` (optional).

``tensorboard --logdir results/<preset>`` then shows every run of a preset, each under its path (variant,
radius, eta / beta, seed). Written as the job goes (one point per optimizer step, rank 0 only); a resumed job
rewrites the steps it restored, so a run never shows two curves. TensorBoard is not needed to run the
workflow: without the ``tensorboard`` package the job logs once that it writes no event files.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

#: Columns of a history row that are not scalars to plot.
_NOT_SCALARS = {"step", "iteration", "update", "minibatch", "epoch"}


class ScalarLog:
    def __init__(self, directory, rank: int = 0, prefix: str = "train"):
        self.directory, self.prefix, self.writer = Path(directory), prefix, None
        if rank != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("tensorboard is not installed: no event files (pip install tensorboard); history.csv has it all")
            return
        shutil.rmtree(self.directory, ignore_errors=True)        # one run, one set of curves
        self.writer = SummaryWriter(log_dir=str(self.directory))

    def add(self, row: dict) -> None:
        if self.writer is None:
            return
        step = int(row["step"])
        for key, value in row.items():
            if key in _NOT_SCALARS or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if math.isfinite(float(value)):
                self.writer.add_scalar(f"{self.prefix}/{key}", float(value), step)

    def rewrite(self, rows) -> None:
        """After a resume: the restored steps again (the event files of the interrupted run are gone)."""
        for row in rows:
            self.add(row)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
