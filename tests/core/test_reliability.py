"""Reliability: resume after SIGKILL/SIGTERM with identical results, corrupted checkpoints,
malformed configs, shell injection, credentials, and safe loading."""
import json
import os
import random
import re
import shutil
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, align_cli, snakemake, snakemake_in

JOB = "results/mini/emotion/align/{variant}/{radius}/eta10/0"
OUTPUTS = ("metrics.json", "history.csv", "run_info.json", "policy")


def _forget(workdir: Path, job: str) -> dict[str, bytes]:
    """Remove a finished align job's outputs (so Snakemake reruns it); return its reference bytes."""
    reference = {name: (workdir / job / name).read_bytes() for name in ("metrics.json", "history.csv")}
    for name in OUTPUTS:
        path = workdir / job / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return reference


def _run_job(workdir: Path, job: str, fault: str | None):
    env = dict(os.environ)
    env.pop("DRO_REBEL_FAULT", None)
    if fault:
        env["DRO_REBEL_FAULT"] = fault
    return snakemake_in(workdir, f"{job}/metrics.json", "--cores", "2", env=env, timeout=900)


def _log(workdir: Path, job: str) -> str:
    variant, radius, hp, seed = job.split("/")[-4:]
    return (workdir / f"logs/mini/emotion/align/{variant}/{radius}/{hp}/{seed}.log").read_text()


