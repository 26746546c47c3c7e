"""Supervised fine-tuning of a policy on a corpus of texts (causal LM; emotion: max length 68).

``--data`` is a directory with ``train`` and ``validation`` splits (.jsonl/.csv/.parquet) holding a
``text`` column: the emotion data stage's directory, or any experiment's SFT corpus.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.core.train.sft --data DIR --tokenizer DIR \
        --model gpt2 --out sft/
"""
from __future__ import annotations

import argparse
from pathlib import Path
import json
import logging
import math
import time

import torch

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import read_texts, setup_logging, write_json_atomic
from workflow_scripts.core.runinfo import write_run_info
from workflow_scripts.core.models import build_causal_lm, load_tokenizer
from workflow_scripts.core.train.checkpoint import Checkpointer, fingerprint_of
from workflow_scripts.core.train.engine import (add_training_args, make_engine, run_info_fields, save_model,
                                               start_training_job)
from workflow_scripts.core.train.scalars import ScalarLog
from workflow_scripts.core.train.supervised import evaluate_batches, steps_per_epoch, train_supervised

logger = logging.getLogger("sft")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="directory with train / validation splits of texts (column 'text')")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory (from the tokenizer rule)")
    p.add_argument("--model", required=True, help="hub id / directory, or a JSON object of GPT2Config arguments")
    p.add_argument("--out", required=True, help="output directory (save_pretrained) ")
    p.add_argument("--metrics", required=True, help="metrics JSON (train loss, validation perplexity)")
    add_training_args(p, epochs=1, max_length=68)
    p.add_argument("--max-train-examples", type=int, default=0, help="0 = all")
    return p.parse_args(argv)


def model_spec(text: str):
    """A model spec on the command line: JSON object -> config mapping, anything else -> hub id / path."""
    text = text.strip()
    return json.loads(text) if text.startswith("{") else text


def make_checkpointer(engine, args, world: int, rank: int) -> Checkpointer:
    """Checkpoints beside the model directory (never inside a declared output)."""
    directory = args.checkpoint_dir or f"{args.out.rstrip('/')}.checkpoints"
    job = {k: v for k, v in vars(args).items() if not k.startswith("checkpoint_")}
    return Checkpointer(engine, directory, every=args.checkpoint_every, keep=args.checkpoint_keep,
                        fingerprint=fingerprint_of({**job, "world_size": world}), rank=rank)


def tokenize_texts(tokenizer, texts, max_length: int) -> list[list[int]]:
    # Each text ends with EOS so the policy learns to stop (GPT-2 tokenizers add none by themselves).
    return [tokenizer(t)["input_ids"][: max_length - 1] + [tokenizer.eos_token_id] for t in texts]


def lm_batch(rows: list[list[int]], pad_id: int) -> dict:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    job = start_training_job(args)
    rank, world, device, split, precision, started = (job.rank, job.world, job.device, job.split, job.precision,
                                                      job.started)
    clock = job.clock
    with clock.phase("tokenizer_and_data"):
        tokenizer = load_tokenizer(args.tokenizer)
        train = read_texts(args.data, "train")
        if args.max_train_examples:
            train = train[: args.max_train_examples]
        valid = read_texts(args.data, "validation")
        train_rows = tokenize_texts(tokenizer, train, args.max_length)
        valid_rows = tokenize_texts(tokenizer, valid, args.max_length)

    with clock.phase("model_load"):
        model = build_causal_lm(model_spec(args.model), tokenizer, seed=args.seed)
    total = steps_per_epoch(len(train_rows), split) * args.epochs
    with clock.phase("engine_init"):
        engine, ds_config = make_engine(model, split, lr=args.lr, total_steps=total, warmup_ratio=args.warmup_ratio,
                                        weight_decay=args.weight_decay, zero_stage=args.zero_stage,
                                        precision=precision,
                                        gradient_checkpointing=args.gradient_checkpointing == "true")
    if rank == 0:
        logger.info("SFT on %d texts: world %d, micro %d x accum %d = global %d, %d steps, %s",
                    len(train_rows), world, split.micro_batch, split.grad_accum, split.global_batch, total, precision)
    pad = tokenizer.pad_token_id
    checkpointer = make_checkpointer(engine, args, world, rank)
    scalars = ScalarLog(Path(args.metrics).parent / "tensorboard", rank, prefix="sft")
    with clock.phase("training"):
        history = train_supervised(
            engine, len(train_rows), lambda idx: lm_batch([train_rows[i] for i in idx], pad),
            lambda eng, b: eng(**b).loss, split, args.epochs, args.seed, rank, device, desc="sft",
            checkpointer=checkpointer, clock=clock, scalars=scalars)
        scalars.close()

    def token_nll(model, b):
        out = model(**b)
        n = int((b["labels"][:, 1:] != -100).sum())
        return float(out.loss) * n, n
    with clock.phase("evaluation"):
        parts = evaluate_batches(engine.module, len(valid_rows),
                                 lambda idx: lm_batch([valid_rows[i] for i in idx], pad), token_nll, 64, device)
    valid_nll = sum(p[0] for p in parts) / max(1, sum(p[1] for p in parts))
    with clock.phase("final_save"):
        save_model(engine, tokenizer, args.out, rank)
        if rank == 0:
            write_json_atomic(args.metrics, {"train_loss_final": history[-1]["loss"], "steps": len(history),
                                             "validation_nll": valid_nll, "validation_perplexity": math.exp(valid_nll)})
    if rank == 0:
        write_run_info(args.run_info, job="sft", seed=args.seed,
                       **run_info_fields(split, ds_config, precision), deepspeed_config=ds_config, args=vars(args),
                       wall_seconds=round(time.time() - started, 2), **clock.report())
        logger.info("SFT done in %.1fs: validation perplexity %.2f", time.time() - started, math.exp(valid_nll))
    checkpointer.finish()


if __name__ == "__main__":
    run(main)
