"""Emotion reward model: multi-label classifier over five emotions (sigmoid + BCE).

Following the WDPO protocol, "surprise" is dropped (texts labelled surprise are removed) and
multi-label examples are built by concatenating 1 to ``max_concat`` random texts and taking
the union of their labels. The sigmoid outputs are the objective rewards in (0, 1).

A concatenation never exceeds ``max_length`` tokens: texts are added while they fit, and a text
longer than ``max_length`` on its own is left out, so a label is never kept for a text that
truncation cut off. ``--p-single`` makes that share of the examples single texts (the other
examples draw 2..max_concat texts).

Metrics (``--metrics``), on the validation and the test split: single-text 5-class accuracy
(argmax of the five outputs against the text's label) and per-label one-vs-rest ROC-AUC on single
texts, plus the multi-label exact-match and per-label accuracy and ROC-AUC on concatenated
examples; ``curve`` is the learning curve (training loss, validation accuracy and mean AUC every
``--eval-every`` steps).

    torchrun --standalone --nproc_per_node N -m workflow_scripts.emotion.train_reward --data DIR \
        --tokenizer DIR --model gpt2 --out reward_model/ --metrics metrics.json --run-info run_info.json
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.stats import rankdata

from workflow_scripts.core.cli import run
from workflow_scripts.core.models import build_sequence_classifier, load_tokenizer
from workflow_scripts.core.train.job import SupervisedJob, model_spec, supervised_parser
from workflow_scripts.emotion.data import EMOTION_LABELS, load_emotion_split
from workflow_scripts.emotion.reward import REWARD_EMOTIONS

logger = logging.getLogger("reward_model")

#: Column of each reward emotion; dataset labels outside it (surprise) are dropped.
COLUMN = {name: j for j, name in enumerate(REWARD_EMOTIONS)}


def parse_args(argv=None):
    p = supervised_parser(__doc__, data="--data", data_help="emotion dataset: hub id or local directory",
                          metrics="metrics JSON: single-text and multi-label accuracy, ROC-AUC, curve", epochs=8,
                          max_length=200)
    p.add_argument("--max-concat", type=int, default=3, help="texts concatenated per example: 1..max_concat")
    p.add_argument("--p-single", type=float, default=None,
                   help="share of single-text examples (default: k uniform in 1..max_concat, as the WDPO protocol)")
    p.add_argument("--eval-every", type=int, default=0, help="learning-curve point every N steps (0: at the end only)")
    return p.parse_args(argv)


def reward_rows(texts, labels) -> tuple[list[str], np.ndarray]:
    """The texts whose label is a reward emotion, with that label's column (surprise dropped)."""
    keep = [i for i, y in enumerate(labels) if EMOTION_LABELS[y] in COLUMN]
    return [texts[i] for i in keep], np.array([COLUMN[EMOTION_LABELS[labels[i]]] for i in keep], dtype=np.int64)


def token_lengths(tokenizer, texts) -> np.ndarray:
    """(n, 2) token counts of each text alone and after a space (its form when it is not the first one:
    byte-level BPE attaches the space to the following word, so a concatenation's length is the sum)."""
    alone = tokenizer(list(texts))["input_ids"]
    spaced = tokenizer([" " + t for t in texts])["input_ids"]
    return np.array([[len(a), len(b)] for a, b in zip(alone, spaced)], dtype=np.int64).reshape(-1, 2)


