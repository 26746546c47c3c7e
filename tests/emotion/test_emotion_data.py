"""Tests for the emotion data layer: generator, loaders and tokenizer stage."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.emotion import corpus as mini_emotion
from workflow_scripts.emotion.data import (
    EMOTION_LABELS,
    is_local_source,
    load_emotion_split,
    write_split,
)
from workflow_scripts.emotion.corpus import DEFAULT_LABEL_PROBS, generate_corpus
from workflow_scripts.core.tokenizer import prepare_tokenizer, train_bpe_tokenizer

N_LABELS = len(EMOTION_LABELS)


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(3000, 500, 1000, seed=0)


# --------------------------------------------------------------------------- baselines


def _naive_bayes_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Multinomial naive Bayes on word counts (add-one smoothing), numpy only."""
    vocab = {w: i for i, w in enumerate(sorted({w for t in train.text for w in t.split()}))}
    counts = np.ones((N_LABELS, len(vocab)))
    for text, y in zip(train.text, train.label):
        for w in text.split():
            counts[y, vocab[w]] += 1
    log_lik = np.log(counts / counts.sum(axis=1, keepdims=True))
    log_prior = np.log(np.bincount(train.label, minlength=N_LABELS) + 1.0)
    correct = 0
    for text, y in zip(test.text, test.label):
        idx = [vocab[w] for w in text.split() if w in vocab]
        correct += int(np.argmax(log_prior + log_lik[:, idx].sum(axis=1)) == y)
    return correct / len(test)


def _lookup_accuracy(train_keys, train_labels, test_keys, test_labels) -> float:
    """Predict the majority training label of each key (global majority if unseen)."""
    by_key: dict = defaultdict(Counter)
    for k, y in zip(train_keys, train_labels):
        by_key[k][y] += 1
    fallback = Counter(train_labels).most_common(1)[0][0]
    preds = [by_key[k].most_common(1)[0][0] if k in by_key else fallback for k in test_keys]
    return float(np.mean(np.asarray(preds) == np.asarray(test_labels)))


def _token_at(text: str, pos: int) -> str:
    words = text.split()
    return words[pos] if -len(words) <= pos < len(words) else "<none>"


# --------------------------------------------------------------------------- generator


def test_generator_is_deterministic_per_seed():
    a = generate_corpus(200, 50, 50, seed=7)
    b = generate_corpus(200, 50, 50, seed=7)
    c = generate_corpus(200, 50, 50, seed=8)
    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(a[split], b[split])
    assert not a["train"].equals(c["train"])


def test_generator_schema_and_lengths(corpus):
    assert {k: len(v) for k, v in corpus.items()} == {"train": 3000, "validation": 500, "test": 1000}
    for df in corpus.values():
        assert list(df.columns) == ["text", "label"]
        assert df["label"].dtype == np.int64
        assert set(df["label"]) == set(range(N_LABELS))
        n_words = df["text"].str.split().str.len()
        assert n_words.min() >= 6 and n_words.max() <= 25
        assert (df["text"] == df["text"].str.lower()).all()
        assert (df["text"].str.strip() != "").all()
    # varied, not a handful of repeated sentences
    assert corpus["train"]["text"].nunique() > 0.95 * len(corpus["train"])


@pytest.mark.parametrize("probs", [DEFAULT_LABEL_PROBS, (1, 1, 1, 1, 1, 1)])
def test_generator_label_frequencies_follow_config(probs):
    df = generate_corpus(20000, 1, 1, seed=3, label_probs=probs)["train"]
    freqs = np.bincount(df["label"], minlength=N_LABELS) / len(df)
    expected = np.asarray(probs, dtype=float) / np.sum(probs)
    np.testing.assert_allclose(freqs, expected, atol=0.015)


def test_default_label_mix_resembles_dair_ai_emotion():
    probs = np.asarray(DEFAULT_LABEL_PROBS)
    order = [EMOTION_LABELS[i] for i in np.argsort(-probs)]
    assert set(order[:2]) == {"joy", "sadness"}
    assert order[-1] == "surprise"


def test_labels_are_carried_by_words_not_positions(corpus):
    train, test = corpus["train"], corpus["test"]
    bow = _naive_bayes_accuracy(train, test)

    n_words = lambda df: [len(t.split()) for t in df.text]  # noqa: E731
    by_length = _lookup_accuracy(n_words(train), list(train.label), n_words(test), list(test.label))
    by_position = max(
        _lookup_accuracy(
            [_token_at(t, pos) for t in train.text], list(train.label),
            [_token_at(t, pos) for t in test.text], list(test.label),
        )
        for pos in list(range(-5, 0)) + list(range(0, 15))
    )
    majority = float((test.label == np.bincount(train.label).argmax()).mean())

    assert bow > 0.9
    assert by_length < majority + 0.05
    assert by_position < 0.6
    assert bow - by_position > 0.3


