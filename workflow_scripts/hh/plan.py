"""The planner's view of the HH experiment (docs/planning.md): which work family each of its rules is, what
the family needs for one job (models, config section, example counts, lengths), and its split sizes.

Read by ``workflow_scripts/tools/plan`` through ``core.experiments``; imports nothing heavy."""
from __future__ import annotations

from workflow_scripts.tools.plan.inputs import (AlignInputs, Context, RewardInputs, SamplingInputs, SftInputs,
                                                evaluation)
from workflow_scripts.tools.plan.shapes import Shape, shape_of
from workflow_scripts.tools.plan.sizes import Splits, dataset_stats


def splits(config: dict, table: dict) -> Splits:
    """Dialogues of every subset (generated, or the hub dataset's after the tokenizer filter), capped per
    subset by ``data.n_train`` / ``n_test``; ``n_validation`` per subset are held out of training."""
    cfg, block = config["hh"], table["datasets"]["hh"]
    d = cfg["data"]
    subsets = d["subsets"]
    if d["source"] == "generated":
        stats = block["generated"]
        per_train = {s: d["generate"]["n_train"] for s in subsets}
        per_test = {s: d["generate"]["n_test"] for s in subsets}
    else:
        stats, _ = dataset_stats(table, "hh", d["source"])
        keep = stats["keep_fraction"] if d.get("filter_tokenizer") else 1.0
        per_train = {s: int(stats["train"][s] * keep) for s in subsets}
        per_test = {s: int(stats["test"][s] * keep) for s in subsets}
    kept = sum(min(n, d["n_train"]) if d["n_train"] else n for n in per_train.values())
    train = kept - d["n_validation"] * len(subsets)
    test = sum(min(n, d["n_test"]) if d["n_test"] else n for n in per_test.values())
    prompt = min(stats["prompt_tokens"], d["max_prompt_tokens"])
    return Splits(train, d["n_validation"] * len(subsets), test, prompt, stats["dialogue_tokens"],
                  block["response_fraction"])


def _split(ctx: Context) -> Splits:
    return ctx.memo("hh.splits", lambda: splits(ctx.config, ctx.table))


def policy(ctx: Context, name: str) -> Shape:
    """The policy of the model-size axis named ``name`` (the jobs' ``policy`` wildcard)."""
    cfg = ctx.config["hh"]
    spec = next(p["model"] for p in cfg["policies"] if p["name"] == name)
    return shape_of(spec, cfg["tokenizer_vocab_size"], f"hh policy {name}")


def reward_models(ctx: Context) -> tuple:
    """One reward model per subset (objective), in the order of ``reward_models.subsets``."""
    rm = ctx.config["hh"]["reward_models"]
    if rm["source"] == "pretrained":
        return tuple(shape_of(rm["pretrained"][o], name=o) for o in rm["subsets"])
    vocab = ctx.config["hh"]["tokenizer_vocab_size"] if rm["tokenizer"] == "train-bpe" else None
    return tuple(shape_of(rm["model"], vocab, f"hh reward model {o}") for o in rm["subsets"])


def sft(ctx: Context, job) -> SftInputs:
    split = _split(ctx)
    return SftInputs(policy(ctx, job.wildcards["policy"]), ctx.config["hh"]["sft"], "hh.sft", split.train,
                     split.validation, split.text_tokens)


def reward(ctx: Context, job) -> RewardInputs:
    """Bradley-Terry on one subset's pairs: both dialogues of each (2 sequences per item)."""
    rm, split = ctx.config["hh"]["reward_models"], _split(ctx)
    subsets = list(rm["subsets"])
    cfg = rm["train"]
    return RewardInputs(reward_models(ctx)[subsets.index(job.wildcards["objective"])], cfg,
                        "hh.reward_models.train", 2 * split.train / len(subsets),
                        min(cfg["max_length"], split.text_tokens), per_item=2)


def completions(ctx: Context, job) -> SamplingInputs:
    """``completions.n`` samples per training prompt from the SFT policy, scored by every reward model."""
    c, split = ctx.config["hh"]["completions"], _split(ctx)
    return SamplingInputs(policy(ctx, job.wildcards["policy"]), reward_models(ctx), split.train * c["n"],
                          split.prompt_tokens, c["max_new_tokens"], split.response_fraction,
                          c["batch_size"] * c["n"], per_prompt=c["n"])


def align(ctx: Context, job) -> AlignInputs:
    """Offline only; the ``scale`` wildcard caps the training pairs (``all``: every one)."""
    block, split = ctx.config["hh"], _split(ctx)
    scale = 0 if job.wildcards["scale"] == "all" else int(job.wildcards["scale"])
    return AlignInputs(policy(ctx, job.wildcards["policy"]), block["align"], block["losses"], "hh.align",
                       scale or split.train, split.prompt_tokens, block["completions"]["max_new_tokens"],
                       split.response_fraction)


def evaluate(ctx: Context, job) -> SamplingInputs:
    cfg = ctx.config["hh"]["evaluate"]
    split = _split(ctx)
    return evaluation(cfg, split, policy(ctx, job.wildcards["policy"]), reward_models(ctx), split.prompt_tokens,
                      cfg["batch_size"] * cfg["samples_per_prompt"])


RULES = {
    "hh_sft": ("sft", sft),
    "hh_reward_model": ("reward", reward),
    "hh_completions": ("generate", completions),
    "hh_align": ("align", align),
    "hh_evaluate": ("evaluate", evaluate),
    "hh_evaluate_sft": ("evaluate", evaluate),
}
