"""The start of every job that samples from a policy (pairs, completions, evaluation): logging, the flags,
the seeds, this process's device and the policy's tokenizer, in this order in every such job."""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

from workflow_scripts.core.io import setup_logging
from workflow_scripts.core.models import job_device, load_tokenizer
from workflow_scripts.core.runinfo import seed_everything


def start_policy_job(parse_args: Callable[[Sequence[str] | None], argparse.Namespace], argv=None):
    """``(args, device, tokenizer)``: the parsed flags (``--seed`` seeds every generator; ``--policy`` names
    the policy whose tokenizer loads), the device of :func:`~workflow_scripts.core.models.job_device`."""
    setup_logging()
    a = parse_args(argv)
    seed_everything(a.seed)
    return a, job_device(), load_tokenizer(a.policy)