def multilabel_examples(texts, columns, lengths, max_concat: int, max_length: int, rng: np.random.Generator,
                        p_single: float | None = None, n_examples: int | None = None):
    """Concatenations of 1..max_concat random texts that fit in ``max_length`` tokens; targets = union of labels.

    ``lengths`` is :func:`token_lengths`: a text is added only while the concatenation fits, and texts
    longer than ``max_length`` are never used, so no kept label belongs to a truncated text.
    Returns (texts, targets (n, 5) float32, texts per example).
    """
    lengths = np.asarray(lengths)
    pool = np.flatnonzero(lengths.max(axis=1) <= max_length)
    if len(pool) == 0:
        raise ValueError(f"no text fits in max_length {max_length} tokens.")
    n = len(texts) if n_examples is None else n_examples
    out_texts, counts = [], []
    targets = np.zeros((n, len(REWARD_EMOTIONS)), dtype=np.float32)
    for row in range(n):
        if p_single is None:
            k = int(rng.integers(1, max_concat + 1))
        else:
            k = 1 if rng.random() < p_single or max_concat == 1 else int(rng.integers(2, max_concat + 1))
        chosen = rng.choice(pool, size=min(k, len(pool)), replace=False)
        used, total = [], 0
        for i in chosen:
            size = lengths[i, 1 if used else 0]
            if total + size <= max_length:
                used.append(int(i))
                total += size
        out_texts.append(" ".join(texts[i] for i in used))
        counts.append(len(used))
        targets[row, columns[used]] = 1.0
    return out_texts, targets, np.asarray(counts)


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (tied scores share their average rank); NaN if a class is absent."""
    pos, neg = scores[targets == 1], scores[targets == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]), method="average")
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def single_text_metrics(probs: np.ndarray, columns: np.ndarray) -> dict:
    """5-class accuracy of the argmax, and one-vs-rest ROC-AUC per emotion, on single texts."""
    return {"single_accuracy": float((probs.argmax(axis=1) == columns).mean()),
            "single_roc_auc": {name: roc_auc(probs[:, j], (columns == j).astype(int))
                               for j, name in enumerate(REWARD_EMOTIONS)}}


def multilabel_metrics(probs: np.ndarray, targets: np.ndarray) -> dict:
    predictions = (probs > 0.5).astype(np.float32)
    return {"exact_match_accuracy": float((predictions == targets).all(axis=1).mean()),
            "label_accuracy": float((predictions == targets).mean()),
            "roc_auc": {name: roc_auc(probs[:, j], targets[:, j]) for j, name in enumerate(REWARD_EMOTIONS)}}


def reward_examples(args, tokenizer):
    """Training examples (1-3 concatenated texts, multi-hot labels), how many training texts are too long
    to be used, and the held-out splits (single texts and concatenations) for the metrics."""
    def prepared(name):
        data = load_emotion_split(args.data, name)
        texts, columns = reward_rows(list(data["text"]), list(data["label"]))
        return texts, columns, token_lengths(tokenizer, texts)

    train_texts, train_cols, train_lengths = prepared("train")
    dropped = int((train_lengths.max(axis=1) > args.max_length).sum())
    train_x, train_y, _ = multilabel_examples(train_texts, train_cols, train_lengths, args.max_concat, args.max_length,
                                              np.random.default_rng(args.seed), args.p_single)
    held_out = {}
    for name in ("validation", "test"):
        texts, columns, lengths = prepared(name)
        concat_x, concat_y, _ = multilabel_examples(texts, columns, lengths, args.max_concat, args.max_length,
                                                    np.random.default_rng([args.seed, 7]))
        held_out[name] = {"single": (texts, columns), "concat": (concat_x, concat_y)}
    return train_x, train_y, dropped, held_out


def main(argv=None):
    args = parse_args(argv)
    job = SupervisedJob.start(args, logger, name="reward_model")
    with job.phase("tokenizer_and_data"):
        tokenizer = load_tokenizer(args.tokenizer)
        train_x, train_y, dropped, held_out = reward_examples(args, tokenizer)

    def encode(texts, idx):
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                        max_length=args.max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def make_batch(idx):
        return {**encode(train_x, idx), "labels": torch.from_numpy(train_y[idx])}

    with job.phase("model_load"):
        model = build_sequence_classifier(model_spec(args.model), tokenizer, len(REWARD_EMOTIONS), seed=args.seed)
        model.config.id2label = dict(enumerate(REWARD_EMOTIONS))
        model.config.label2id = {name: i for i, name in enumerate(REWARD_EMOTIONS)}
    job.build_engine(model, len(train_x))
    if job.rank == 0:
        logger.info("reward model: %d training examples (%d texts longer than %d tokens left out), %d steps, %s",
                    len(train_x), dropped, args.max_length, job.total_steps, job.precision)

    def probabilities(texts):
        return np.concatenate(job.evaluate(len(texts), lambda idx: encode(texts, idx),
                                           lambda m, b: torch.sigmoid(m(**b).logits.float()).cpu().numpy(), 128))

    def curve_point() -> dict:
        texts, columns = held_out["validation"]["single"]
        m = single_text_metrics(probabilities(texts), columns)
        return {"validation_single_accuracy": m["single_accuracy"],
                "validation_single_auc_mean": float(np.nanmean(list(m["single_roc_auc"].values())))}

    history = job.train(len(train_x), make_batch, lambda eng, b: eng(**b).loss, desc="reward model",
                        scalars="reward_model", evaluate=curve_point, eval_every=args.eval_every or job.total_steps)
    with job.phase("evaluation"):
        metrics = {"train_examples": len(train_x), "train_texts_too_long": dropped, "steps": len(history),
                   "train_loss_final": history[-1]["loss"]}
        for name, sets in held_out.items():
            single = single_text_metrics(probabilities(sets["single"][0]), sets["single"][1])
            multi = multilabel_metrics(probabilities(sets["concat"][0]), sets["concat"][1])
            metrics.update({f"{name}_{k}": v for k, v in {**single, **multi}.items()})
            metrics[f"{name}_single_texts"] = len(sets["single"][0])
            metrics[f"{name}_examples"] = len(sets["concat"][0])
        metrics["curve"] = [{k: row[k] for k in ("step", "loss", "validation_single_accuracy",
                                                 "validation_single_auc_mean")}
                            for row in history if "validation_single_accuracy" in row]
    auc = {k: round(v, 3) for k, v in metrics["test_single_roc_auc"].items()}
    job.finish(tokenizer, metrics, title="reward model",
               summary=f"test single-text accuracy {metrics['test_single_accuracy']:.3f}, AUC {auc}; "
                       f"multi-label exact match {metrics['test_exact_match_accuracy']:.3f}")


if __name__ == "__main__":
    run(main)
