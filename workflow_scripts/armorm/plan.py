"""The planner's view of the ArmoRM experiment (docs/planning.md): which work family each of its rules is,
what the family needs for one job (models, config section, example counts, lengths), and its split sizes.

Read by ``workflow_scripts/tools/plan`` through ``core.experiments``; imports nothing heavy."""
from __future__ import annotations

from workflow_scripts.tools.plan.inputs import AlignInputs, Context, SamplingInputs, evaluation
from workflow_scripts.tools.plan.shapes import Shape, shape_of
from workflow_scripts.tools.plan.sizes import Splits, dataset_stats


def splits(config: dict, table: dict) -> Splits:
    """Prompts (generated, or the hub dataset's unique prompts, capped by ``prompts.n_train`` / ``n_test``);
    ``n_validation`` training prompts are held out; a prompt is cut at ``max_prompt_tokens`` and wrapped in
    the chat template."""
    cfg, block = config["armorm"], table["datasets"]["armorm"]
    p = cfg["prompts"]
    if p["source"] == "generated":
        stats = block["generated"]
        train, test = p["n_train"], p["n_test"]
    else:
        stats, _ = dataset_stats(table, "armorm", p["source"])
        train = p["n_train"] or stats["train"]
        test = p["n_test"] or stats["test"]
    prompt = min(stats["prompt_tokens"], cfg["completions"]["max_prompt_tokens"]) + block["template_tokens"]
    return Splits(train - p["n_validation"], p["n_validation"], test, prompt, prompt, block["response_fraction"])


def _split(ctx: Context) -> Splits:
    return ctx.memo("armorm.splits", lambda: splits(ctx.config, ctx.table))


def policy(ctx: Context) -> Shape:
    cfg = ctx.config["armorm"]
    return shape_of(cfg["policy_model"], cfg["tokenizer_vocab_size"], "armorm policy")


def reward_model(ctx: Context) -> Shape:
    """ArmoRM (or its stand-in), on the policy's vocabulary."""
    return shape_of(ctx.config["armorm"]["reward_model"], policy(ctx).vocab, "armorm reward model")


def completions(ctx: Context, job) -> SamplingInputs:
    """``completions.n`` samples per training prompt from the base policy (scored by the next rule)."""
    c, split = ctx.config["armorm"]["completions"], _split(ctx)
    return SamplingInputs(policy(ctx), (), split.train * c["n"], split.prompt_tokens, c["max_new_tokens"],
                          split.response_fraction, c["batch_size"] * c["n"], per_prompt=c["n"])


def scores(ctx: Context, job) -> SamplingInputs:
    """ArmoRM's scores of every completion, cut at ``scoring.max_length``."""
    cfg, split = ctx.config["armorm"], _split(ctx)
    c, s = cfg["completions"], cfg["scoring"]
    return SamplingInputs(None, (reward_model(ctx),), split.train * c["n"], split.prompt_tokens,
                          c["max_new_tokens"], split.response_fraction, s["batch_size"],
                          score_max_length=s["max_length"])


def _align(online: bool):
    def inputs(ctx: Context, job) -> AlignInputs:
        block, split = ctx.config["armorm"], _split(ctx)
        section = block["online"]["align"] if online else block["align"]
        return AlignInputs(policy(ctx), section, block["losses"], "armorm.online.align" if online else "armorm.align",
                           split.train, split.prompt_tokens, block["completions"]["max_new_tokens"],
                           split.response_fraction, scorer=reward_model(ctx))
    return inputs


def evaluate(ctx: Context, job) -> SamplingInputs:
    cfg = ctx.config["armorm"]["evaluate"]
    split = _split(ctx)
    return evaluation(cfg, split, policy(ctx), (reward_model(ctx),), split.prompt_tokens,
                      cfg["batch_size"] * cfg["samples_per_prompt"])


RULES = {
    "armorm_completions": ("generate", completions),
    "armorm_scores": ("generate", scores),
    "armorm_align": ("align", _align(online=False)),
    "armorm_align_online": ("align", _align(online=True)),
    "armorm_evaluate": ("evaluate", evaluate),
    "armorm_evaluate_base": ("evaluate", evaluate),
    "armorm_evaluate_online": ("evaluate", evaluate),
}