@pytest.mark.slow
def test_sigkill_three_times_then_snakemake_rerun_is_byte_identical(mini_copy):
    """Kill an alignment job with SIGKILL at three steps, rerun via Snakemake each time:
    the final metrics and history equal the uninterrupted run's, byte for byte."""
    job = JOB.format(variant="w-rebel", radius="1")
    reference = _forget(mini_copy, job)
    # 32 iterations, a checkpoint every 10 (presets/mini.yaml): kills between checkpoints lose work
    rng = random.Random(20261122)
    steps = sorted(rng.sample([s for s in range(3, 31) if s % 10], 3))
    while not (steps[0] < 10 < steps[1] < 20 < steps[2]):
        steps = sorted(rng.sample([s for s in range(3, 31) if s % 10], 3))
    for step in steps:
        result = _run_job(mini_copy, job, f"kill@{step}")
        assert result.returncode != 0, f"the job was not killed at step {step}"
        assert not (mini_copy / job / "metrics.json").exists(), "a partial output survived a killed job"
    result = _run_job(mini_copy, job, None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in _log(mini_copy, job) and "step-00000020" in _log(mini_copy, job)
    for name, expected in reference.items():
        assert (mini_copy / job / name).read_bytes() == expected, name
    assert not (mini_copy / job / "checkpoints").exists(), "checkpoints are removed after success"


@pytest.mark.slow
def test_sigterm_checkpoints_two_process_job_and_rerun_is_byte_identical(mini_copy):
    """SIGTERM (SLURM's warning) at a step that is not a checkpoint step: the 2-process job
    checkpoints on the signal, exits 143, and the rerun continues from exactly there."""
    job = JOB.format(variant="chi2-rebel", radius="1")      # runs on 2 processes in the mini preset
    reference = _forget(mini_copy, job)
    result = _run_job(mini_copy, job, "term@13")
    assert result.returncode != 0
    log = _log(mini_copy, job)
    assert "SIGTERM: checkpoint at step 13 saved" in log and "exiting with status 143" in log
    assert (mini_copy / job / "checkpoints/step-00000013/manifest.json").exists()
    assert not (mini_copy / job / "metrics.json").exists()
    result = _run_job(mini_copy, job, None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming at iteration 14/32" in _log(mini_copy, job)
    for name, expected in reference.items():
        assert (mini_copy / job / name).read_bytes() == expected, name


@pytest.mark.slow
def test_truncated_latest_checkpoint_falls_back_to_the_previous(mini_run, tmp_path):
    args = ("--variant", "kl-dpo", "--radius", "0.5", "--seed", "2", "--iterations", "12",
            "--checkpoint-every", "5", "--checkpoint-keep", "3")
    reference = align_cli(mini_run, tmp_path / "ref", *args)
    out = tmp_path / "faulty"
    killed = align_cli(mini_run, out, *args, env={**os.environ, "DRO_REBEL_FAULT": "kill@11"}, check=False)
    assert killed.returncode != 0
    latest = out / "checkpoints/step-00000010"
    victim = max(latest.glob("*.pt"), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])      # a truncated write
    resumed = align_cli(mini_run, out, *args, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"WARNING .*skipping checkpoint .*step-00000010: .*truncated", resumed.stderr)
    assert "resumed from" in resumed.stderr and "step-00000005" in resumed.stderr
    assert json.loads((out / "metrics.json").read_text()) == reference


# ----------------------------------------------------------------------------- malformed configs
MALFORMED = [
    ({"seedz": [1]}, "seedz"),
    ({"emotion": {"align": {"lrr": 1e-3}}}, "emotion.align.lrr"),
    ({"variants": ["ppo"]}, "variants[0]"),
    ({"variants": "rebel"}, "variants"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [-1]}, "seeds[0]"),
    ({"seeds": [0.5]}, "seeds[0]"),
    ({"emotion": {"radii": {"chi2": [-0.5]}}}, "emotion.radii.chi2[0]"),
    ({"emotion": {"radii": {"wasserstein": [-1]}}}, "emotion.radii.wasserstein[0]"),
    ({"emotion": {"radii": {"kl": [0]}}}, "emotion.radii.kl[0]"),
    ({"emotion": {"radii": {"kl": []}}}, "emotion.radii.kl"),
    ({"emotion": {"hparams": {"eta": [0]}}}, "emotion.hparams.eta[0]"),
    ({"armorm": {"hparams": {"beta": [-0.1]}}}, "armorm.hparams.beta[0]"),
    ({"emotion": {"hparams": {"eta": ["big"]}}}, "emotion.hparams.eta[0]"),
    ({"emotion": {"losses": {"kl_form": "exp"}}}, "emotion.losses.kl_form"),
    ({"armorm": {"align": {"iteration_batch": 100}}}, "armorm.align.iteration_batch"),
    ({"emotion": {"sft": {"lr": 0}}}, "emotion.sft.lr"),
    ({"emotion": {"align": {"lr": -1e-5}}}, "emotion.align.lr"),
    ({"emotion": {"mixture": {"alpha0": 1.5}}}, "emotion.mixture.alpha0"),
    ({"emotion": {"mixture": {"alpha0": -0.1}}}, "emotion.mixture.alpha0"),
    ({"emotion": {"evaluate": {"alphas": [0.2, 1.2]}}}, "emotion.evaluate.alphas[1]"),
    ({"emotion": {"evaluate": {"mixtures": []}}}, "emotion.evaluate.mixtures"),
    ({"emotion": {"mixture": {"objectives": ["fear", "fear"]}}}, "emotion.mixture.objectives"),
    ({"emotion": {"mixture": {"objectives": ["anger", "surprise"]}}}, "emotion.mixture.objectives[1]"),
    ({"emotion": {"dataset": "./no/such/dir"}}, "emotion.dataset"),
    ({"emotion": {"align": {"global_batch": 30}}}, "emotion.align.global_batch"),
    ({"emotion": {"sft": {"micro_batch": 0}}}, "emotion.sft.micro_batch"),
    ({"deepspeed": {"zero_stage": 3}}, "deepspeed.zero_stage"),
    ({"deepspeed": {"precision": "fp16"}}, "deepspeed.precision"),
    ({"checkpoint": {"keep": 0}}, "checkpoint.keep"),
    ({"emotion": {"align": {"regime": "online", "iterations": 0}}}, "emotion.align.iterations"),
    ({"preset": "$(touch pwned)"}, "preset"),
    ({"emotion": {"align": {"anchor": "iterate"}}}, "emotion.align.anchor"),
    ({"emotion": {"align": {"max_length": 20}}}, "emotion.align.max_length"),
    ({"emotion": {"test_from_validation": 1.0}}, "emotion.test_from_validation"),
    ({"armorm": {"prompts": {"n_validation": 48}}}, "armorm.prompts.n_validation"),
    ({"armorm": {"regimes": ["offline", "offline"]}}, "armorm.regimes"),
    ({"armorm": {"online": {"align": {"iteration_batch": 4}}}}, "armorm.online.align.anchor"),
    ({"radius_coverage": {"enabled": "yes"}}, "radius_coverage.enabled"),
    ({"cluster": {"canary": {"like": "emotion.algin"}}}, "cluster.canary.like"),
    # mini's HH batch (32 = 32) runs on one process; chi2-rebel (a two-process variant in mini) cannot split it
    ({"hh": {"variants": ["rebel", "chi2-rebel"]}}, "hh.align.global_batch"),
    ({"emotion": {"regimes": ["offline", "online"], "online": {"variants": ["chi2-rebel"],
                                                                "align": {"global_batch": 16, "micro_batch": 16,
                                                                          "iteration_batch": 16}}}},
     "emotion.online.align.global_batch"),
    ({"lm_eval": {"skip_tasks": ["leaderboard_gpqa_typo"], "demo_task": False}}, "lm_eval.skip_tasks"),
    ({"lm_eval": {"armorm_pairs": ["no+pair"]}}, "lm_eval.armorm_pairs"),
    ({"lm_eval": {"hh_preferences": {"aggregations": ["mixture"], "scales": [123]}}}, "lm_eval.hh_preferences.scales"),
    ({"lm_eval": {"batch_size": 0}}, "lm_eval.batch_size"),
    ({"lm_eval": {"harness_seeds": [0, 1]}}, "lm_eval.harness_seeds"),
    ({"lm_eval": {"backend": "openai"}}, "lm_eval.backend"),
]


