"""Speed of the REAL alignment step, every variant side by side: tokens/s, step time, MFU, peak memory.

    python -m workflow_scripts.tools.bench_align                                   # CPU, tiny shape, seconds
    python -m workflow_scripts.tools.bench_align --shape llama-3.2-1b --seq-len 2048 --prompt-len 1024 \\
        --micro-batch 4 --global-batch 16 --steps 4                                 # the paper's ArmoRM step
    python -m workflow_scripts.tools.bench_align --shape gpt2-124m --seq-len 68 --prompt-len 4 --vs-trl

What is timed is the production path, not a copy: a random-init model of the given shape is saved
once, then for each variant :class:`workflow_scripts.core.train.align.Aligner` is built on it exactly
as an alignment job builds it (DeepSpeed engine, ZeRO-2, bf16 autocast with fp32 master weights on a
GPU, the variant's attention kernel: fused SDPA, eager for the Wasserstein variants; optional
gradient checkpointing) and its ``optimizer_step`` runs on synthetic pairs whose prompt and
responses have exactly the requested lengths (every token real, no padding). The reference
log-probs are computed by the Aligner at start-up (once per sample, as in a job) and reported apart.

Per variant: median step time over ``--steps`` timed steps (after ``--warmup``), tokens/s
(2 x global batch x seq-len per step), **MFU** = model FLOPs per step / step time / the device's
dense bf16 peak (``--peak-tflops``, else looked up from the GPU's name: H100/H200 989, A100 312 ...),
peak memory (CUDA: ``max_memory_allocated``; CPU: the process's max RSS, which only grows), and
the ratio of its step time to its base's (REBEL or DPO). Model FLOPs per step count the algorithm,
not our shortcuts: 6 x (trunk parameters) per token, 6 x hidden x vocab per scored (response)
token for the LM head (our forward runs the head only there), and 12 x layers x hidden x seq-len
per token for attention (forward + backward; PaLM's convention). The robust variants' extra
passes (statistics pass, double backward) are overhead, so their MFU is lower by their ratio.

``--vs-trl`` also times TRL's ``DPOTrainer`` (the ``bench`` extra: ``pip install -e '.[bench]'``;
never a runtime dependency) on the same model, batch and lengths in a child process, and prints
its step time next to ours. Nothing is asserted about speed: this prints figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from workflow_scripts.core.cli import run

#: Model shapes (random weights; parameter counts checked against the real models in tests).
SHAPES = {
    "tiny": {"architecture": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 4096, "vocab_size": 512},
    "gpt2-124m": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257},
    "llama-3.2-1b": {"architecture": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                     "max_position_embeddings": 4096, "rope_theta": 500000.0, "tie_word_embeddings": True,
                     "vocab_size": 128256},
    "qwen2.5-1.5b": {"architecture": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                     "rope_theta": 1000000.0, "tie_word_embeddings": True, "vocab_size": 151936},
}
#: Dense bf16 peak TFLOP/s (no sparsity) by a substring of the CUDA device name.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "GH200": 989.0, "A100": 312.0, "A800": 312.0,
               "L40S": 362.0, "L40": 181.0, "A10": 125.0, "L4": 121.0, "V100": 125.0, "RTX 4090": 165.0,
               "B200": 2250.0}
VARIANTS = ["rebel", "kl-rebel", "chi2-rebel", "w-rebel", "dpo", "kl-dpo", "chi2-dpo", "wdpo"]
RADIUS = {"none": 0.0, "kl": 0.5, "chi2": 0.5, "wasserstein": 0.01}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", help=f"one of {sorted(SHAPES)}, or a JSON model spec")
    p.add_argument("--seq-len", type=int, default=64, help="prompt + response tokens of every sequence")
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--micro-batch", type=int, default=4, help="pairs per micro-batch")
    p.add_argument("--global-batch", type=int, default=8, help="pairs per optimizer step")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--variants", nargs="+", default=VARIANTS)
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    p.add_argument("--gradient-checkpointing", default="false", choices=("true", "false"))
    p.add_argument("--wasserstein-form", default="pointwise", choices=("sqrt_mean", "pointwise"))
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: looked up)")
    p.add_argument("--vs-trl", action="store_true", help="also time TRL's DPOTrainer on the same step (bench extra)")
    p.add_argument("--json", help="also write the results as JSON here")
    a = p.parse_args(argv)
    if a.prompt_len >= a.seq_len:
        p.error("--prompt-len must be shorter than --seq-len.")
    return a


def model_spec(shape: str) -> dict:
    if shape in SHAPES:
        return dict(SHAPES[shape])
    try:
        return json.loads(shape)
    except json.JSONDecodeError:
        raise SystemExit(f"--shape: not one of {sorted(SHAPES)} nor a JSON model spec: {shape!r}") from None


def device_peak(explicit: float | None) -> tuple[float | None, str]:
    """(peak TFLOP/s, device name) for the MFU; None on a CPU unless given."""
    import torch

    if not torch.cuda.is_available():
        return explicit, "cpu"
    name = torch.cuda.get_device_name(0)
    if explicit is not None:
        return explicit, name
    for key, value in sorted(PEAK_TFLOPS.items(), key=lambda kv: -len(kv[0])):
        if key in name:
            return value, name
    return None, name


def build_inputs(spec: dict, workdir: Path, a) -> tuple[Path, Path, dict]:
    """A random-init policy (saved like an SFT model) and pairs with exact lengths; its FLOP counts."""
    import torch
    from transformers import PreTrainedTokenizerFast

    from workflow_scripts.core.models import build_causal_lm
    from workflow_scripts.core.pairs import make_pairs
    from workflow_scripts.core.tokenizer import byte_level_bpe

    texts = [f"bench text {i} of the alignment step" for i in range(64)]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(texts, 300, ["<|endoftext|>"]),
                                        eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    model = build_causal_lm(spec, tokenizer, seed=0)
    config = model.config
    vocab = config.vocab_size
    embed = model.get_input_embeddings().weight.numel()
    trunk = sum(p.numel() for p in model.parameters()) - embed - (
        0 if config.tie_word_embeddings else model.get_output_embeddings().weight.numel())
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    policy = workdir / "policy"
    model.save_pretrained(policy, safe_serialization=True)
    tokenizer.save_pretrained(policy)
    del model
    rng = np.random.default_rng(0)
    n = a.global_batch * (a.steps + a.warmup)
    low = 1  # token 0 is the tokenizer's EOS / pad; real ids only
    draw = lambda k: rng.integers(low, len(tokenizer), size=k).tolist()  # noqa: E731
    response = a.seq_len - a.prompt_len
    prompts = [draw(a.prompt_len) for _ in range(n)]
    frame = make_pairs(prompts, [draw(response) for _ in range(n)], [draw(response) for _ in range(n)],
                       rng.normal(size=n), rng.normal(size=n), (rng.random(n) < 0.5).astype(int))
    pairs = workdir / "pairs.parquet"
    frame.to_parquet(pairs, index=False)
    sequences = 2 * a.global_batch
    flops = sequences * (6 * trunk * a.seq_len + 6 * hidden * vocab * response + 12 * layers * hidden * a.seq_len ** 2)
    counts = {"parameters": int(trunk + embed + (0 if config.tie_word_embeddings else vocab * hidden)),
              "trunk_parameters": int(trunk), "vocab": int(vocab), "hidden": int(hidden), "layers": int(layers),
              "model_flops_per_step": float(flops), "tokens_per_step": sequences * a.seq_len}
    torch.manual_seed(0)
    return policy, pairs, counts


def time_variant(variant: str, policy: Path, pairs: Path, out: Path, a) -> dict:
    """The Aligner of one variant, its reference pass, then warm-up and timed optimizer steps."""
    import torch

    from workflow_scripts.core.losses import get_variant
    from workflow_scripts.core.losses.registry import BASE_HPARAM
    from workflow_scripts.core.train.align import Aligner, parse_args as align_args

    spec = get_variant(variant)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    aligner = Aligner(align_args([
        "--pairs", str(pairs), "--policy", str(policy), "--out", str(out / variant), "--variant", variant,
        "--radius", str(RADIUS[spec.ambiguity]), "--seed", "0", "--epochs", "1",
        "--iteration-batch", str(a.global_batch), "--global-batch", str(a.global_batch),
        "--micro-batch", str(a.micro_batch), "--lr", "1e-6", "--warmup-ratio", "0", "--max-length", str(a.seq_len),
        "--precision", a.precision, "--gradient-checkpointing", a.gradient_checkpointing,
        "--wasserstein-form", a.wasserstein_form, f"--{BASE_HPARAM[spec.base]}", "0.1"]))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    setup = time.perf_counter() - started
    times = []
    for t in range(a.warmup + a.steps):
        idx = aligner.offline_iteration(t)
        batch = aligner.offline_pairs.take(idx)
        reference = aligner.reference_table[torch.as_tensor(idx)]
        micro = aligner.plan.micro_batches(aligner.plan.minibatches(t, 0)[0], aligner.rank)
        sync()
        start = time.perf_counter()
        aligner.optimizer_step(batch, reference, reference, micro)
        sync()
        if t >= a.warmup:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**30 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    result = {"variant": variant, "base": spec.base, "set": spec.ambiguity, "attention": aligner.attention,
              "step_s": statistics.median(times), "steps": len(times), "setup_s": setup, "peak_gib": peak,
              "precision": aligner.precision, "grad_accum": aligner.split.grad_accum}
    del aligner
    return result


def trl_step_time(policy: Path, a) -> float | None:
    """TRL DPOTrainer's median step time on the same model / batch / lengths, in a child process."""
    code = f"""
import json, statistics, time, sys
import numpy as np, torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer
tok = AutoTokenizer.from_pretrained({str(policy)!r})
# TRL tokenizes text itself: characters absent from the BPE's corpus are one byte-token each and never
# merge, so these strings have exactly the lengths our synthetic pairs have (TRL adds one EOS).
n = {a.global_batch} * ({a.steps} + {a.warmup} + 1)
for ch, k in (("Q", {a.prompt_len}), ("Z", {a.seq_len - a.prompt_len}), ("X", {a.seq_len - a.prompt_len})):
    assert len(tok(ch * k, add_special_tokens=False)["input_ids"]) == k, ch
rows = {{"prompt": ["Q" * {a.prompt_len}] * n, "chosen": ["Z" * {a.seq_len - a.prompt_len}] * n,
        "rejected": ["X" * {a.seq_len - a.prompt_len}] * n}}
model = AutoModelForCausalLM.from_pretrained({str(policy)!r}, attn_implementation="sdpa")
times = []
class Clock(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        (torch.cuda.synchronize() if torch.cuda.is_available() else None); self.t = time.perf_counter()
    def on_step_end(self, args, state, control, **kw):
        (torch.cuda.synchronize() if torch.cuda.is_available() else None); times.append(time.perf_counter() - self.t)
bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported() and {a.precision!r} != "fp32"
cfg = DPOConfig(output_dir={str(policy.parent / "trl")!r}, per_device_train_batch_size={a.micro_batch},
                gradient_accumulation_steps={a.global_batch // a.micro_batch}, max_steps={a.steps + a.warmup},
                learning_rate=1e-6, beta=0.1, bf16=bf16, logging_steps=1000, save_strategy="no", report_to=[],
                max_length={a.seq_len + 1}, precompute_ref_log_probs=True,
                gradient_checkpointing={a.gradient_checkpointing == "true"}, dataloader_num_workers=0)
trainer = DPOTrainer(model=model, args=cfg, train_dataset=Dataset.from_dict(rows), processing_class=tok,
                     callbacks=[Clock()])
trainer.train()
print(json.dumps({{"trl_step_s": statistics.median(times[{a.warmup}:])}}))
"""
    # a single-process child: not the rendezvous this process set up for its own DeepSpeed engines
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        if "No module named 'trl'" in result.stderr:
            print("--vs-trl: TRL is not installed (pip install -e '.[bench]'); skipped.", file=sys.stderr)
        else:
            print(f"--vs-trl: TRL run failed:\n{result.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["trl_step_s"]


def report(results: list[dict], counts: dict, peak: float | None, device: str, a, trl: float | None) -> str:
    base_time = {r["variant"]: r["step_s"] for r in results if r["set"] == "none"}
    lines = [f"bench_align: {device}; shape {a.shape} ({counts['parameters'] / 1e6:.1f}M parameters, vocab "
             f"{counts['vocab']}); {a.global_batch} pairs/step as {a.micro_batch}-pair micro-batches, "
             f"seq-len {a.seq_len} (prompt {a.prompt_len}); {counts['tokens_per_step']} tokens/step; "
             f"gradient checkpointing {a.gradient_checkpointing}; peak "
             + (f"{peak:g} TFLOP/s" if peak else "unknown (MFU n/a)"),
             f"{'variant':<11} {'attention':<9} {'step_s':>8} {'tokens/s':>10} {'MFU':>6} {'peak_GiB':>9} "
             f"{'vs_base':>8}"]
    for r in results:
        tokens = counts["tokens_per_step"] / r["step_s"]
        mfu = counts["model_flops_per_step"] / r["step_s"] / (peak * 1e12) if peak else None
        base = base_time.get(r["base"])
        mfu_text = f"{mfu:.1%}" if mfu is not None else "n/a"
        ratio_text = f"{r['step_s'] / base:.2f}x" if base else "n/a"
        lines.append(f"{r['variant']:<11} {r['attention']:<9} {r['step_s']:>8.4f} {tokens:>10.1f} "
                     f"{mfu_text:>6} {r['peak_gib']:>9.2f} {ratio_text:>8}")
    if trl is not None and "dpo" in base_time:
        lines.append(f"TRL DPOTrainer step {trl:.4f}s; ours (dpo) {base_time['dpo']:.4f}s: ours/TRL "
                     f"{base_time['dpo'] / trl:.2f}x (< 1 = faster)")
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(argv)
    import torch

    spec = model_spec(a.shape)
    peak, device = device_peak(a.peak_tflops)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="bench_align_") as tmp:
        tmp = Path(tmp)
        policy, pairs, counts = build_inputs(spec, tmp, a)
        results = []
        for variant in a.variants:
            results.append(time_variant(variant, policy, pairs, tmp / "runs", a))
            print(f"  {variant}: {results[-1]['step_s']:.4f} s/step", file=sys.stderr, flush=True)
        trl = trl_step_time(policy, a) if a.vs_trl else None
    text = report(results, counts, peak, device, a, trl)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"device": device, "peak_tflops": peak, "counts": counts,
                                            "args": vars(a), "results": results, "trl_step_s": trl,
                                            "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    run(main)
