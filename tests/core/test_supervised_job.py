"""The supervised job runner (core/train/job.py): a job killed mid-run resumes from its checkpoint and ends
with the outputs of a job that was never interrupted."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import tiny_models
from workflow_helpers import REPO


def test_model_spec_reads_a_json_object_as_a_config_and_anything_else_as_a_name():
    from workflow_scripts.core.train.job import model_spec

    assert model_spec(' {"n_layer": 2} ') == {"n_layer": 2}
    assert model_spec("gpt2") == "gpt2"


def _sft_command(tmp_path, out, *extra):
    tokenizer, data = tmp_path / "inputs/tokenizer", tmp_path / "texts"
    if not data.exists():
        tiny_models.build(tmp_path / "inputs", n_pairs=8)
        data.mkdir()
        rng = np.random.default_rng(0)
        for split, n in (("train", 40), ("validation", 16)):
            texts = [" ".join(rng.choice(tiny_models.WORDS, size=2)) for _ in range(n)]
            pd.DataFrame({"text": texts}).to_json(data / f"{split}.jsonl", orient="records", lines=True)
    model = json.dumps({"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64})
    return [sys.executable, "-m", "workflow_scripts.core.train.sft", "--data", str(data), "--tokenizer", str(tokenizer),
            "--model", model, "--out", str(out / "model"), "--metrics", str(out / "metrics.json"),
            "--run-info", str(out / "run_info.json"), "--epochs", "2", "--global-batch", "8", "--micro-batch", "4",
            "--lr", "1e-3", "--max-length", "24", "--precision", "fp32", *extra]


def test_a_killed_job_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "DRO_REBEL_FAULT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    commands = [_sft_command(tmp_path, reference), _sft_command(tmp_path, resumed, "--checkpoint-every", "2")]
    # 10 steps; SIGKILL after step 3: the checkpoint of step 2 is the newest one
    runs = [subprocess.Popen(commands[0], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True),
            subprocess.Popen(commands[1], cwd=REPO, env={**env, "DRO_REBEL_FAULT": "kill@3"},
                             stderr=subprocess.PIPE, text=True)]
    errors = [run.communicate(timeout=600)[1] for run in runs]
    assert runs[0].returncode == 0, errors[0][-3000:]
    assert runs[1].returncode != 0 and not (resumed / "metrics.json").exists(), errors[1][-3000:]
    assert (resumed / "model.checkpoints/step-00000002/manifest.json").exists()

    # the checkpoint options are not part of the job's identity: a rerun without them still resumes
    rerun = subprocess.run(commands[1][:-2], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from" in rerun.stderr and "step-00000002" in rerun.stderr
    assert "sft resuming at step 3/10" in rerun.stderr
    assert "sft step 1/10" not in rerun.stderr                     # the steps before the checkpoint are not redone
    assert (resumed / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()
    weights = [hashlib.sha256((out / "model/model.safetensors").read_bytes()).hexdigest()
               for out in (reference, resumed)]
    assert weights[0] == weights[1]
    assert not (resumed / "model.checkpoints").exists(), "checkpoints are removed once the outputs are written"
    info = json.loads((resumed / "run_info.json").read_text())
    assert info["job"] == "sft" and info["global_batch"] == 8 and info["grad_accum"] == 2
    assert info["timing"]["checkpoints"] > 0 and info["timing"]["final_save"] > 0