def test_cli_writes_loadable_splits(tmp_path, caplog):
    caplog.set_level("INFO")
    mini_emotion.main(["--out", str(tmp_path), "--n-train", "60", "--n-validation", "20",
                       "--n-test", "10", "--seed", "1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.jsonl", "train.jsonl", "validation.jsonl"]
    expected = generate_corpus(60, 20, 10, seed=1)
    for split, df in expected.items():
        pd.testing.assert_frame_equal(load_emotion_split(str(tmp_path), split), df)
    assert "train=60" in caplog.text and "sadness=" in caplog.text


def test_cli_help():
    with pytest.raises(SystemExit) as exc:
        mini_emotion.main(["--help"])
    assert exc.value.code == 0


# --------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_loader_round_trip(tmp_path, fmt):
    df = pd.DataFrame({
        "text": ["i feel sad, very \"sad\"", "null", "i am happy\nreally", "é ü 😀 ok"],
        "label": [0, 1, 5, 2],
    })
    path = write_split(df, tmp_path, "validation", fmt)
    assert path == tmp_path / f"validation.{fmt}"
    loaded = load_emotion_split(str(tmp_path), "validation")
    pd.testing.assert_frame_equal(loaded, df)
    assert loaded["label"].dtype == np.int64


def test_is_local_source(tmp_path):
    assert is_local_source(str(tmp_path))
    assert is_local_source(tmp_path)
    assert not is_local_source("dair-ai/emotion")
    assert not is_local_source(str(tmp_path / "missing"))


def _write_raw(directory, name, content):
    path = directory / name
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("train.csv", "text,y\nhello there,1\n", "missing column"),
        ("train.csv", "text,label\nhello there,7\n", "outside 0..5: [7]"),
        ("train.csv", "text,label\nhello there,-1\n", "outside 0..5: [-1]"),
        ("train.csv", "text,label\nhello there,1.5\n", "non-integer"),
        ("train.csv", "text,label\nhello there,joy\n", "non-integer"),
        ("train.csv", "text,label\n,1\n", "empty texts"),
        ("train.jsonl", '{"text": "  ", "label": 1}\n', "empty texts"),
        ("train.jsonl", '{"text": null, "label": 1}\n', "missing values"),
        ("train.jsonl", '{"text": "hi there", "label": null}\n', "missing values"),
        ("train.jsonl", '{"text": "hi there", "label": 1}\n{not json\n', "could not be read"),
    ],
)
def test_loader_rejects_bad_files(tmp_path, name, content, problem):
    path = _write_raw(tmp_path, name, content)
    with pytest.raises(ValueError) as exc:
        load_emotion_split(str(tmp_path), "train")
    message = str(exc.value)
    assert str(path) in message and problem in message
    assert "\n" not in message


def test_loader_rejects_bad_parquet(tmp_path):
    pd.DataFrame({"text": ["fine text"], "label": [6]}).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(ValueError, match=r"test\.parquet: column 'label' has values outside 0\.\.5: \[6\]"):
        load_emotion_split(str(tmp_path), "test")


def test_loader_rejects_several_files_for_a_split(tmp_path):
    df = pd.DataFrame({"text": ["a b c"], "label": [1]})
    write_split(df, tmp_path, "train", "jsonl")
    write_split(df, tmp_path, "train", "csv")
    write_split(df, tmp_path, "test", "csv")  # other splits do not interfere
    with pytest.raises(ValueError, match="several files") as exc:
        load_emotion_split(str(tmp_path), "train")
    assert str(tmp_path) in str(exc.value) and "train.csv" in str(exc.value)
    assert len(load_emotion_split(str(tmp_path), "test")) == 1


def test_loader_rejects_missing_split_file(tmp_path):
    write_split(pd.DataFrame({"text": ["a b c"], "label": [1]}), tmp_path, "train")
    with pytest.raises(ValueError, match="no file for split 'validation'") as exc:
        load_emotion_split(str(tmp_path), "validation")
    assert str(tmp_path) in str(exc.value)


def test_loader_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        load_emotion_split(str(tmp_path), "dev")


# --------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, corpus):
    directory = tmp_path_factory.mktemp("emotion")
    for split, df in corpus.items():
        write_split(df, directory, split)
    return directory


def test_trained_bpe_loads_and_round_trips(tmp_path, data_dir, corpus):
    from transformers import AutoTokenizer

    out = tmp_path / "tok"
    prepare_tokenizer("train-bpe", out, data_dir=data_dir, vocab_size=400)
    tok = AutoTokenizer.from_pretrained(str(out))
    assert len(tok) <= 400
    assert tok.vocab_size <= 400
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert tok.model_max_length == 1024

    samples = list(corpus["test"]["text"][:5]) + ["Unseen: Ünïcode 😀, CAPS & punctuation!"]
    for text in samples:
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text
    # merges were learned: corpus sentences are much shorter in tokens than in bytes
    sentence = corpus["test"]["text"].iloc[0]
    assert len(tok(sentence)["input_ids"]) < 0.6 * len(sentence.encode())

    batch = tok(samples[:2], padding=True)
    assert len(batch["input_ids"][0]) == len(batch["input_ids"][1])


def test_train_bpe_rejects_tiny_vocab(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        train_bpe_tokenizer(["a b c"], 100, tmp_path)


def test_prepare_tokenizer_from_local_dir_sets_pad(tmp_path, data_dir):
    """A pretrained tokenizer without a pad token gets pad = eos (the gpt2 case)."""
    from transformers import AutoTokenizer

    src = tmp_path / "src"
    tok = train_bpe_tokenizer(pd.read_json(data_dir / "train.jsonl", lines=True)["text"], 300, src)
    tok.pad_token = None
    tok.save_pretrained(str(src))
    assert AutoTokenizer.from_pretrained(str(src)).pad_token is None

    out = tmp_path / "out"
    prepare_tokenizer(str(src), out)
    loaded = AutoTokenizer.from_pretrained(str(out))
    assert loaded.pad_token == loaded.eos_token == "<|endoftext|>"


def test_prepare_tokenizer_train_bpe_needs_data(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        prepare_tokenizer("train-bpe", tmp_path)
