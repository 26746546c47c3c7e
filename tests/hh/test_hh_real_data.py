"""The HH loader on real dialogues: Anthropic hh-rlhf harmless-base test (../shared/data/hh-rlhf, 2 312 records,
the hub's raw format). Skipped, with the reason, where that directory is absent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("DRO_REBEL_HH_DATA", REPO.parent / "shared" / "data" / "hh-rlhf"))

pytestmark = pytest.mark.skipif(not (DATA / "harmless-base").is_dir(),
                                reason=f"the real hh-rlhf dialogues are not at {DATA} (set DRO_REBEL_HH_DATA)")


def test_the_loader_and_the_reward_input_on_real_dialogues(tmp_path):
    out = tmp_path / "stats.json"
    done = subprocess.run([sys.executable, "-m", "workflow_scripts.hh.data_stats", "--source", str(DATA),
                           "--subset", "harmless-base", "--split", "test", "--tokenizer", "train-bpe",
                           "--vocab-size", "4096", "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(out.read_text())
    assert stats["records"] == 2312
    # every record is accounted for: kept, or dropped for a stated reason
    assert stats["pairs_kept"] + sum(stats["dropped"].values()) == stats["records"]
    assert stats["dropped"]["chosen_and_rejected_differ_before_the_last_turn"] == 5
    assert sum(stats["human_turns_per_prompt"]["counts"].values()) == stats["pairs_kept"]
    assert stats["human_turns_per_prompt"]["max"] > 3                      # real multi-turn prompts
    assert stats["prompt_tokens"]["max"] <= stats["limits"]["max_prompt_tokens"]
    assert stats["response_tokens"]["n"] == 2 * stats["pairs_kept"]
    assert stats["score_input_round_trip_fraction"] == 1.0                  # the reward input is the dialogue
