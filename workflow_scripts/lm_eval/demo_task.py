"""A small offline lm-eval task group, ``dro_rebel_demo``: a few multiple-choice items (``acc``, ``acc_norm``)
and a few short-answer generation items (``exact_match``), in the harness's YAML schema with local JSONL
data. The mini preset runs the leaderboard stage on it (no hub access); the scores of tiny random policies
mean nothing, the point is that the stage, the harness and the report run end to end.

    python -m workflow_scripts.lm_eval.demo_task --out results/mini/lm_eval/demo_task
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from workflow_scripts.core.cli import run

GROUP = "dro_rebel_demo"

MULTIPLE_CHOICE = [
    {"question": "What color is the sky on a clear day?", "choices": ["blue", "green", "red"], "label": 0},
    {"question": "How many legs does a dog have?", "choices": ["two", "four", "six"], "label": 1},
    {"question": "Which is a fruit?", "choices": ["carrot", "potato", "apple"], "label": 2},
    {"question": "What is 2 + 2?", "choices": ["3", "4", "5"], "label": 1},
    {"question": "Which animal barks?", "choices": ["dog", "cat", "fish"], "label": 0},
    {"question": "Which one can fly?", "choices": ["rock", "bird", "table"], "label": 1},
    {"question": "Which is the largest?", "choices": ["mouse", "elephant", "ant"], "label": 1},
    {"question": "What do bees make?", "choices": ["honey", "milk", "silk"], "label": 0},
]
GENERATION = [
    {"question": "What is 3 + 4?", "answer": "7"},
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "What is the opposite of hot?", "answer": "cold"},
    {"question": "What is 1 + 1?", "answer": "2"},
    {"question": "What color is grass?", "answer": "green"},
    {"question": "How many days are in a week?", "answer": "7"},
]

MC_YAML = """\
task: {group}_mc
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}/mc_train.jsonl
    test: {data}/mc_test.jsonl
training_split: train
test_split: test
fewshot_split: train
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
num_fewshot: 1
fewshot_config:
  sampler: first_n
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

GEN_YAML = """\
task: {group}_gen
dataset_path: json
dataset_kwargs:
  data_files:
    train: {data}/gen_train.jsonl
    test: {data}/gen_test.jsonl
training_split: train
test_split: test
fewshot_split: train
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
target_delimiter: " "
num_fewshot: 1
fewshot_config:
  sampler: first_n
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: 8
filter_list:
  - name: strip
    filter:
      - function: regex
        regex_pattern: "^\\\\s*(\\\\S+)"
        group_select: 0
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
metadata:
  version: 1.0
"""

GROUP_YAML = """\
group: {group}
task:
  - {group}_mc
  - {group}_gen
metadata:
  version: 1.0
"""


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_demo_task(out: str | Path) -> Path:
    """Write the task group's YAMLs and data into ``out`` (the few-shot example is each set's first item).

    The data paths in the YAMLs are ``out``'s path as given: relative paths resolve against the
    working directory of the job (Snakemake's workdir), so the results directory stays relocatable.
    """
    out = Path(out)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    _jsonl(data / "mc_train.jsonl", MULTIPLE_CHOICE[:1])
    _jsonl(data / "mc_test.jsonl", MULTIPLE_CHOICE[1:])
    _jsonl(data / "gen_train.jsonl", GENERATION[:1])
    _jsonl(data / "gen_test.jsonl", GENERATION[1:])
    (out / f"{GROUP}_mc.yaml").write_text(MC_YAML.format(group=GROUP, data=data.as_posix()))
    (out / f"{GROUP}_gen.yaml").write_text(GEN_YAML.format(group=GROUP, data=data.as_posix()))
    (out / f"{GROUP}.yaml").write_text(GROUP_YAML.format(group=GROUP))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    write_demo_task(p.parse_args(argv).out)


if __name__ == "__main__":
    run(main)
