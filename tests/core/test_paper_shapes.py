"""The paper-shapes preset: the paper's models rebuilt from configs (random weights) have the real models'
parameter counts (within 1%; counted on the meta device, no memory), and the whole preset plans on a CPU."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from workflow_helpers import snakemake  # noqa: E402

PRESET = yaml.safe_load((REPO / "presets/paper-shapes.yaml").read_text())

#: Parameter counts of the real checkpoints (config.json of each hub model; ArmoRM: the model card's 7.51B).
REAL = {
    "gpt2": 124_439_808,                     # openai-community/gpt2
    "meta-llama/Llama-3.2-1B-Instruct": 1_235_814_400,
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": 7.51e9,
    "Qwen/Qwen2.5-1.5B-Instruct": 1_543_714_304,
    "gpt2-large": 774_030_080,
}


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def tokenizers():
    """Small BPEs like the preset trains (the models pad their embeddings to the real vocabularies)."""
    from workflow_scripts.armorm.policy import train_chat_tokenizer
    from workflow_scripts.core.tokenizer import byte_level_bpe
    from transformers import PreTrainedTokenizerFast

    texts = [f"sample text number {i} about the weather and the sea" for i in range(200)]
    plain = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(texts, 300, ["<|endoftext|>"]),
                                    eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    return {"plain": plain, "chat": train_chat_tokenizer(texts, 300)}


def build_on_meta(fn):
    with torch.device("meta"):
        return fn()


def test_emotion_gpt2_124m(tokenizers):
    from workflow_scripts.core.models import build_causal_lm, build_sequence_classifier

    spec = PRESET["emotion"]["policy_model"]
    assert count(build_on_meta(lambda: build_causal_lm(spec, tokenizers["plain"]))) == pytest.approx(REAL["gpt2"], rel=0.01)
    rm = PRESET["emotion"]["reward_model"]
    assert count(build_on_meta(lambda: build_sequence_classifier(rm, tokenizers["plain"], 5))) == pytest.approx(
        REAL["gpt2"], rel=0.01)


def test_armorm_llama_1b_policy_and_8b_scorer(tokenizers):
    from workflow_scripts.armorm.policy import build_llama_policy
    from workflow_scripts.armorm.standin import build_standin

    policy = build_on_meta(lambda: build_llama_policy(PRESET["armorm"]["policy_model"], tokenizers["chat"]))
    assert count(policy) == pytest.approx(REAL["meta-llama/Llama-3.2-1B-Instruct"], rel=0.01)
    scorer = build_standin(tokenizers["chat"], PRESET["armorm"]["reward_model"], device="meta")
    assert count(scorer) == pytest.approx(REAL["RLHFlow/ArmoRM-Llama3-8B-v0.1"], rel=0.01)
    assert next(scorer.parameters()).dtype == torch.bfloat16


def test_hh_qwen_policy_and_gpt2_large_reward_models(tokenizers):
    from workflow_scripts.core.models import build_causal_lm, build_sequence_classifier

    (policy,) = PRESET["hh"]["policies"]
    model = build_on_meta(lambda: build_causal_lm(policy["model"], tokenizers["plain"]))
    assert model.config.model_type == "qwen2"
    assert count(model) == pytest.approx(REAL["Qwen/Qwen2.5-1.5B-Instruct"], rel=0.01)
    rm = PRESET["hh"]["reward_models"]["model"]
    classifier = build_on_meta(lambda: build_sequence_classifier(rm, tokenizers["plain"], 1, problem_type="regression"))
    assert count(classifier) == pytest.approx(REAL["gpt2-large"], rel=0.01)


def test_the_paper_lengths():
    assert PRESET["emotion"]["align"]["max_length"] == 68
    armorm = PRESET["armorm"]
    assert armorm["completions"]["max_prompt_tokens"] == 1024 and armorm["completions"]["max_new_tokens"] == 1024
    assert armorm["align"]["max_length"] == 2048 and armorm["evaluate"]["max_new_tokens"] == 1024
    assert armorm["align"]["micro_batch"] == 4 and PRESET["emotion"]["align"]["micro_batch"] == 8


def test_the_preset_plans_on_a_cpu(tmp_path):
    result = snakemake("-n", "all", "--configfile", str(REPO / "presets/paper-shapes.yaml"), "--directory",
                       str(tmp_path), "--snakefile", str(REPO / "Snakefile"), "--quiet", "rules")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    # one seed, one radius per set: every variant once per experiment
    assert counts["emotion_align"] == counts["armorm_align"] == counts["hh_align"] == 8, counts
