"""Emotion reward model: multi-label classifier over five emotions (sigmoid + BCE).

Following the WDPO protocol, "surprise" is dropped (texts labelled surprise are removed) and
multi-label examples are built by concatenating 1 to ``max_concat`` random texts and taking
the union of their labels. The sigmoid outputs are the objective rewards in (0, 1).

    torchrun --standalone --nproc_per_node N -m workflow_scripts.train.reward_model --data DIR \
        --tokenizer DIR --model gpt2 --out reward_model/ --metrics metrics.json --run-info run_info.json
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from scipy.stats import rankdata

from ..common.io import setup_logging, write_json_atomic
from ..common.runinfo import seed_everything, write_run_info
from ..data.emotion import EMOTION_LABELS, load_emotion_split
from ..models.build import build_sequence_classifier, load_tokenizer
from ..models.emotion_reward import REWARD_EMOTIONS
from .engine import add_training_args, init_distributed, make_engine, resolve_precision, run_info_fields, save_model, split_batch
from .sft import make_checkpointer, model_spec
from .supervised import evaluate_batches, steps_per_epoch, train_supervised

logger = logging.getLogger("reward_model")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="emotion dataset: hub id or local directory")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--model", required=True, help="hub id / directory, or a JSON object of GPT2Config arguments")
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", required=True, help="metrics JSON: test accuracy and per-label ROC-AUC")
    p.add_argument("--max-concat", type=int, default=3, help="texts concatenated per example: 1..max_concat")
    add_training_args(p, epochs=8, max_length=200)
    return p.parse_args(argv)


def multilabel_examples(texts, labels, max_concat: int, rng: np.random.Generator):
    """Concatenate 1..max_concat random texts (drawn without surprise); targets = union of labels."""
    keep = [i for i, y in enumerate(labels) if EMOTION_LABELS[y] in REWARD_EMOTIONS]
    column = {name: j for j, name in enumerate(REWARD_EMOTIONS)}
    out_texts, out_targets = [], np.zeros((len(keep), len(REWARD_EMOTIONS)), dtype=np.float32)
    for row in range(len(keep)):
        k = int(rng.integers(1, max_concat + 1))
        chosen = rng.choice(keep, size=k, replace=False) if len(keep) >= k else rng.choice(keep, size=k)
        out_texts.append(" ".join(texts[i] for i in chosen))
        for i in chosen:
            out_targets[row, column[EMOTION_LABELS[labels[i]]]] = 1.0
    return out_texts, out_targets


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (tied scores share their average rank); NaN if a class is absent."""
    pos, neg = scores[targets == 1], scores[targets == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]), method="average")
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    started = time.time()
    rank, world, device = init_distributed()
    split = split_batch(args.global_batch, args.micro_batch, world)
    precision = resolve_precision(args.precision)
    seed_everything(args.seed)
    tokenizer = load_tokenizer(args.tokenizer)
    rng = np.random.default_rng(args.seed)
    train = load_emotion_split(args.data, "train")
    test = load_emotion_split(args.data, "test")
    train_x, train_y = multilabel_examples(list(train["text"]), list(train["label"]), args.max_concat, rng)
    test_x, test_y = multilabel_examples(list(test["text"]), list(test["label"]), args.max_concat, rng)

    def make_batch(texts, targets, idx):
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                        max_length=args.max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "labels": torch.from_numpy(targets[idx])}

    model = build_sequence_classifier(model_spec(args.model), tokenizer, len(REWARD_EMOTIONS), seed=args.seed)
    model.config.id2label = dict(enumerate(REWARD_EMOTIONS))
    model.config.label2id = {name: i for i, name in enumerate(REWARD_EMOTIONS)}
    total = steps_per_epoch(len(train_x), split) * args.epochs
    engine, ds_config = make_engine(model, split, lr=args.lr, total_steps=total, warmup_ratio=args.warmup_ratio,
                                    zero_stage=args.zero_stage, precision=precision)
    checkpointer = make_checkpointer(engine, args, world, rank)
    history = train_supervised(engine, len(train_x), lambda idx: make_batch(train_x, train_y, idx),
                               lambda eng, b: eng(**b).loss, split, args.epochs, args.seed, rank, device,
                               desc="reward model", checkpointer=checkpointer)
    probs = np.concatenate(evaluate_batches(
        engine.module, len(test_x), lambda idx: make_batch(test_x, test_y, idx),
        lambda m, b: torch.sigmoid(m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()).cpu().numpy(),
        64, device))
    predictions = (probs > 0.5).astype(np.float32)
    metrics = {
        "test_examples": len(test_x),
        "test_exact_match_accuracy": float((predictions == test_y).all(axis=1).mean()),
        "test_label_accuracy": float((predictions == test_y).mean()),
        "test_roc_auc": {name: roc_auc(probs[:, j], test_y[:, j]) for j, name in enumerate(REWARD_EMOTIONS)},
        "train_loss_final": history[-1]["loss"],
        "steps": len(history),
    }
    save_model(engine, tokenizer, args.out, rank)
    if rank == 0:
        write_json_atomic(args.metrics, metrics)
        write_run_info(args.run_info, job="reward_model", seed=args.seed,
                       **run_info_fields(split, ds_config, precision), deepspeed_config=ds_config, args=vars(args),
                       wall_seconds=round(time.time() - started, 2))
        logger.info("reward model done in %.1fs: exact-match accuracy %.3f, label accuracy %.3f, AUC %s",
                    time.time() - started, metrics["test_exact_match_accuracy"], metrics["test_label_accuracy"],
                    {k: round(v, 3) for k, v in metrics["test_roc_auc"].items()})
    checkpointer.finish()


if __name__ == "__main__":
    main()
