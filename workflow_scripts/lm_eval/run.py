"""One lm-evaluation-harness job: one policy on the configured tasks (the OpenLLM Leaderboard v2 by default).

The policy is either given (``--policy``: the SFT / base policy) or picked from ``--candidates`` (one per
radius and eta/beta of a variant's runs) by the validation selection (``--selection``, ``--group``). The
harness runs through its Python API (``lm_eval.simple_evaluate``) with the settings the leaderboard uses:
chat template, few-shot examples as a multi-turn conversation, the seeds of lm-eval's CLI, samples logged.

Outputs: ``--out`` (the harness's results, less the samples, plus which policy it evaluated and how) and
``--raw-dir`` with the harness's own files (``<model>/results_<time>.json``, ``samples_<task>_<time>.jsonl``).

    python -m workflow_scripts.lm_eval.run --policy base_policy --tasks leaderboard_ifeval --out r.json --raw-dir raw
    python -m workflow_scripts.lm_eval.run --selection selected.json --group '{"pair": "a+b", "variant": "dpo"}' \\
        --candidates 0/beta0.1=align/a+b/dpo/0/beta0.1/0/policy --seed 0 --tasks ... --out r.json --raw-dir raw
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.cli import run

log = logging.getLogger("workflow_scripts.lm_eval.run")


def selected_policy(selection_path: str, group: dict, candidates: list[str]) -> tuple[str, dict]:
    """The candidate at the (radius, hp) the selection chose for ``group``, and that choice."""
    selection = json.loads(Path(selection_path).read_text())
    matches = [s for s in selection["selected"] if all(str(s[k]) == str(v) for k, v in group.items())]
    if len(matches) != 1:
        raise ValueError(f"{selection_path}: {len(matches)} selections match {group} (expected 1).")
    choice = matches[0]
    options = dict(item.split("=", 1) for item in candidates)
    key = f"{choice['radius']}/{choice['hp']}"
    if key not in options:
        raise ValueError(f"the selection chose {key} for {group}, not among the candidates {sorted(options)}.")
    return options[key], {"radius": choice["radius"], "hp": choice["hp"], "validation_score": choice["score"]}


def uses_chat_template(policy: str, setting: str) -> bool:
    """``true`` needs the tokenizer's chat template (one-line error if it has none); ``auto`` uses it if present."""
    if setting == "false":
        return False
    from transformers import AutoTokenizer

    has = bool(getattr(AutoTokenizer.from_pretrained(policy), "chat_template", None))
    if setting == "true" and not has:
        raise ValueError(f"{policy}: the tokenizer has no chat template, but lm_eval.apply_chat_template is true "
                         "(the leaderboard's setting for chat models); set it to auto or false for base models.")
    return has


def model_arguments(backend: str, policy: str, dtype: str, max_length: int | None, seed: int) -> dict:
    """The harness's ``model_args`` for the hf or vllm backend (bf16 where the GPU has it, else fp32)."""
    from workflow_scripts.core.models import job_device, resolve_dtype

    torch_dtype = resolve_dtype(dtype, job_device())
    args = {"pretrained": policy, "dtype": str(torch_dtype).removeprefix("torch.")}
    if backend == "vllm":
        args.update(seed=seed, gpu_memory_utilization=0.8)
        if max_length:
            args["max_model_len"] = max_length
    elif max_length:
        args["max_length"] = max_length
    return args


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="evaluate this policy (the SFT / base policy)")
    which.add_argument("--selection", help="selected.json of the experiment (with --group, --candidates)")
    p.add_argument("--group", help="JSON: this job's group in the selection, e.g. {pair, variant}")
    p.add_argument("--candidates", nargs="+", default=[], metavar="RADIUS/HP=POLICY")
    p.add_argument("--labels", default="{}", help="JSON recorded with the results (experiment, variant, seed ...)")
    p.add_argument("--seed", type=int, default=0, help="the training seed of the policy (a label)")
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--include-path", default=None, help="a directory of extra task YAMLs")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm"))
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp32", "auto"))
    p.add_argument("--batch-size", default="auto", help="an integer, or auto (the harness finds the largest)")
    p.add_argument("--max-length", type=int, default=None, help="context length (default: the model's)")
    p.add_argument("--apply-chat-template", default="true", choices=("true", "false", "auto"))
    p.add_argument("--fewshot-as-multiturn", default="true", choices=("true", "false"))
    p.add_argument("--limit", type=float, default=None, help="documents per task (<1: a fraction); testing only")
    p.add_argument("--gen-kwargs", default=None, help="JSON overriding every task's generation kwargs")
    p.add_argument("--harness-seeds", type=int, nargs=4, default=[0, 1234, 1234, 1234],
                   metavar=("RANDOM", "NUMPY", "TORCH", "FEWSHOT"), help="lm-eval's --seed (its CLI default)")
    p.add_argument("--log-samples", default="true", choices=("true", "false"))
    p.add_argument("--out", required=True)
    p.add_argument("--raw-dir", required=True)
    a = p.parse_args(argv)
    if a.selection and not (a.group and a.candidates):
        p.error("--selection needs --group and --candidates.")
    return a


def main(argv=None):
    setup_logging()
    a = parse_args(argv)
    labels = json.loads(a.labels)
    if a.policy:
        policy, choice = a.policy, {}
    else:
        policy, choice = selected_policy(a.selection, json.loads(a.group), a.candidates)
    chat = uses_chat_template(policy, a.apply_chat_template)
    fewshot_multiturn = chat and a.fewshot_as_multiturn == "true"
    log.info("lm-eval %s on %s (%s); tasks %s; chat template %s", a.backend, policy, choice or "given", a.tasks, chat)

    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    from workflow_scripts.core.models import job_device

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tracker = EvaluationTracker(output_path=a.raw_dir)
    limit = None if a.limit is None else (int(a.limit) if a.limit >= 1 else a.limit)
    started = time.time()
    results = lm_eval.simple_evaluate(
        model=a.backend,
        model_args=model_arguments(a.backend, policy, a.dtype, a.max_length, a.harness_seeds[0]),
        tasks=a.tasks,
        task_manager=TaskManager(include_path=a.include_path),
        device=str(job_device()) if a.backend == "hf" else None,
        batch_size=a.batch_size,
        apply_chat_template=chat,
        fewshot_as_multiturn=fewshot_multiturn,
        limit=limit,
        gen_kwargs=json.loads(a.gen_kwargs) if a.gen_kwargs else None,
        log_samples=a.log_samples == "true",
        evaluation_tracker=tracker,
        random_seed=a.harness_seeds[0], numpy_random_seed=a.harness_seeds[1],
        torch_random_seed=a.harness_seeds[2], fewshot_random_seed=a.harness_seeds[3],
    )
    seconds = time.time() - started
    samples = results.pop("samples", None)
    tracker.save_results_aggregated(results=results, samples=samples)
    if samples:
        for task in results["configs"]:
            tracker.save_results_samples(task_name=task, samples=samples[task])
    record = json.loads(json.dumps(results, default=handle_non_serializable))
    record["dro_rebel"] = {**labels, "seed": a.seed, **choice, "policy_path": policy, "backend": a.backend,
                           "chat_template": chat, "fewshot_as_multiturn": fewshot_multiturn,
                           "harness_seconds": round(seconds, 1)}
    write_json_atomic(a.out, record)
    log.info("%s: %s", labels, {t: {k: v for k, v in m.items() if "stderr" not in k}
                                for t, m in record["results"].items()})


if __name__ == "__main__":
    run(main)
