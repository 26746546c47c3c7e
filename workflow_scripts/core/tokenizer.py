"""Tokenizers: one Hugging Face tokenizer directory for all later stages, and the byte-level BPE
training every tokenizer this project builds shares (:func:`byte_level_bpe`).

The full presets reuse a pretrained tokenizer (e.g. ``gpt2``); the mini preset
has no hub access, so it trains a tiny byte-level BPE on the generated train
split.  Either way the result is saved with ``save_pretrained`` into
``out_dir``, so downstream code always does ``AutoTokenizer.from_pretrained(out_dir)``
and never needs to know where the tokenizer came from.  Byte-level BPE is used
because, like GPT-2's, it round-trips any text exactly and never needs ``<unk>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import read_texts

logger = logging.getLogger(__name__)

TRAIN_BPE = "train-bpe"
SPECIAL_TOKEN = "<|endoftext|>"
DEFAULT_VOCAB_SIZE = 512
DEFAULT_MODEL_MAX_LENGTH = 1024
#: 256 byte symbols + the special token: the smallest vocabulary that can encode anything.
MIN_VOCAB_SIZE = 257


def byte_level_bpe(texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str]) -> Tokenizer:
    """The backend of every tokenizer this project trains: a byte-level BPE (GPT-2 style) on ``texts``.

    Byte-level, so it round-trips any text exactly and never needs ``<unk>``; all 256 byte symbols are
    seeded so unseen characters still encode. ``vocab_size`` counts the special tokens.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size {vocab_size} is too small for byte-level BPE (need >= {MIN_VOCAB_SIZE})."
        )
    backend = Tokenizer(models.BPE())
    # add_prefix_space=False (GPT-2 style) keeps decode(encode(x)) == x exactly.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    return backend


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | Path,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and save it in Hugging Face format to ``out_dir``.

    ``<|endoftext|>`` serves as bos, eos, pad and unk (as in GPT-2), so the
    vocabulary holds at most ``vocab_size`` entries including it.
    """
    backend = byte_level_bpe(texts, vocab_size, [SPECIAL_TOKEN])

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=SPECIAL_TOKEN,
        eos_token=SPECIAL_TOKEN,
        unk_token=SPECIAL_TOKEN,
        pad_token=SPECIAL_TOKEN,
        model_max_length=model_max_length,
    )
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    logger.info("trained byte-level BPE (vocab %d of %d requested) -> %s",
                backend.get_vocab_size(), vocab_size, out_dir)
    return tokenizer


#: Chat templates a tokenizer can be given, by name: the format its policy will be trained on, so that every
#: tool that formats conversations with the tokenizer (lm-evaluation-harness, vLLM's chat) uses that format.
#: ``hh``: Anthropic HH-RLHF's raw dialogue, "\n\nHuman: ...\n\nAssistant: ..." (what HH SFT and alignment train on).
CHAT_TEMPLATES = {
    "hh": ("{% for message in messages %}"
           "{% if message['role'] == 'user' %}{{ '\n\nHuman: ' + message['content'] }}"
           "{% elif message['role'] == 'assistant' %}{{ '\n\nAssistant: ' + message['content'] }}"
           "{% else %}{{ message['content'] }}{% endif %}"
           "{% endfor %}{% if add_generation_prompt %}{{ '\n\nAssistant:' }}{% endif %}"),
}


def prepare_tokenizer(
    source: str,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    vocab_size: int | None = None,
    chat_template: str | None = None,
):
    """Write the tokenizer for ``source`` to ``out_dir`` and return it.

    ``source == "train-bpe"``: train on the train split texts of ``data_dir`` (a directory of
    ``{split}.jsonl/.csv/.parquet`` files with a ``text`` column).
    Anything else: a hub id or local directory for ``AutoTokenizer``; a missing
    pad token is set to the eos token, because batched training needs padding.
    """
    if chat_template is not None and chat_template not in CHAT_TEMPLATES:
        raise ValueError(f"unknown chat template {chat_template!r}; choose one of {sorted(CHAT_TEMPLATES)}.")
    if source == TRAIN_BPE:
        if data_dir is None:
            raise ValueError(f"source '{TRAIN_BPE}' needs data_dir (a directory with a train split of texts).")
        texts = read_texts(data_dir, "train")
        tokenizer = train_bpe_tokenizer(texts, vocab_size or DEFAULT_VOCAB_SIZE, out_dir)
        if chat_template:
            tokenizer.chat_template = CHAT_TEMPLATES[chat_template]
            tokenizer.save_pretrained(str(out_dir))
        return tokenizer

    if vocab_size is not None:
        logger.warning("vocab_size=%s ignored: pretrained tokenizer '%s' keeps its vocabulary",
                       vocab_size, source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{source}: tokenizer has neither a pad nor an eos token.")
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template:            # replaces the hub's (e.g. Qwen's ChatML): the policy trains on this format
        tokenizer.chat_template = CHAT_TEMPLATES[chat_template]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    logger.info("saved tokenizer '%s' (vocab %d) -> %s", source, len(tokenizer), out_dir)
    return tokenizer


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_scripts.core.tokenizer",
        description="Prepare the tokenizer directory used by all later stages.",
    )
    parser.add_argument("--source", required=True,
                        help=f"'{TRAIN_BPE}' to train a byte-level BPE, or a hub id / local tokenizer dir")
    parser.add_argument("--out", required=True, type=Path, help="output tokenizer directory")
    parser.add_argument("--data", type=Path, default=None,
                        help=f"directory with a train split of texts (needed for --source {TRAIN_BPE})")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help=f"BPE vocabulary size (default {DEFAULT_VOCAB_SIZE}; only for {TRAIN_BPE})")
    parser.add_argument("--chat-template", choices=sorted(CHAT_TEMPLATES), default=None,
                        help="give the tokenizer this conversation format (the one its policy trains on)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    prepare_tokenizer(args.source, args.out, data_dir=args.data, vocab_size=args.vocab_size,
                      chat_template=args.chat_template)


if __name__ == "__main__":
    run(main, sys.argv[1:])
