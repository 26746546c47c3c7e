"""The planner's view of the emotion experiment (docs/planning.md): which work family each of its rules is,
what the family needs for one job (models, config section, example counts, lengths), and its split sizes.

Read by ``workflow_scripts/tools/plan`` through ``core.experiments``; imports nothing heavy."""
from __future__ import annotations

from workflow_scripts.tools.plan.inputs import (AlignInputs, Context, RewardInputs, SamplingInputs, SftInputs,
                                                evaluation)
from workflow_scripts.tools.plan.shapes import Shape, shape_of
from workflow_scripts.tools.plan.sizes import Splits, dataset_stats

#: Sequences per step on a CPU: the pair sampler's 64 prompts x 2 completions, the evaluation's 64
#: (the --batch-size default both jobs take from workflow_scripts.emotion.pairs.add_continuation_args).
PAIRS_BATCH, EVALUATE_BATCH = 128, 64


def splits(config: dict, table: dict) -> Splits:
    """The generated corpus's sizes from the config, a hub dataset's (or the local copy's) from the table;
    prompts are the texts' first ``pairs.prompt_tokens`` tokens."""
    cfg = config["emotion"]
    frac = table["datasets"]["emotion"]["response_fraction"]
    if cfg["dataset"] == "generated":
        gen = cfg["generate_dataset"]
        stats = table["datasets"]["emotion"]["generated"]
        return Splits(gen["n_train"], gen["n_validation"], gen["n_test"], cfg["pairs"]["prompt_tokens"],
                      stats["text_tokens"], frac)
    stats, _ = dataset_stats(table, "emotion", cfg["dataset"])
    return Splits(stats["train"], stats["validation"], stats["test"], cfg["pairs"]["prompt_tokens"],
                  stats["text_tokens"], frac)


def _split(ctx: Context) -> Splits:
    return ctx.memo("emotion.splits", lambda: splits(ctx.config, ctx.table))


def _shape(ctx: Context, key: str, name: str) -> Shape:
    cfg = ctx.config["emotion"]
    vocab = cfg["tokenizer_vocab_size"] if cfg["tokenizer"] == "train-bpe" else None
    return shape_of(cfg[key], vocab, name)


def policy(ctx: Context) -> Shape:
    return _shape(ctx, "policy_model", "emotion policy")


def reward_model(ctx: Context) -> Shape:
    return _shape(ctx, "reward_model", "emotion reward model")


def sft(ctx: Context, job) -> SftInputs:
    split = _split(ctx)
    return SftInputs(policy(ctx), ctx.config["emotion"]["sft"], "emotion.sft", split.train, split.validation,
                     split.text_tokens)


def reward(ctx: Context, job) -> RewardInputs:
    """The multi-label classifier trains on texts concatenated up to ``max_concat`` (unless ``p_single`` is 1)."""
    cfg, split = ctx.config["emotion"]["reward"], _split(ctx)
    concat = 1.0 if cfg.get("p_single") == 1 else (1 + cfg["max_concat"]) / 2
    return RewardInputs(reward_model(ctx), cfg, "emotion.reward", split.train,
                        min(cfg["max_length"], split.text_tokens * concat))


def pairs(ctx: Context, job) -> SamplingInputs:
    """Two completions per prompt from the SFT policy, both scored by the reward model."""
    cfg, split = ctx.config["emotion"]["pairs"], _split(ctx)
    return SamplingInputs(policy(ctx), (reward_model(ctx),), 2 * (cfg["n_prompts"] or split.train),
                          cfg["prompt_tokens"], cfg["max_new_tokens"], split.response_fraction, PAIRS_BATCH,
                          per_prompt=2)


def _align(online: bool):
    def inputs(ctx: Context, job) -> AlignInputs:
        block, split = ctx.config["emotion"], _split(ctx)
        section = block["online"]["align"] if online else block["align"]
        return AlignInputs(policy(ctx), section, block["losses"], "emotion.online.align" if online else "emotion.align",
                           block["pairs"]["n_prompts"] or split.train, block["pairs"]["prompt_tokens"],
                           block["pairs"]["max_new_tokens"], split.response_fraction, scorer=reward_model(ctx))
    return inputs


def evaluate(ctx: Context, job) -> SamplingInputs:
    block = ctx.config["emotion"]
    return evaluation(block["evaluate"], _split(ctx), policy(ctx), (reward_model(ctx),),
                      block["pairs"]["prompt_tokens"], EVALUATE_BATCH)


RULES = {
    "emotion_sft": ("sft", sft),
    "emotion_reward_model": ("reward", reward),
    "emotion_pairs": ("generate", pairs),
    "emotion_align": ("align", _align(online=False)),
    "emotion_align_online": ("align", _align(online=True)),
    "emotion_evaluate": ("evaluate", evaluate),
    "emotion_evaluate_sft": ("evaluate", evaluate),
    "emotion_evaluate_online": ("evaluate", evaluate),
}
