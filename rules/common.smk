# Shared by every rule file: config validation, the helpers (workflow_scripts/core/workflow.py) and the
# paths. No experiment names here, and no function definitions: each experiment's helpers live in its
# package (workflow_scripts/<experiment>/workflow.py), so the rule files hold rules only.
import sys

sys.path.insert(0, workflow.basedir)

from workflow_scripts.core.config import ConfigError, coerce_cli_strings, prepare_job_environment, validate_config

# Nested --config values (and a profile's `config:` mapping) arrive as strings: type them first.
coerce_cli_strings(config)
try:
    validate_config(config)
except ConfigError as error:
    # One line, no traceback, before any job is planned.
    sys.exit(f"Config error: {error}")

# Light modules only (no torch, no pandas): planning a grid must stay fast.
from workflow_scripts.core.losses.registry import VARIANTS
from workflow_scripts.core.workflow import (
    Workflow as ExperimentHelpers,  # not `Workflow`: the Snakefile runs in the globals of snakemake.workflow
    cli_flags,
    cluster_off_problem,
    hparam_flag,
    input_parent,
    launch,
    missing_scheduler_commands,
    model_spec_arg,
    output_stem,
    run_label,
    settings_of,
)

prepare_job_environment(workflow.basedir)

W = ExperimentHelpers(config)
PRESET = config["preset"]
RESULTS = W.results
LOGS = W.logs
BENCHMARKS = W.benchmarks


# Before any job is submitted (not on dry runs): a cluster executor whose commands are missing, or that would get
# no GPU resources (cluster.enabled off), stops here in one line, instead of failing every submission after retries.
onstart:
    executor = getattr(workflow.executor_plugin, "name", None)
    problem = missing_scheduler_commands(executor) or cluster_off_problem(executor, config)
    if problem:
        sys.exit(f"Error: {problem}")
