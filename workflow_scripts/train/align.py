"""The ONE alignment entry point: every variant, every experiment, offline or online.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.train.align --pairs pairs.parquet \
        --policy sft/ --variant chi2-rebel --radius 0.5 --seed 0 --out align/chi2-rebel/0.5/0

Data regimes:
- ``offline``: a fixed pairs dataset (prompt, y1, y2, rewards, a Bradley-Terry label and the
  reference log-probs, all computed once upstream); iterations walk through it in global batches.
- ``online`` (REBEL's own loop): every iteration samples two fresh completions per prompt from
  the current policy pi_t, scores them with the reward model, and labels them.

Anchors for REBEL: ``reference`` (the frozen SFT policy, as the DRO-REBEL code) or ``iterate``
(pi_t, REBEL's Algorithm 1: log-probs of the iteration's batch under the policy at the start
of the iteration). DPO variants always use the reference.

Per iteration t: one global batch of ``global_batch`` pairs is split over ranks and
micro-batches; each micro-step computes per-sample losses, the robust objective over the
micro-step's global batch (all ranks), and one DeepSpeed backward/step.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..common.io import setup_logging, write_json_atomic
from ..common.runinfo import seed_everything, write_run_info
from ..generation import build_pair_batch, forward_logprob, sample_completions, score_logprobs
from ..losses import get_variant, robust_objective
from ..mixtures import MIXTURES, bradley_terry_labels, mix
from ..models.build import load_causal_lm, load_tokenizer
from .checkpoint import Checkpointer, fingerprint_of, rng_state, set_rng_state
from .engine import (disable_dropout, init_distributed, make_engine, resolve_precision, run_info_fields, save_model,
                     split_batch)

logger = logging.getLogger("align")

PAIR_COLUMNS = ("prompt_ids", "y1_ids", "y2_ids", "r1", "r2", "label", "logp_ref_y1", "logp_ref_y2")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--pairs", required=True, help="pairs parquet (offline data; prompts for the online regime)")
    io.add_argument("--policy", required=True, help="initial policy directory (the SFT model); also the reference")
    io.add_argument("--reward-model", help="reward model directory (online regime only)")
    io.add_argument("--out", required=True, help="output directory: policy/, metrics.json, history.csv, run_info.json")
    v = p.add_argument_group("variant")
    v.add_argument("--variant", required=True, help="rebel, w-rebel, kl-rebel, chi2-rebel, dpo, wdpo, kl-dpo, chi2-dpo")
    v.add_argument("--radius", type=float, default=0.0, help="rho0 (Wasserstein), tau (KL), rho (chi2); 0 for rebel/dpo")
    v.add_argument("--eta", type=float, default=0.01, help="REBEL's eta")
    v.add_argument("--beta", type=float, default=0.1, help="DPO's beta")
    v.add_argument("--kl-form", default="softmax", choices=("softmax", "clipped"))
    v.add_argument("--wasserstein-form", default="sqrt_mean", choices=("sqrt_mean", "pointwise"))
    t = p.add_argument_group("training")
    t.add_argument("--seed", type=int, required=True)
    t.add_argument("--run-name", default="", help="free-text label recorded in run_info.json")
    t.add_argument("--regime", default="offline", choices=("offline", "online"))
    t.add_argument("--anchor", default="reference", choices=("reference", "iterate"))
    t.add_argument("--epochs", type=float, default=1.0, help="offline: passes over the pairs")
    t.add_argument("--iterations", type=int, default=0, help="online: number of iterations (offline: derived from epochs)")
    t.add_argument("--updates-per-iteration", type=int, default=1, help="passes over each iteration's batch")
    t.add_argument("--global-batch", type=int, default=32)
    t.add_argument("--micro-batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-5)
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--zero-stage", type=int, default=2, choices=(0, 1, 2))
    t.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    t.add_argument("--max-length", type=int, default=128, help="truncate prompt+response to this many tokens")
    t.add_argument("--checkpoint-every", type=int, default=0, help="save a resumable checkpoint every N iterations (0: only on SIGTERM)")
    t.add_argument("--checkpoint-keep", type=int, default=2, help="keep the last K checkpoints")
    o = p.add_argument_group("online regime: sampling and labelling")
    o.add_argument("--max-new-tokens", type=int, default=32)
    o.add_argument("--top-k", type=int, default=0)
    o.add_argument("--top-p", type=float, default=1.0)
    o.add_argument("--objectives", nargs=2, default=("anger", "fear"), metavar=("R1", "R2"))
    o.add_argument("--alpha0", type=float, default=0.1)
    o.add_argument("--mixture", default="convex", choices=MIXTURES)
    o.add_argument("--bt-scale", type=float, default=1.0, help="Bradley-Terry scale s in sigmoid(s (r1 - r2))")
    return p.parse_args(argv)


@dataclass
class PairBatch:
    """A slice of pairs; ``first`` / ``second`` are oriented per base (DPO: chosen / rejected)."""

    prompts: list
    first: list
    second: list
    reward: torch.Tensor      # (B, 2)
    logp_ref: torch.Tensor    # (B, 2)


def load_pairs(path: str) -> pd.DataFrame:
    df = pd.read_parquet(path)
    missing = [c for c in PAIR_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: pairs file lacks columns {missing}.")
    if len(df) == 0:
        raise ValueError(f"{path}: pairs file is empty.")
    return df


def orient(df: pd.DataFrame, base: str) -> PairBatch:
    """REBEL keeps (y1, y2) as sampled; DPO puts the Bradley-Terry winner in column 0."""
    y1, y2 = list(df["y1_ids"]), list(df["y2_ids"])
    r = torch.tensor(np.stack([df["r1"], df["r2"]], axis=1), dtype=torch.float32)
    ref = torch.tensor(np.stack([df["logp_ref_y1"], df["logp_ref_y2"]], axis=1), dtype=torch.float32)
    if base == "dpo":
        swap = df["label"].to_numpy() == 0
        y1, y2 = [b if s else a for a, b, s in zip(y1, y2, swap)], [a if s else b for a, b, s in zip(y1, y2, swap)]
        idx = torch.tensor(swap, dtype=torch.bool)
        r = torch.where(idx[:, None], r.flip(1), r)
        ref = torch.where(idx[:, None], ref.flip(1), ref)
    return PairBatch(list(df["prompt_ids"]), y1, y2, r, ref)


class Aligner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rank, self.world, self.device = init_distributed()
        self.variant = get_variant(args.variant)
        self.objective = robust_objective(args.variant, args.radius, eta=args.eta, beta=args.beta,
                                          kl_form=args.kl_form, wasserstein_form=args.wasserstein_form)
        if args.regime == "online" and not args.reward_model:
            raise ValueError("the online regime needs --reward-model to score fresh completions.")
        self.split = split_batch(args.global_batch, args.micro_batch, self.world)
        self.precision = resolve_precision(args.precision)
        self.tokenizer = load_tokenizer(args.policy)
        self.pad_id = self.tokenizer.pad_token_id
        self.pairs = load_pairs(args.pairs)
        self.iterations = self._count_iterations()

        seed_everything(args.seed)
        policy = load_causal_lm(args.policy)
        disable_dropout(policy)
        self.engine, self.ds_config = make_engine(
            policy, self.split, lr=args.lr, total_steps=self.iterations * args.updates_per_iteration,
            warmup_ratio=args.warmup_ratio, zero_stage=args.zero_stage, precision=self.precision)
        self.reference = None
        if args.regime == "online":
            from ..models.emotion_reward import EmotionRewardModel
            self.reward_model = EmotionRewardModel(args.reward_model, self.device)
            self.reference = load_causal_lm(args.policy).to(self.device).eval()
        # Checkpoints live in the job's own directory, beside (not inside) its declared outputs.
        job_args = {k: v for k, v in vars(args).items() if not k.startswith("checkpoint_")}
        self.checkpointer = Checkpointer(
            self.engine, Path(args.out) / "checkpoints", every=args.checkpoint_every, keep=args.checkpoint_keep,
            fingerprint=fingerprint_of({**job_args, "world_size": self.world}), rank=self.rank)

    def _count_iterations(self) -> int:
        a = self.args
        if a.regime == "online":
            if a.iterations <= 0:
                raise ValueError("the online regime needs --iterations > 0.")
            return a.iterations
        per_epoch = len(self.pairs) // a.global_batch
        if per_epoch == 0:
            raise ValueError(f"{a.pairs}: {len(self.pairs)} pairs is fewer than one global batch of {a.global_batch}.")
        return a.iterations if a.iterations > 0 else max(1, int(round(per_epoch * a.epochs)))

    # ------------------------------------------------------------------ data for one iteration
    def offline_batch(self, t: int) -> pd.DataFrame:
        """The global batch of iteration t: a fresh seeded permutation each epoch, drop-last."""
        g = self.args.global_batch
        per_epoch = len(self.pairs) // g
        epoch, k = divmod(t, per_epoch)
        if k == 0 or not hasattr(self, "_perm"):
            self._perm = np.random.default_rng([self.args.seed, epoch]).permutation(len(self.pairs))
        return self.pairs.iloc[self._perm[k * g:(k + 1) * g]]

    def online_batch(self, t: int) -> pd.DataFrame:
        """Fresh pairs from pi_t for this rank's share of the global batch's prompts."""
        a, g = self.args, self.args.global_batch
        prompt_idx = np.random.default_rng([a.seed, t]).choice(len(self.pairs), size=g, replace=len(self.pairs) < g)
        lo, hi = self.rank * g // self.world, (self.rank + 1) * g // self.world
        prompts = list(self.pairs["prompt_ids"].iloc[prompt_idx[lo:hi]])
        model = self.engine.module
        completions = sample_completions(
            model, prompts, eos_id=self.tokenizer.eos_token_id, pad_id=self.pad_id, max_new_tokens=a.max_new_tokens,
            top_k=a.top_k, top_p=a.top_p, num_return_sequences=2, generator_seed=a.seed * 100_003 + t * 101 + self.rank,
            device=self.device, desc=f"iteration {t} sampling")
        y1, y2 = completions[0::2], completions[1::2]
        decode = lambda p, y: self.tokenizer.decode(list(p) + list(y), skip_special_tokens=True)  # noqa: E731
        s1 = self.reward_model.objectives([decode(p, y) for p, y in zip(prompts, y1)], a.objectives)
        s2 = self.reward_model.objectives([decode(p, y) for p, y in zip(prompts, y2)], a.objectives)
        r1 = mix(s1[a.objectives[0]], s1[a.objectives[1]], a.alpha0, a.mixture)
        r2 = mix(s2[a.objectives[0]], s2[a.objectives[1]], a.alpha0, a.mixture)
        labels = bradley_terry_labels(r1, r2, a.bt_scale, np.random.default_rng([a.seed, t, self.rank]))
        ref1 = score_logprobs(self.reference, prompts, y1, pad_id=self.pad_id, max_length=a.max_length, device=self.device)
        ref2 = score_logprobs(self.reference, prompts, y2, pad_id=self.pad_id, max_length=a.max_length, device=self.device)
        return pd.DataFrame({"prompt_ids": prompts, "y1_ids": y1, "y2_ids": y2, "r1": r1, "r2": r2, "label": labels,
                             "logp_ref_y1": ref1.numpy(), "logp_ref_y2": ref2.numpy()})

    def rank_slice(self, df: pd.DataFrame) -> pd.DataFrame:
        lo, hi = self.rank * len(df) // self.world, (self.rank + 1) * len(df) // self.world
        return df.iloc[lo:hi]

    # ------------------------------------------------------------------ one micro-step
    def logprob_pairs(self, model, pb: PairBatch, with_embeddings: bool):
        """Log-probs (B, 2) of both completions in ONE forward: rows [first_0..first_B-1, second_0..]."""
        n = len(pb.prompts)
        batch = build_pair_batch(pb.prompts + pb.prompts, pb.first + pb.second, self.pad_id, self.args.max_length)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        logp, embeddings = forward_logprob(model, batch, with_embeddings=with_embeddings)
        return torch.stack([logp[:n], logp[n:]], dim=1), embeddings

    def anchor_logprobs(self, pb: PairBatch) -> torch.Tensor:
        if self.variant.base == "rebel" and self.args.anchor == "iterate":
            with torch.no_grad():
                self.engine.module.eval()
                logp, _ = self.logprob_pairs(self.engine.module, pb, with_embeddings=False)
                self.engine.module.train()
            return logp.float()
        return pb.logp_ref.to(self.device)

    def micro_step(self, pb: PairBatch, anchor: torch.Tensor) -> dict:
        # Forward through engine.module, not engine(...): DeepSpeed's forward wraps the outputs in
        # backward hooks that run its backward prologue and rescale gradients once per forward, which
        # the Wasserstein penalty's inner autograd.grad would trigger. engine.backward() below still
        # performs the ZeRO-2 gradient reduction and loss scaling.
        logp, embeddings = self.logprob_pairs(self.engine.module, pb, self.objective.needs_embeddings)
        losses = self.objective.per_sample(logp, anchor, reward=pb.reward.to(self.device))
        out = self.objective(losses, embeddings)
        self.engine.backward(out.loss)
        self.engine.step()
        stats = {"objective": float(out.value), "mean_loss": float(out.mean_loss)}
        if out.weights is not None:
            w = out.weights.double()
            stats["max_weight"] = float(w.max())
            stats["ess_fraction"] = float(1.0 / (w.pow(2).sum() * w.numel()))   # effective sample size / n
        if out.penalty is not None:
            stats["penalty"] = float(out.penalty)
        return stats

    # ------------------------------------------------------------------ the loop
    def train(self) -> list[dict]:
        from tqdm.auto import tqdm

        a, split = self.args, self.split
        history, start = [], 0
        resumed = self.checkpointer.resume()
        if resumed is not None:
            history, start = list(resumed["history"]), int(resumed["next_iteration"])
            set_rng_state(resumed["rng"])
            if self.rank == 0:
                logger.info("resuming at iteration %d/%d", start + 1, self.iterations)
        bar = tqdm(range(start, self.iterations), desc=f"{a.variant} r={a.radius:g} seed={a.seed}",
                   disable=self.rank != 0, mininterval=5, initial=start, total=self.iterations)
        self.engine.module.train()
        for t in bar:
            df = self.online_batch(t) if a.regime == "online" else self.rank_slice(self.offline_batch(t))
            pb = orient(df, self.variant.base)
            anchor = self.anchor_logprobs(pb)
            for _ in range(a.updates_per_iteration):
                for m in range(split.grad_accum):
                    sl = slice(m * split.micro_batch, (m + 1) * split.micro_batch)
                    micro = PairBatch(pb.prompts[sl], pb.first[sl], pb.second[sl], pb.reward[sl], pb.logp_ref[sl])
                    stats = self.micro_step(micro, anchor[sl])
            row = {"iteration": t, "lr": self.engine.get_lr()[0], **stats}
            if a.regime == "online":
                row["mean_reward"] = float(np.mean(np.concatenate([df["r1"], df["r2"]])))
            history.append(row)
            bar.set_postfix(objective=f"{stats['objective']:.4f}")
            if self.rank == 0 and (t % max(1, self.iterations // 10) == 0 or t == self.iterations - 1):
                logger.info("iteration %d/%d %s", t + 1, self.iterations,
                            " ".join(f"{k}={v:.5g}" for k, v in row.items() if k != "iteration"))
            self.checkpointer.step_done(t + 1, lambda: {"next_iteration": t + 1, "history": history, "rng": rng_state()})
        return history


def main(argv=None) -> None:
    setup_logging()
    args = parse_args(argv)
    started = time.time()
    aligner = Aligner(args)
    if aligner.rank == 0:
        logger.info("variant %s (base %s, set %s) radius %g | world %d, micro %d x accum %d = global %d | %s, ZeRO-%d",
                    aligner.variant.name, aligner.variant.base, aligner.variant.ambiguity, args.radius, aligner.world,
                    aligner.split.micro_batch, aligner.split.grad_accum, aligner.split.global_batch,
                    aligner.precision, args.zero_stage)
    history = aligner.train()
    out = Path(args.out)
    save_model(aligner.engine, aligner.tokenizer, out / "policy", aligner.rank)
    if aligner.rank == 0:
        hist = pd.DataFrame(history)
        hist.to_csv(out / "history.csv", index=False)
        tail = hist.tail(max(1, len(hist) // 10))
        # metrics.json holds only quantities that depend on (data, seed, config): reruns compare byte for byte.
        write_json_atomic(out / "metrics.json", {
            "variant": aligner.variant.name, "radius": args.radius, "seed": args.seed, "regime": args.regime,
            "anchor": args.anchor, "iterations": aligner.iterations,
            "final_objective": float(hist["objective"].iloc[-1]),
            "final_mean_loss": float(hist["mean_loss"].iloc[-1]),
            "tail_objective": float(tail["objective"].mean()),
        })
        write_run_info(out / "run_info.json", job="align", seed=args.seed,
                       **run_info_fields(aligner.split, aligner.ds_config, aligner.precision),
                       deepspeed_config=aligner.ds_config, args=vars(args), wall_seconds=round(time.time() - started, 2))
        logger.info("done in %.1fs: %s", time.time() - started, out)
    aligner.checkpointer.finish()


if __name__ == "__main__":
    main()
