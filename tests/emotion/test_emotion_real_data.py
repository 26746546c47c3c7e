"""The real dair-ai/emotion splits (../shared/data/emotion: train and validation only; README "Emotion on real
text"): the data stage reads them and carves the development test split out of validation, and the
real-cpu preset plans its full grid on them. Skipped, with the reason, where that directory is absent."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("DRO_REBEL_EMOTION_DATA", REPO.parent / "shared" / "data" / "emotion"))

pytestmark = pytest.mark.skipif(not (DATA / "train.jsonl").exists(),
                                reason=f"the real emotion data are not at {DATA} (set DRO_REBEL_EMOTION_DATA)")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_data_stage_carves_a_test_split_out_of_validation_only(tmp_path):
    out = tmp_path / "data"
    result = subprocess.run([sys.executable, "-m", "workflow_scripts.emotion.prepare", "--source", str(DATA),
                             "--test-from-validation", "0.5", "--out", str(out)], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    train, validation, test = (rows(out / f"{s}.jsonl") for s in ("train", "validation", "test"))
    source_validation = rows(DATA / "validation.jsonl")
    assert train == rows(DATA / "train.jsonl")                       # train untouched
    assert len(validation) + len(test) == len(source_validation) and abs(len(validation) - len(test)) <= 1
    as_key = lambda r: (r["text"], r["label"])  # noqa: E731
    assert sorted(map(as_key, validation + test)) == sorted(map(as_key, source_validation))
    # the corpus itself repeats some texts across its splits (dair-ai/emotion as published): nothing beyond that
    train_texts = {r["text"] for r in train}
    assert {r["text"] for r in test} & train_texts <= {r["text"] for r in source_validation} & train_texts
    assert {r["label"] for r in test} == set(range(6))


def test_the_real_cpu_preset_plans_its_full_grid_on_them(tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all", "--configfile", "presets/real-cpu.yaml",
                             "--config", f"emotion={{dataset: {DATA}}}", "--directory", str(tmp_path), "--snakefile",
                             str(REPO / "Snakefile"), "--quiet", "rules"], capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    # 3 seeds x (REBEL + DPO + 6 robust variants x 3 radii), one eta and one beta
    assert counts["emotion_align"] == 60 and counts["emotion_evaluate"] == 60 and "armorm_align" not in counts
