"""Supervised fine-tuning of a policy on a corpus of texts (causal LM; emotion: max length 68).

``--data`` is a directory with ``train`` and ``validation`` splits (.jsonl/.csv/.parquet) holding a
``text`` column: the emotion data stage's directory, or any experiment's SFT corpus.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.core.train.sft --data DIR --tokenizer DIR \
        --model gpt2 --out sft/
"""
from __future__ import annotations

import logging
import math

import torch

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import read_texts
from workflow_scripts.core.models import build_causal_lm, load_tokenizer
from workflow_scripts.core.train.job import SupervisedJob, model_spec, supervised_parser

logger = logging.getLogger("sft")


def parse_args(argv=None):
    p = supervised_parser(__doc__, data="--data", data_help="directory with train / validation splits of texts "
                          "(column 'text')", metrics="metrics JSON (train loss, validation perplexity)", epochs=1,
                          max_length=68)
    p.add_argument("--max-train-examples", type=int, default=0, help="0 = all")
    return p.parse_args(argv)


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
    args = parse_args(argv)
    job = SupervisedJob.start(args, logger, name="sft")
    with job.phase("tokenizer_and_data"):
        tokenizer = load_tokenizer(args.tokenizer)
        train = read_texts(args.data, "train")
        if args.max_train_examples:
            train = train[: args.max_train_examples]
        valid = read_texts(args.data, "validation")
        train_rows = tokenize_texts(tokenizer, train, args.max_length)
        valid_rows = tokenize_texts(tokenizer, valid, args.max_length)
    with job.phase("model_load"):
        model = build_causal_lm(model_spec(args.model), tokenizer, seed=args.seed)
    job.build_engine(model, len(train_rows))
    split = job.split
    if job.rank == 0:
        logger.info("SFT on %d texts: world %d, micro %d x accum %d = global %d, %d steps, %s", len(train_rows),
                    job.world, split.micro_batch, split.grad_accum, split.global_batch, job.total_steps, job.precision)
    pad = tokenizer.pad_token_id
    history = job.train(len(train_rows), lambda idx: lm_batch([train_rows[i] for i in idx], pad),
                        lambda eng, b: eng(**b).loss, desc="sft", scalars="sft")

    def token_nll(model, b):
        out = model(**b)
        n = int((b["labels"][:, 1:] != -100).sum())
        return float(out.loss) * n, n
    with job.phase("evaluation"):
        parts = job.evaluate(len(valid_rows), lambda idx: lm_batch([valid_rows[i] for i in idx], pad), token_nll, 64)
        valid_nll = sum(p[0] for p in parts) / max(1, sum(p[1] for p in parts))
    metrics = {"train_loss_final": history[-1]["loss"], "steps": len(history),
               "validation_nll": valid_nll, "validation_perplexity": math.exp(valid_nll)}
    job.finish(tokenizer, metrics, title="SFT", summary=f"validation perplexity {math.exp(valid_nll):.2f}")


if __name__ == "__main__":
    run(main)
