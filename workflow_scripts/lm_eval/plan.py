"""The planner's view of the lm-eval stage (docs/planning.md): each harness run is the ``lm_eval`` work
family on one policy, with the tasks' statistics of the throughput table (``lm_eval_tasks``).

The policies are the ArmoRM and HH experiments'; their shapes are read from those experiments' config
sections, as the selection files travel between stages: this package imports no experiment."""
from __future__ import annotations

from workflow_scripts.tools.plan.inputs import Context, LmEvalInputs
from workflow_scripts.tools.plan.shapes import Shape, shape_of


def _armorm_policy(ctx: Context, job) -> Shape:
    cfg = ctx.config["armorm"]
    return shape_of(cfg["policy_model"], cfg["tokenizer_vocab_size"], "armorm policy")


def _hh_policy(ctx: Context, job) -> Shape:
    cfg, name = ctx.config["hh"], job.wildcards["policy"]
    spec = next(p["model"] for p in cfg["policies"] if p["name"] == name)
    return shape_of(spec, cfg["tokenizer_vocab_size"], f"hh policy {name}")


def _run(policy_of):
    def inputs(ctx: Context, job) -> LmEvalInputs:
        """The configured tasks less ``skip_tasks`` (the mini preset: its demo task), their documents capped
        by ``limit``; an integer ``batch_size`` is fixed, ``auto`` lets the harness size its batches."""
        cfg, stats = ctx.config["lm_eval"], ctx.table["lm_eval_tasks"]
        names = ["demo"] if cfg["demo_task"] else [t for t in cfg["tasks"] if t not in (cfg.get("skip_tasks") or [])]
        return LmEvalInputs(policy_of(ctx, job), tuple((n, stats.get(n)) for n in names), cfg.get("limit"),
                            cfg["batch_size"] if isinstance(cfg["batch_size"], int) else None,
                            cfg.get("backend", "hf"))
    return inputs


RULES = {
    "lm_eval_armorm": ("lm_eval", _run(_armorm_policy)),
    "lm_eval_armorm_base": ("lm_eval", _run(_armorm_policy)),
    "lm_eval_hh": ("lm_eval", _run(_hh_policy)),
    "lm_eval_hh_sft": ("lm_eval", _run(_hh_policy)),
}
