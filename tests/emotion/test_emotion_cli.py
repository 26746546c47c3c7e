"""The emotion jobs' command lines: the pairs job and the evaluation continue prompts with the same flags."""
from pathlib import Path

import yaml

from workflow_scripts.emotion import evaluate, pairs

REPO = Path(__file__).resolve().parents[2]
CONTINUATION = ("prompt_tokens", "max_new_tokens", "top_k", "top_p")


def _parse(module, *flags):
    required = {pairs: ["--out", "pairs.parquet"],
                evaluate: ["--out", "test=run.csv", "--variant", "sft", "--seed", "0"]}[module]
    return module.parse_args(["--policy", "sft/", "--reward-model", "rm/", "--data", "data/", *required, *flags])


def test_continuation_defaults_are_the_configs_and_both_jobs_share_them():
    config = yaml.safe_load((REPO / "config.yaml").read_text())["emotion"]["pairs"]
    for module in (pairs, evaluate):
        a = _parse(module)
        assert {k: getattr(a, k) for k in CONTINUATION} == {k: config[k] for k in CONTINUATION}
        assert a.batch_size == 64 and a.generation_backend == "hf"


def test_both_jobs_read_the_continuation_flags_alike():
    flags = ["--prompt-tokens", "6", "--max-new-tokens", "12", "--top-k", "5", "--top-p", "0.9", "--batch-size", "8",
             "--generation-backend", "hf"]
    parsed = [vars(_parse(module, *flags)) for module in (pairs, evaluate)]
    keys = [*CONTINUATION, "batch_size", "generation_backend"]
    assert [{k: p[k] for k in keys} for p in parsed] == [
        {"prompt_tokens": 6, "max_new_tokens": 12, "top_k": 5, "top_p": 0.9, "batch_size": 8,
         "generation_backend": "hf"}] * 2
