"""Cost of one optimizer step for every loss variant, on a random-init GPT-2-architecture model.

    python -m workflow_scripts.tools.bench_losses                       # CPU defaults, ~1-2 minutes
    python -m workflow_scripts.tools.bench_losses --preset gpt2-124m --device cuda --dtype bf16
    python -m workflow_scripts.tools.bench_losses --accumulation 4      # the global batch as 4 micro-batches

With ``--accumulation K`` the batch is the global batch of one optimizer step, split into K
micro-batches, and every variant is timed twice: the workflow's **exact** step (a statistics
pass over all K micro-batches fixes the robust weights / Wasserstein normaliser of the whole
global batch, then K gradient micro-steps) and the **old** per-micro-step step (each micro-batch
weighted on its own, which changes the meaning of a radius with the split). The table then shows
both times and their ratio; the ratio to the base uses the exact step.

One step = forward on the chosen + rejected sequences (one batch of 2B rows), sequence
log-probs of the response tokens, per-sample base losses, the robust objective, backward,
AdamW step. The anchor / reference log-probs and the rewards are fixed tensors computed
before timing (a frozen reference forward is the same for every variant).

All variants use eager attention here, so the ratios isolate the LOSSES' cost (like with
like). The workflow itself runs the fused kernel (SDPA) for every variant but the Wasserstein
ones, whose double backward needs eager: ``workflow_scripts.tools.bench_align`` times that
production step, kernels included. The timed steps are interleaved round-robin across the variants so
that background load affects all of them alike. Peak memory is measured in a separate pass
(one more step per variant): on CUDA ``torch.cuda.max_memory_allocated`` during the step
minus the memory allocated when it starts (activations, gradients and double-backward
graph, not the resident weights / optimizer state); on CPU the same quantity for the
process RSS, sampled every millisecond by a thread after returning freed heap memory to
the OS (``malloc_trim``), so it is approximate. Nothing is asserted about speed.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass

import torch

from workflow_scripts.core.losses import get_variant, robust_objective
from workflow_scripts.core.losses.registry import BASE_HPARAM, VARIANTS
from workflow_scripts.core.cli import run

PRESETS = {
    "gpt2-124m": {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257},
}

#: Cost targets: robust variant's median step time / its base's.
TARGETS = {"none": None, "kl": 1.05, "chi2": 1.05, "wasserstein": 2.2}
#: Per base: the base, the cheap sets, the Wasserstein variant (the registry's variants, benchmark order).
ORDER = [v.name for base in BASE_HPARAM for s in ("none", "kl", "chi2", "wasserstein") for v in VARIANTS.values()
         if v.base == base and v.ambiguity == s]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), help="model shape shortcut (overrides --n-layer/--n-embd/--n-head/--vocab-size)")
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=512, help="default: the project's mini BPE tokenizer size")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sequence (half prompt, half response)")
    p.add_argument("--batch", type=int, default=8, help="preference pairs per step (2x sequences)")
    p.add_argument("--accumulation", type=int, default=1,
                   help="split the batch into this many micro-batches (gradient accumulation): exact vs per-micro-step")
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast with fp32 master weights")
    p.add_argument("--variants", default=",".join(ORDER), help="comma-separated subset (bases are added)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--rho", type=float, default=0.5)
    p.add_argument("--rho0", type=float, default=0.1)
    args = p.parse_args(argv)
    if args.preset:
        for k, v in PRESETS[args.preset].items():
            setattr(args, k, v)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.seq_len < 2:
        p.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --seq-len >= 2")
    if args.accumulation < 1 or args.batch % args.accumulation:
        p.error(f"--accumulation must divide --batch ({args.batch})")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    return args


# --------------------------------------------------------------------------- memory probes
class RssSampler:
    """Peak resident set size of this process over a window, sampled by a thread (Linux /proc, or psutil)."""

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.page = _page_size()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = None

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self.page
        except OSError:
            import psutil  # noqa: PLC0415 - fallback only

            return psutil.Process().memory_info().rss

    def __enter__(self):
        self.start = self.peak = self.rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval_s)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


def _malloc_trim():
    """Give freed heap memory back to the OS so RSS tracks live memory (glibc only; no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------- one training step
@dataclass
class Batch:
    ids: torch.Tensor          # (2B, T): rows [chosen_0..chosen_{B-1}, rejected_0..rejected_{B-1}]
    prompt_len: int
    anchor: torch.Tensor       # (B, 2) reference / anchor log-probs (precomputed)
    reward: torch.Tensor       # (B, 2)


def build_model(args, device):
    from transformers import GPT2Config, GPT2LMHeadModel  # noqa: PLC0415 - keep --help fast

    cfg = GPT2Config(
        n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head, vocab_size=args.vocab_size,
        n_positions=max(1024, args.seq_len), bos_token_id=0, eos_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(args.seed)
    return GPT2LMHeadModel(cfg).to(device).train()


def sequence_logp(model, ids, prompt_len, autocast):
    emb = model.get_input_embeddings()(ids)
    with autocast():
        logits = model(inputs_embeds=emb).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tok = torch.gather(logprobs, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return tok[:, prompt_len - 1:].sum(dim=1), emb


def make_batch(args, model, device, autocast) -> Batch:
    g = torch.Generator().manual_seed(args.seed + 1)
    b, t = args.batch, args.seq_len
    prompt_len = max(1, t // 2)
    prompt = torch.randint(0, args.vocab_size, (b, prompt_len), generator=g)
    chosen = torch.cat([prompt, torch.randint(0, args.vocab_size, (b, t - prompt_len), generator=g)], 1)
    rejected = torch.cat([prompt, torch.randint(0, args.vocab_size, (b, t - prompt_len), generator=g)], 1)
    ids = torch.cat([chosen, rejected]).to(device)
    with torch.no_grad():
        lp, _ = sequence_logp(model, ids, prompt_len, autocast)
    anchor = torch.stack([lp[:b], lp[b:]], 1).float()
    reward = torch.randn(b, 2, generator=g).to(device)
    return Batch(ids, prompt_len, anchor, reward)


def train_step(model, opt, objective, batch: Batch, autocast):
    lp, emb = sequence_logp(model, batch.ids, batch.prompt_len, autocast)
    b = batch.anchor.shape[0]
    logp = torch.stack([lp[:b], lp[b:]], 1)
    losses = objective.per_sample(logp, batch.anchor, batch.reward)
    out = objective(losses, emb if objective.needs_embeddings else None)
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return out


def _micro_losses(model, objective, batch: Batch, lo: int, hi: int, autocast):
    b = batch.anchor.shape[0]
    lp, emb = sequence_logp(model, torch.cat([batch.ids[lo:hi], batch.ids[b + lo:b + hi]]), batch.prompt_len, autocast)
    n = hi - lo
    losses = objective.per_sample(torch.stack([lp[:n], lp[n:]], 1), batch.anchor[lo:hi], batch.reward[lo:hi])
    return losses, emb


def accumulated_step(model, opt, objective, batch: Batch, autocast, k: int, exact: bool):
    """One optimizer step on the batch as k micro-batches: the exact global-batch step, or the old one."""
    b = batch.anchor.shape[0]
    bounds = [(j * b // k, (j + 1) * b // k) for j in range(k)]
    plan = None
    if exact and objective.separable:
        plan = objective.separable_plan(b, 1)
    elif exact:                                   # the statistics pass: no parameter gradients
        parts = []
        for lo, hi in bounds:
            with torch.set_grad_enabled(objective.needs_embeddings):
                losses, emb = _micro_losses(model, objective, batch, lo, hi, autocast)
                sq = objective.sample_sqnorm(losses, emb, create_graph=False)
            parts.append(objective.statistics(losses, sq))
        plan = objective.plan(type(parts[0]).cat(parts))
    for lo, hi in bounds:
        losses, emb = _micro_losses(model, objective, batch, lo, hi, autocast)
        if exact:
            objective.surrogate(losses, objective.sample_sqnorm(losses, emb), plan, lo).backward()
        else:                                     # weights over the micro-batch alone, micro-steps averaged
            (objective(losses, emb if objective.needs_embeddings else None).loss / k).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


# --------------------------------------------------------------------------- main
def radius_for(variant, args) -> float:
    return {"none": 0.0, "kl": args.tau, "chi2": args.rho, "wasserstein": args.rho0}[get_variant(variant).ambiguity]


def base_of(variant: str) -> str:
    return get_variant(variant).base


def run(args):
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    amp_dtype = torch.bfloat16 if args.dtype == "bf16" else None

    def autocast():
        if amp_dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=amp_dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    wanted = [get_variant(v).name for v in args.variants.split(",") if v.strip()]
    wanted += [base_of(v) for v in wanted]
    variants = [v for v in ORDER if v in set(wanted)]

    ref_model = build_model(args, device)
    n_params = sum(p.numel() for p in ref_model.parameters())
    batch = make_batch(args, ref_model, device, autocast)
    del ref_model

    load_before = _load()
    states = {}
    for v in variants:
        model = build_model(args, device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        obj = robust_objective(v, radius_for(v, args), eta=args.eta, beta=args.beta)
        states[v] = (model, opt, obj)

    print("bench_losses: one optimizer step per variant (forward chosen+rejected, per-sample losses, robust objective, backward, AdamW)")
    print(f"  model      GPT-2 architecture, random init: n_layer={args.n_layer} n_embd={args.n_embd} n_head={args.n_head} "
          f"vocab={args.vocab_size} ({n_params / 1e6:.2f}M parameters)")
    print(f"  batch      {args.batch} pairs = {2 * args.batch} sequences x {args.seq_len} tokens (response = last {args.seq_len - batch.prompt_len})")
    print(f"  device     {device}" + (f" ({torch.cuda.get_device_name(device)})" if cuda else f", {torch.get_num_threads()} torch threads")
          + f", {args.dtype}" + (" (autocast, fp32 weights)" if amp_dtype else ""))
    print("  attention  eager for ALL variants (the losses' cost alone; bench_align times the production kernels)")
    print(f"  radii      tau={args.tau} rho={args.rho} rho0={args.rho0}; eta={args.eta} beta={args.beta}")
    print(f"  timing     {args.warmup} warm-up + {args.steps} timed steps per variant, interleaved round-robin; median reported")
    sys.stdout.flush()

    k = args.accumulation
    if k > 1:
        print(f"  accumulation  {k} micro-batches of {args.batch // k} pairs: 'exact' = statistics pass + {k} micro-steps "
              f"(the workflow's step); 'old' = weights per micro-batch")

    def step(v, exact=True):
        model, opt, obj = states[v]
        if k == 1:
            train_step(model, opt, obj, batch, autocast)
        else:
            accumulated_step(model, opt, obj, batch, autocast, k, exact)

    # -- timing: round-robin so that background load hits every variant alike
    times = {v: [] for v in variants}
    old_times = {v: [] for v in variants}
    for r in range(args.warmup + args.steps):
        for v in variants:
            for exact, into in ((True, times), (False, old_times)) if k > 1 else ((True, times),):
                sync()
                t0 = time.perf_counter()
                step(v, exact)
                sync()
                if r >= args.warmup:
                    into[v].append(time.perf_counter() - t0)

    # -- memory: one more step per variant, transient peak above what is resident at its start
    mem = {}
    for v in variants:
        model, opt, obj = states[v]
        if cuda:
            sync()
            start = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            step(v)
            sync()
            mem[v] = (torch.cuda.max_memory_allocated(device) - start) / 2**20
        else:
            _malloc_trim()
            with RssSampler() as s:
                step(v)
            mem[v] = (s.peak - s.start) / 2**20
    if cuda:
        mem_label = "step peak MiB (cuda max_memory_allocated - allocated at step start)"
    else:
        mem_label = "step peak MiB (process RSS, sampled every 1 ms, above RSS at step start; approximate)"

    median_ms = {v: 1e3 * statistics.median(times[v]) for v in variants}
    print()
    old_col = f" {'old ms':>8} {'exact/old':>9}" if k > 1 else ""
    header = (f"{'variant':<11} {'median ms':>10} {'min ms':>9} {'ratio':>13} {'target':>7} {'ok':>4} {'ratio(min)':>10} "
              f"{'mem MiB':>9}{old_col}")
    print(header)
    print("-" * len(header))
    for v in variants:
        amb = get_variant(v).ambiguity
        base = base_of(v)
        target = TARGETS[amb]
        if base in median_ms and v != base:
            ratio = median_ms[v] / median_ms[base]
            ratio_s = f"{ratio:5.2f}x {base}"
            target_s = f"<={target:.2f}"
            ok = "yes" if ratio <= target else "NO"
        else:
            ratio_s, target_s, ok = "(base)", "", ""
        ratio_min = f"{min(times[v]) / min(times[base]):.2f}x" if base in times and v != base else ""
        old = ""
        if k > 1:
            old_ms = 1e3 * statistics.median(old_times[v])
            old = f" {old_ms:>8.1f} {median_ms[v] / old_ms:>8.2f}x"
        print(f"{v:<11} {median_ms[v]:>10.1f} {1e3 * min(times[v]):>9.1f} {ratio_s:>13} {target_s:>7} {ok:>4} "
              f"{ratio_min:>10} {mem[v]:>9.1f}{old}")
    print()
    print("ratio = median step time / the base's (same base loss, no ambiguity set); targets: KL and chi2 <= 1.05x, Wasserstein <= 2.2x.")
    print("ratio(min) = the same with the fastest step of each: less sensitive to background load (see the load averages).")
    print(f"load average (1 min) {load_before:.2f} before, {_load():.2f} after, on {os.cpu_count()} CPUs.")
    print(f"mem = {mem_label}.")
    if k > 1:
        print("old ms = the same step with per-micro-batch weights (inexact); exact/old = the price of the global batch.")
    return median_ms, mem


def main(argv=None):
    args = parse_args(argv)
    run(args)


if __name__ == "__main__":
    run(main)
