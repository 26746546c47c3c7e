"""Runs the alignment entry point in-process for several variants and batch splits, under torchrun.

    torchrun --nproc_per_node W tests/align_driver.py --inputs DIR --out DIR --config NAME:MICRO:PRECISION ...

For every config and variant: a fresh Aligner (fresh DeepSpeed engine) trains a few steps on the
tiny pairs; rank 0 saves the final parameters and the history to ``<out>/<config>/<variant>.pt``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_scripts.core.train.align import Aligner, history_frame, parse_args  # noqa: E402

VARIANTS = {"rebel": 0, "w-rebel": 1.0, "kl-rebel": 0.5, "chi2-rebel": 0.5,
            "dpo": 0, "wdpo": 1.0, "kl-dpo": 0.5, "chi2-dpo": 0.5}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", nargs="+", required=True, help="name:micro_batch:precision")
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=3)
    a = p.parse_args()
    inputs = Path(a.inputs)
    for spec in a.config:
        name, micro, precision = spec.split(":")
        for variant, radius in VARIANTS.items():
            args = parse_args([
                "--pairs", str(inputs / "pairs.parquet"), "--policy", str(inputs / "policy"),
                "--out", str(Path(a.out) / name / variant), "--variant", variant, "--radius", str(radius),
                "--eta", "1", "--beta", "0.5", "--seed", "0", "--iterations", str(a.iterations),
                "--global-batch", str(a.global_batch), "--micro-batch", micro, "--lr", "1e-3",
                "--warmup-ratio", "0", "--max-length", "24", "--precision", precision])
            aligner = Aligner(args)
            history = history_frame(aligner.train())
            if aligner.rank == 0:
                (Path(a.out) / name).mkdir(parents=True, exist_ok=True)
                params = {k: v.detach().clone() for k, v in aligner.engine.module.state_dict().items()}
                torch.save({"params": params, "history": history.to_dict("list"),
                            "world": aligner.world, "grad_accum": aligner.split.grad_accum},
                           Path(a.out) / name / f"{variant}.pt")
            del aligner


if __name__ == "__main__":
    main()