def _config_error(override) -> str:
    """The one-line error the Snakefile prints for the paper config + mini preset + ``override``
    (validated in-process as rules/common.smk does; tests/core/test_workflow.py checks the same through
    the Snakemake CLI for a few of them)."""
    from snakemake.utils import update_config

    from workflow_scripts.core.config import ConfigError, coerce_cli_strings, validate_config

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for extra in (yaml.safe_load((REPO / "presets/mini.yaml").read_text()), override):
        update_config(config, extra)
    coerce_cli_strings(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


@pytest.mark.parametrize("override, key", MALFORMED, ids=[k for _, k in MALFORMED])
def test_malformed_config_fails_at_load_with_one_line(override, key):
    message = _config_error(override)
    assert "\n" not in message and f"'{key}" in message, message


# ----------------------------------------------------------------------------- shell injection and secrets
@pytest.mark.slow
def test_hostile_strings_reach_jobs_literally_and_tokens_never_leak(mini_run, tmp_path):
    hostile = "run $(touch pwned) `touch pwned2`; touch pwned3 'q\" & | > x"
    data = tmp_path / "emotion data $(touch pwned4); x"
    shutil.copytree(mini_run / "results/mini/emotion/data", data)
    override = tmp_path / "hostile.yaml"
    override.write_text(yaml.safe_dump({"run_name": hostile, "emotion": {"dataset": str(data)}}))
    secret = "hf_TESTSECRET0123456789"
    env = {**os.environ, "HF_TOKEN": secret}
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake("results/mini/emotion/sft/metrics.json", "--cores", "2", "--configfile",
                       str(REPO / "presets/mini.yaml"), str(override), "--directory", str(work),
                       "--snakefile", str(REPO / "Snakefile"), env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for place in (work, tmp_path, REPO, Path.cwd()):
        assert not list(place.glob("pwned*")), f"a command substitution ran in {place}"
    info = json.loads((work / "results/mini/emotion/sft/run_info.json").read_text())
    assert info["args"]["run_name"] == hostile
    assert info["args"]["data"].endswith("emotion/data")
    written = [p for p in work.rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".txt", ".tsv", ".csv")]
    assert written and not [p for p in written if secret in p.read_text(errors="replace")]


def test_run_info_redacts_credentials(tmp_path, monkeypatch):
    from workflow_scripts.core.runinfo import write_run_info

    monkeypatch.setenv("HF_TOKEN", "hf_abcdef123456")
    write_run_info(tmp_path / "run_info.json", args={"note": "token hf_abcdef123456 here"}, seed=1)
    text = (tmp_path / "run_info.json").read_text()
    assert "hf_abcdef123456" not in text and "token *** here" in text


# ----------------------------------------------------------------------------- safe loading, statically
def _python_sources():
    return [p for p in (REPO / "workflow_scripts").rglob("*.py")]


def test_every_torch_load_is_weights_only():
    calls = [(p, m.group(0)) for p in _python_sources()
             for m in re.finditer(r"torch\.load\([^)]*\)", p.read_text())]
    assert calls, "expected at least the checkpoint loader"
    assert all("weights_only=True" in call for _, call in calls), calls


def test_trust_remote_code_only_through_the_allow_list():
    """No call passes a literal trust_remote_code=True: the decision comes from the allow-list."""
    import ast

    offenders = []
    for path in _python_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "trust_remote_code" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        if isinstance(kw.value, ast.Constant):
                            offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"trust_remote_code=True hard-coded at {offenders}: use the config allow-list"
