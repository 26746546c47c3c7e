"""The profiles without a cluster: name resolution, planning, per-rule resources, site overrides,
the launcher's process count, the canary's checks and the `launch.canary` switch.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from workflow_scripts.tools.canary import evaluate_checks  # noqa: E402
from workflow_scripts.core.config import coerce_cli_strings, validate_config  # noqa: E402


def snakemake(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def profile(env=None) -> dict:
    """profiles/slurm/config.yaml as Snakemake reads it: {option: value or [entries]}."""
    from snakemake.profiles import ProfileConfigFileParser

    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        with open(REPO / "profiles/slurm/config.yaml") as fh:
            return dict(ProfileConfigFileParser().parse(fh))
    finally:
        os.environ.clear()
        os.environ.update(old)


def config_under_profile(env=None) -> dict:
    """config.yaml with the profile's `config:` applied as Snakemake applies it (like --config), typed and
    validated as the workflow does when it loads."""
    import yaml
    from snakemake.utils import update_config

    from workflow_scripts.tools.plan.resources import profile_config

    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        overrides = profile_config(REPO / "profiles/slurm")
    finally:
        os.environ.clear()
        os.environ.update(old)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, overrides)
    coerce_cli_strings(config)
    validate_config(config)
    return config


def dry_run_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """{rule: [each job's resources]} from a dry run's job blocks."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        m = re.match(r"(?:local)?rule (\w+):\n", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m and res:
            items = (x.split("=", 1) for x in re.split(r", (?=\w+=)", res.group(1)))
            jobs.setdefault(m.group(1), []).append({k: v for k, v in items})
    return jobs


def job_counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


# ----------------------------------------------------------------------------- resolution and planning
@pytest.mark.parametrize("target, expected", [
    ("all", {"gpu_canary": 1, "emotion_align": 120, "emotion_evaluate": 120, "emotion_report": 1}),
    ("results/paper/figures/emotion_alpha_sweep.pdf", {"gpu_canary": 1, "emotion_align": 120, "emotion_report": 1}),
])
def test_profile_name_resolves_from_the_repository_root_and_plans(xdg_config_home, target, expected):
    """`snakemake --profile slurm -n <target>` literally, with docs/cluster.md's one-time link in place."""
    result = snakemake("--profile", "slurm", "-n", target, "--quiet", "rules",
                       env={"XDG_CONFIG_HOME": str(xdg_config_home)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Using profile slurm" in out or "Using profiles slurm and workflow specific profile profiles/default" in out
    counts = job_counts(out)
    assert {k: counts.get(k) for k in expected} == expected


def test_dry_run_shows_the_gpu_resources_and_the_canary_dependency(xdg_config_home):
    align = "results/mini/emotion/align/chi2-rebel/1/eta10/0/metrics.json"
    result = snakemake("--profile", "slurm", "-n", align, "--configfile", "presets/mini.yaml",
                       "--directory", str(xdg_config_home / "plan"), env={"XDG_CONFIG_HOME": str(xdg_config_home)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    block = out[out.index("rule emotion_align:"):]
    block = block[:block.index("Shell command")]
    assert "results/mini/canary/gpu_job.json" in block                 # align waits for the canary
    for res in ("gpu=2", "cpus_per_gpu=8", "slurm_partition=gpu", "runtime=360", "mem_mb=64000"):
        assert res in block, (res, block)


def test_without_the_profile_alignment_does_not_wait_for_the_canary(tmp_path):
    result = snakemake("-n", "all", "--configfile", "presets/mini.yaml", "--directory", str(tmp_path),
                       "--quiet", "rules")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "gpu_canary" not in job_counts(out)


# ----------------------------------------------------------------------------- the profile's content
def gpu_rules() -> set[str]:
    """Every runnable rule whose resources come from W.resources (its cluster request), itself or through the
    rule it is `use`d from (`use rule hh_evaluate as hh_evaluate_sft with: ...` inherits its resources)."""
    bodies, parents = {}, {}
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"^(?=(?:use )?rule )", smk.read_text(), flags=re.M):
            m = re.match(r"(?:rule (\w+)|use rule (\w+) as (\w+))", block)
            if m:
                name = m.group(1) or m.group(3)
                bodies[name], parents[name] = block, m.group(2)

    def declares(name):
        own = re.search(r"^    resources:\n(?:        .*\n)*", bodies[name], re.M)
        if own:                                          # `with: resources:` replaces the whole block
            return "W.resources(" in own.group(0) or "W.canary_resources(" in own.group(0)
        return parents[name] is not None and declares(parents[name])

    templates = {p for p in parents.values() if p} & {n for n, b in bodies.items() if "/templates/" in b}
    return {n for n in bodies if declares(n)} - templates


@pytest.fixture(scope="module")
def cluster_jobs(tmp_path_factory) -> dict[str, list[dict[str, str]]]:
    """Every job's resources in a dry run under the profile: the mini preset (every experiment, ArmoRM online)
    with the emotion online grid too, so each GPU rule appears."""
    tmp = tmp_path_factory.mktemp("cluster")
    (tmp / "online.yaml").write_text("emotion:\n  regimes: [offline, online]\n")
    result = snakemake("--profile", "profiles/slurm", "-n", "all", "--configfile", "presets/mini.yaml",
                       str(tmp / "online.yaml"), "--directory", str(tmp / "work"))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    return dry_run_resources(out)


def test_every_gpu_rule_asks_the_cluster_for_gpu_cpus_memory_runtime_and_partition(cluster_jobs):
    needed = gpu_rules()
    assert {"gpu_canary", "emotion_sft", "emotion_align", "emotion_align_online", "hh_align", "hh_sft",
            "armorm_align_online", "lm_eval_armorm", "lm_eval_hh_sft"} <= needed, needed
    missing = sorted(needed - set(cluster_jobs))
    assert not missing, f"GPU rules the dry run did not plan (extend the fixture's config): {missing}"
    for rule in sorted(needed):
        for res in cluster_jobs[rule]:
            assert {"gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition"} <= set(res), (rule, res)
            assert int(res["gpu"]) >= 1 and "gpus" not in res, (rule, res)
            assert int(res["mem_mb"]) >= 32000 * int(res["gpu"]), (rule, res)
            assert not re.search(r"--gres|--gpus", res.get("slurm_extra", "")), (rule, res)
    assert cluster_jobs["gpu_canary"][0]["gpu"] == cluster_jobs["emotion_align"][0]["gpu"] == "2"
    on_gpus = {rule for rule, jobs in cluster_jobs.items() if any(int(j.get("gpu", 0)) > 0 for j in jobs)}
    assert on_gpus == needed, f"GPUs for rules that do not declare W.resources: {sorted(on_gpus - needed)}"
    cpu = cluster_jobs["emotion_data"][0]
    assert "gpu" not in cpu and cpu["runtime"] == "60" and cpu["mem_mb"] == "4000"


def test_a_gpu_job_asks_for_its_experiments_cluster_section():
    """Workflow.resources against the config by hand: gpu, minutes, memory x mem_mb_per_gpu, site settings."""
    from workflow_scripts.core.workflow import Workflow

    config = config_under_profile()
    hh_sft, armorm_eval = config["hh"]["cluster"]["sft"], config["armorm"]["cluster"]["evaluate"]
    assert Workflow(config).resources("hh", "sft", nproc=3) == {
        "gpu": hh_sft["gpu"], "nproc": 3, "mem_mb": hh_sft["memory"] * 32000, "runtime": hh_sft["runtime"],
        "cpus_per_gpu": 8, "slurm_partition": "gpu"}
    assert (armorm_eval["gpu"], armorm_eval["memory"]) == (1, 2)      # policy and 8B scorer loaded on the CPU first
    assert Workflow(config).resources("armorm", "evaluate")["mem_mb"] == 64000
    canary = Workflow(config).canary_resources()
    assert (canary["gpu"], canary["nproc"], canary["runtime"]) == (2, 2, config["cluster"]["canary"]["runtime"])
    config["cluster"]["enabled"] = False                              # local runs: what the rules said before
    assert Workflow(config).resources("hh", "sft", nproc=3) == {"gpu": 0, "nproc": 3}
    assert Workflow(config).canary_resources() == {"gpu": 0, "nproc": 2}


def test_profile_executor_settings_and_canary_flag():
    parsed = profile()
    assert parsed["executor"] == "slurm"
    for key in ("jobs", "retries", "latency-wait"):
        assert int(parsed[key]) > 0, key
    assert parsed["rerun-incomplete"] == "True"
    assert "runtime=60" in parsed["default-resources"]
    assert not any(e.startswith(("slurm_account=", "slurm_partition=")) for e in parsed["default-resources"])
    assert "set-resources" not in parsed                                  # the rules declare GPU jobs' needs
    config = config_under_profile()
    assert config["launch"]["canary"] is True
    assert config["cluster"] == {"enabled": True, "gpu_partition": "gpu", "cpu_partition": "", "account": "",
                                 "gpu_model": "", "cpus_per_gpu": 8, "mem_mb_per_gpu": 32000,
                                 "canary": {"like": "emotion.align", "runtime": 10}}


def test_site_settings_are_overridable_from_the_environment():
    from workflow_scripts.core.workflow import Workflow

    env = {"DRO_REBEL_SLURM_ACCOUNT": "proj42", "DRO_REBEL_SLURM_CPU_PARTITION": "short",
           "DRO_REBEL_SLURM_GPU_PARTITION": "a100q", "DRO_REBEL_SLURM_GPU_MODEL": "a100",
           "DRO_REBEL_SLURM_CPUS_PER_GPU": "4", "DRO_REBEL_SLURM_ALIGN_GPUS": "4"}
    assert {"slurm_account=proj42", "slurm_partition=short"} <= set(profile(env)["default-resources"])
    w = Workflow(config_under_profile(env))
    for experiment, kind in [("emotion", "sft"), ("emotion", "align"), ("hh", "align"), ("lm_eval", "evaluate")]:
        res = w.resources(experiment, kind)
        assert (res["slurm_partition"], res["gpu_model"], res["cpus_per_gpu"], res["slurm_account"]) == \
            ("a100q", "a100", 4, "proj42"), res
    for kind in ("align", "align_online"):
        assert (w.resources("emotion", kind)["gpu"], w.resources("emotion", kind)["mem_mb"]) == (4, 4 * 32000)
    assert w.canary_resources()["gpu"] == 4 and w.resources("hh", "align")["gpu"] == 2


def test_a_cluster_executor_without_the_cluster_config_does_not_start():
    """A --config on the command line replaces the profile's `config:`: the rules would then ask for no GPU."""
    from workflow_scripts.core.workflow import cluster_off_problem

    config = config_under_profile()
    assert cluster_off_problem("slurm", config) is None
    config["cluster"]["enabled"] = False
    assert "cluster.enabled" in cluster_off_problem("slurm", config)
    assert cluster_off_problem("local", config) is None and cluster_off_problem(None, config) is None


def test_local_and_default_profiles_have_nothing_slurm_specific():
    default = REPO / "profiles/default"
    texts = [p.read_text() for p in default.glob("*")] if default.is_dir() else []
    assert not any("slurm" in t.lower() for t in texts)
    local = (REPO / "profiles/local/config.yaml").read_text()
    assert "executor: local" in local and "slurm" not in re.sub(r"#.*", "", local).lower()


# ----------------------------------------------------------------------------- launcher, canary, config
def _launch_prefix(xdg_config_home) -> str:
    """The canary's shell command from a dry run, up to the launcher (everything before torchrun)."""
    result = snakemake("--profile", "slurm", "-n", "-p", "results/mini/canary/gpu_job.json", "--configfile",
                       "presets/mini.yaml", "--directory", str(xdg_config_home / "plan"),
                       env={"XDG_CONFIG_HOME": str(xdg_config_home)})
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    command = out[out.index("gpus=2;"):]
    return command[:command.index("export OMP_NUM_THREADS")]


@pytest.mark.parametrize("slurm_env, expected", [({}, "2"), ({"SLURM_GPUS_ON_NODE": "1"}, "1"),
                                                 ({"SLURM_GPUS_ON_NODE": "2", "SLURM_JOB_ID": "7"}, "2")])
def test_launcher_starts_one_process_per_granted_gpu_under_set_u(xdg_config_home, slurm_env, expected):
    prefix = _launch_prefix(xdg_config_home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "CUDA_VISIBLE_DEVICES"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", prefix + 'echo "nproc=$nproc"'],
                            capture_output=True, text=True, env={**env, **slurm_env}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"nproc={expected}"


def _canary_report(**overrides) -> dict:
    ranks = [{"rank": r, "world_size": 2, "cuda_available": False, "cuda_device_count": 0} for r in range(2)]
    report = {"world_size": 2, "local_world_size": 2, "ranks": ranks, "all_reduce": 3, "expected_gpus": 2,
              "granted_gpus": 2, "slurm": {"SLURM_GPUS_ON_NODE": "2"}, "nvidia_device_files": []}
    report.update(overrides)
    return report


@pytest.mark.parametrize("overrides, failing", [
    ({}, []),
    ({"granted_gpus": 4, "slurm": {"SLURM_GPUS_ON_NODE": "4"}}, ["world_size_equals_granted_gpus"]),
    ({"expected_gpus": 4}, ["world_size_equals_requested_gpus"]),
    ({"nvidia_device_files": ["/dev/nvidia0"]}, ["torch_sees_the_nodes_gpus"]),
    ({"all_reduce": 2}, ["all_reduce_sums_ranks"]),
])
def test_canary_checks(overrides, failing):
    checks = evaluate_checks(_canary_report(**overrides))
    assert sorted(k for k, v in checks.items() if not v) == failing


@pytest.mark.slow
def test_canary_runs_locally_on_two_processes(tmp_path):
    result = snakemake("results/mini/canary/gpu_job.json", "--cores", "2", "--configfile", "presets/mini.yaml",
                       "--config", "launch={canary: true}", "--directory", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "results/mini/canary/gpu_job.json").read_text())
    assert report["ok"] and report["world_size"] == 2 and report["expected_gpus"] == 0


def test_nested_cli_config_strings_are_typed_by_the_schema():
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # what `--config launch="{canary: true}"` leaves after Snakemake's parse: a string
    config["launch"]["canary"] = "True"
    config["emotion"]["align"]["epochs"] = "2"
    config["emotion"]["align"]["lr"] = "1e-3"
    coerce_cli_strings(config)
    assert config["launch"]["canary"] is True
    assert config["emotion"]["align"]["epochs"] == 2.0 and config["emotion"]["align"]["lr"] == 1e-3
    validate_config(config)
    config["launch"]["canary"] = "perhaps"
    coerce_cli_strings(config)
    with pytest.raises(ValueError, match="launch.canary"):
        validate_config(config)
