"""What a researcher sees when something goes wrong, through Snakemake itself (the mini preset, an emotion
dataset the test writes): a job's cause on the console in one line, a data file that cannot go stale, a split
that cannot be missing, a cluster profile without its cluster."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from workflow_helpers import snakemake_in

ROWS = [{"text": f"i feel so {'angry' if i % 2 else 'scared'} about thing number {i}", "label": 3 + i % 2}
        for i in range(40)]


def write_dataset(directory: Path, broken_line: int | None = None, splits=("train", "validation")) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split in splits:
        lines = [json.dumps(r) for r in ROWS]
        if broken_line is not None and split == "train":
            lines[broken_line - 1] = lines[broken_line - 1][:-1]        # drop the closing brace
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_a_job_that_fails_on_bad_data_shows_its_cause_on_the_console(tmp_path):
    data = write_dataset(tmp_path / "emotion", broken_line=3)
    run = snakemake_in(tmp_path / "run", "results/mini/emotion/data", "--cores", "1",
                       "--config", f"emotion={{dataset: {data}}}")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    # the job's last line, "Error: <file>:<line>: ...", on Snakemake's own console (profiles/default)
    assert f"Error: {data}/train.jsonl" in out and f"{data / 'train.jsonl'}:3: not valid JSON" in out, out[-3000:]
    assert "Traceback" not in out


def test_a_missing_split_is_refused_at_config_load(tmp_path):
    data = write_dataset(tmp_path / "emotion", splits=("train",))
    run = snakemake_in(tmp_path / "run", "-n", "results/mini/emotion/data", "--config", f"emotion={{dataset: {data}}}")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Config error: config key 'emotion.dataset'" in out and "no validation split" in out
    assert "Building DAG" not in out


def test_editing_a_local_data_file_reruns_what_depends_on_it(tmp_path):
    data = write_dataset(tmp_path / "emotion")
    workdir = tmp_path / "run"
    first = snakemake_in(workdir, "results/mini/emotion/data", "--cores", "1", "--config", f"emotion={{dataset: {data}}}")
    assert first.returncode == 0, first.stderr[-3000:]
    again = snakemake_in(workdir, "-n", "results/mini/emotion/data", "--config", f"emotion={{dataset: {data}}}")
    assert "Nothing to be done" in again.stdout + again.stderr
    time.sleep(1.1)
    (data / "validation.jsonl").write_text((data / "validation.jsonl").read_text().replace("thing", "item"))
    after = snakemake_in(workdir, "-n", "results/mini/emotion/data", "--config", f"emotion={{dataset: {data}}}")
    out = after.stdout + after.stderr
    assert "emotion_data" in out and str(data / "validation.jsonl") in out, out[-3000:]


@pytest.mark.skipif(any((Path(p) / "sbatch").exists() for p in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="SLURM's commands are installed here")
def test_the_slurm_profile_without_slurm_stops_in_one_line(tmp_path, repo):
    run = snakemake_in(tmp_path / "run", "results/mini/radius_coverage/chi2_dpo.csv", "--profile",
                       str(repo / "profiles/slurm"), timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Error: the slurm executor needs sbatch" in out
    assert "Job submission failed" not in out
