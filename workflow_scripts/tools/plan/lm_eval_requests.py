"""What an lm-eval task makes a model compute, from the harness's own requests (a dry pass: no model).

The harness scores a multiple-choice document with one log-likelihood request per choice. Its HF model
shares the context's forward among a document's requests only when every continuation is ONE token
(``lm_eval.models.huggingface``: requests grouped by context, the last token's logits read once); with
longer continuations (BBH / GPQA ``(A)``, MuSR's text answers) each choice is its own forward of context +
continuation, k times the context. This module builds a task's requests exactly as ``simple_evaluate`` does
(``Task.build_all_requests``), tokenizes them, and counts per document:

- ``forward_tokens_per_doc``: the tokens the log-likelihood forwards process (shared or not, as above; the
  harness feeds ``(context + continuation)[:-1]``) plus the generative requests' contexts;
- ``context_tokens``: the mean context (prompt) length; ``requests_per_doc``: requests per document;
- ``generated_tokens``: generative tasks' ``max_gen_toks`` (an upper bound: generation stops early).

    python -m workflow_scripts.tools.plan.lm_eval_requests --tasks leaderboard_gpqa leaderboard_musr \\
        --tokenizer meta-llama/Llama-3.2-1B-Instruct [--include-path DIR] [--limit 50]

prints one ``lm_eval_tasks`` entry per task for ``workflow_scripts/tools/throughput.yaml`` (the planner's
lm-eval work model reads ``forward_tokens_per_doc``). It needs the tasks' datasets (the hub, or a local
cache): run it where they are.
"""
from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from workflow_scripts.core.cli import run


def leaf_tasks(names, include_path=None) -> dict:
    """The harness's task objects for ``names`` (groups expanded to their subtasks)."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path)
    loaded = manager.load_task_or_group(list(names))

    def walk(node):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value)
            else:
                yield getattr(key, "group_name", key) if not isinstance(key, str) else key, value

    return dict(walk(loaded))


def request_statistics(task, tokenizer, limit=None, max_length: int | None = None) -> dict:
    """The counts above for one task object (its requests built as ``simple_evaluate`` builds them); inputs
    longer than ``max_length`` (the model's context) are cut to their last ``max_length`` tokens, as the
    harness cuts them."""
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc: dict = defaultdict(list)
    generated = []
    for inst in task.instances:
        by_doc[inst.doc_id].append(inst)
    encode = lambda text: tuple(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    cut = (lambda ids: ids[-max_length:]) if max_length else (lambda ids: ids)  # noqa: E731
    forward, contexts, requests = [], [], []
    for doc, instances in by_doc.items():
        requests.append(len(instances))
        # the harness feeds (context + continuation)[:-1] (the last token is only predicted) and runs each
        # distinct input once: a document whose continuations are all one token shares its context's forward
        inputs = set()
        for i in instances:
            if i.request_type == "loglikelihood":
                context = encode(i.arguments[0])
                contexts.append(len(context))
                inputs.add(cut((context + encode(i.arguments[1]))[:-1]))
            elif i.request_type == "generate_until":
                context = encode(i.arguments[0])
                contexts.append(len(context))
                inputs.add(cut(context))
                generated.append(int(i.arguments[1].get("max_gen_toks", 256)))
        forward.append(sum(len(ids) for ids in inputs))
    n = max(1, len(by_doc))
    return {"docs": len(by_doc), "requests_per_doc": round(sum(requests) / n, 3),
            "context_tokens": round(sum(contexts) / max(1, len(contexts)), 1),
            "forward_tokens_per_doc": round(sum(forward) / n, 1),
            "generated_tokens": round(sum(generated) / len(generated)) if generated else 0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--tokenizer", required=True, help="the policy's tokenizer (hub id or directory)")
    p.add_argument("--include-path", default=None)
    p.add_argument("--limit", type=int, default=None, help="documents per task (a sample of long tasks)")
    p.add_argument("--max-length", type=int, default=None, help="the model's context (longer inputs are cut)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    from transformers import AutoTokenizer

    logging.basicConfig(level=logging.WARNING)
    a = parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(a.tokenizer)
    for name, task in leaf_tasks(a.tasks, a.include_path).items():
        s = request_statistics(task, tokenizer, a.limit, a.max_length)
        print(f"  {name}: {{docs: {s['docs']}, context_tokens: {s['context_tokens']}, generated_tokens: "
              f"{s['generated_tokens']}, requests_per_doc: {s['requests_per_doc']}, forward_tokens_per_doc: "
              f"{s['forward_tokens_per_doc']}, source: dry pass}}")


if __name__ == "__main__":
    run(main)
