"""The ONE alignment entry point: every variant, every experiment, offline or online.

    torchrun --standalone --nproc_per_node N -m workflow_scripts.core.train.align --pairs pairs.parquet \
        --policy sft/ --variant chi2-rebel --radius 0.5 --seed 0 --out align/chi2-rebel/0.5/eta1/0

Data regimes:
- ``offline``: a fixed pairs dataset (prompt, y1, y2, rewards and a Bradley-Terry label,
  computed once upstream); iterations walk through it.
- ``online`` (REBEL's own loop): every iteration samples two fresh completions per prompt from
  the current policy pi_t, scores them with any :class:`~workflow_scripts.core.scoring.Scorer`
  (``--scorer package.module:Class --reward-model PATH``), mixes two of its objectives at alpha0
  and labels them (Bradley-Terry).

The structure of training (REBEL, Algorithm 1), whatever the regime:

- an **iteration** takes a batch of ``iteration_batch`` pairs and fixes the anchor for it:
  pi_t (``anchor: iterate``: log-probs under the policy at the start of the iteration) or
  pi_ref (``anchor: reference``, the DRO-REBEL code; DPO variants always use the reference);
- it makes ``updates_per_iteration`` passes over that batch in minibatches of ``global_batch``
  pairs (pass 0 in order, later passes reshuffled): each minibatch is ONE optimizer step;
- each step's **robust weights** (or Wasserstein normaliser) cover its whole global batch, however
  it is split over ranks and gradient-accumulation micro-steps: for the KL / chi2 sets and the
  ``sqrt_mean`` Wasserstein penalty, a statistics pass (no parameter gradients) over the rank's
  micro-batches fixes the plan first, then each micro-step backpropagates its exact share.

Numerics: reference and anchor log-probs are computed in this job, by the very forward the
policy trains with (same module, precision/autocast, attention kernel, truncation), on the
micro-batch in which each sample is first used, so at step 0 the log-ratio of the untrained
policy to its reference is exactly 0 (logged as ``logratio_ref_absmax``).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from workflow_scripts.core.cli import run
from workflow_scripts.core.io import setup_logging, write_json_atomic
from workflow_scripts.core.runinfo import seed_everything, write_run_info
from workflow_scripts.core.logprobs import build_pair_batch, forward_logprob
from workflow_scripts.core.sampling import HFSampler, add_generation_args, stop_token_ids
from workflow_scripts.core.pairs import PAIR_COLUMNS, label_pairs, read_pairs
from workflow_scripts.core.scoring import load_scorer
from workflow_scripts.core.losses import SampleStats, effective_sample_fraction, get_variant, robust_objective
from workflow_scripts.core.mixtures import MIXTURES
from workflow_scripts.core.models import ATTENTION_CHOICES, load_causal_lm, load_tokenizer, training_attention
from workflow_scripts.core.train.checkpoint import Checkpointer, fingerprint_of, rng_state, set_rng_state
from workflow_scripts.core.train.schedule import IterationPlan, check_iteration_structure
from workflow_scripts.core.train.timing import NO_CLOCK, JobClock
from workflow_scripts.core.train.engine import (autocast, disable_dropout, init_distributed,
                                               make_engine, resolve_precision, run_info_fields, save_model, split_batch)

logger = logging.getLogger("align")

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--pairs", required=True, help="pairs parquet (offline data); the online regime's prompt pool "
                    "(column prompt_ids, and prompt: the text the scorer reads, when present)")
    io.add_argument("--policy", required=True, help="initial policy directory (the SFT model); also the reference")
    io.add_argument("--reward-model", help="reward model (online regime only): the scorer's directory or hub id")
    io.add_argument("--scorer", help="online regime: the Scorer class (package.module:Class) that loads --reward-model")
    io.add_argument("--scorer-options", default="{}", help="online regime: JSON keyword arguments of the scorer's load()")
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
    t.add_argument("--iteration-batch", type=int, default=0, help="pairs per iteration (0: one global batch)")
    t.add_argument("--updates-per-iteration", type=int, default=1, help="passes over each iteration's batch")
    t.add_argument("--global-batch", type=int, default=32, help="pairs per optimizer step")
    t.add_argument("--micro-batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-5)
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--zero-stage", type=int, default=2, choices=(0, 1, 2))
    t.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    t.add_argument("--max-length", type=int, default=128, help="truncate prompt+response to this many tokens")
    t.add_argument("--attention", default="auto", choices=ATTENTION_CHOICES,
                   help="auto: the fused kernel (sdpa), eager only for variants that need a double backward (Wasserstein)")
    t.add_argument("--gradient-checkpointing", default="false", choices=("true", "false"),
                   help="recompute activations in the backward (long sequences at the paper's model sizes)")
    t.add_argument("--checkpoint-every", type=int, default=0, help="save a resumable checkpoint every N iterations (0: only on SIGTERM)")
    t.add_argument("--checkpoint-keep", type=int, default=2, help="keep the last K checkpoints")
    o = p.add_argument_group("online regime: sampling and labelling")
    o.add_argument("--max-new-tokens", type=int, default=32)
    o.add_argument("--temperature", type=float, default=1.0)
    o.add_argument("--top-k", type=int, default=0)
    o.add_argument("--top-p", type=float, default=1.0)
    o.add_argument("--objectives", nargs=2, default=("anger", "fear"), metavar=("R1", "R2"),
                   help="the two scorer columns mixed into the reward")
    o.add_argument("--alpha0", type=float, default=0.1)
    o.add_argument("--mixture", default="convex", choices=MIXTURES)
    o.add_argument("--bt-scale", type=float, default=1.0, help="Bradley-Terry scale s in sigmoid(s (r1 - r2))")
    add_generation_args(p)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data
@dataclass
class Pairs:
    """Pairs oriented for a base: column 0 = y1 (REBEL) or the chosen completion (DPO); ``winner`` is the column
    of the Bradley-Terry winner (always 0 for DPO), for the preference metrics of every variant."""

    prompts: list
    first: list
    second: list
    reward: torch.Tensor      # (n, 2)
    winner: torch.Tensor      # (n,) long: 0 or 1

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, idx) -> "Pairs":
        idx = np.asarray(idx)
        rows = torch.as_tensor(idx, dtype=torch.long)
        return Pairs([self.prompts[i] for i in idx], [self.first[i] for i in idx], [self.second[i] for i in idx],
                     self.reward[rows], self.winner[rows])


def orient(df: pd.DataFrame, base: str) -> Pairs:
    """REBEL keeps (y1, y2) as sampled; DPO puts the Bradley-Terry winner in column 0."""
    y1, y2 = list(df["y1_ids"]), list(df["y2_ids"])
    r = torch.tensor(np.stack([df["r1"], df["r2"]], axis=1), dtype=torch.float32)
    winner = torch.as_tensor(1 - df["label"].to_numpy(dtype=np.int64))         # label 1: y1 preferred
    if base == "dpo":
        swap = df["label"].to_numpy() == 0
        y1, y2 = [b if s else a for a, b, s in zip(y1, y2, swap)], [a if s else b for a, b, s in zip(y1, y2, swap)]
        r = torch.where(torch.tensor(swap)[:, None], r.flip(1), r)
        winner = torch.zeros(len(df), dtype=torch.long)
    return Pairs(list(df["prompt_ids"]), y1, y2, r, winner)


def preference_metrics(ratio: torch.Tensor, winner: torch.Tensor) -> dict:
    """TRL's preference metrics over the step's global batch, from the policy's log-ratios to the reference
    (``ratio``: (n, 2), this rank's pairs; ``winner``: the Bradley-Terry winner's column) at the step's forward:
    the chosen and rejected log-ratios (means), their margin, and the implicit-reward accuracy (the share of
    pairs whose margin has the label's sign)."""
    rows = torch.arange(len(winner))
    chosen, rejected = ratio[rows, winner], ratio[rows, 1 - winner]
    margin = chosen - rejected
    sums = all_reduce_(torch.stack([chosen.sum(), rejected.sum(), margin.sum(), (margin > 0).double().sum(),
                                    torch.tensor(float(len(winner)), dtype=torch.float64)]))
    n = sums[4]
    return {"chosen_logratio": float(sums[0] / n), "rejected_logratio": float(sums[1] / n),
            "margin": float(sums[2] / n), "preference_accuracy": float(sums[3] / n)}


def all_reduce_(x: torch.Tensor, op=None) -> torch.Tensor:
    """In-place all-reduce over the world (sum by default); the identity in one process."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM if op is None else op)
    return x


# ---------------------------------------------------------------------------------------------- training
class Aligner:
    def __init__(self, args: argparse.Namespace, clock=NO_CLOCK):
        self.args = args
        self.clock = clock
        with clock.phase("distributed_setup"):
            self.rank, self.world, self.device = init_distributed()
        self.variant = get_variant(args.variant)
        self.objective = robust_objective(args.variant, args.radius, eta=args.eta, beta=args.beta,
                                          kl_form=args.kl_form, wasserstein_form=args.wasserstein_form)
        if args.regime == "online" and not (args.reward_model and args.scorer):
            raise ValueError("the online regime needs --scorer and --reward-model to score fresh completions.")
        self.split = split_batch(args.global_batch, args.micro_batch, self.world)
        iteration_batch = args.iteration_batch or args.global_batch
        check_iteration_structure(args.anchor if self.variant.base == "rebel" else "reference", iteration_batch,
                                  args.global_batch, args.updates_per_iteration)
        self.plan = IterationPlan(iteration_batch, args.global_batch, args.micro_batch, self.world,
                                  args.updates_per_iteration, args.seed)
        self.uses_iterate_anchor = self.variant.base == "rebel" and args.anchor == "iterate"
        self.precision = resolve_precision(args.precision)
        with clock.phase("tokenizer_and_data"):
            self.tokenizer = load_tokenizer(args.policy)
            self.pad_id = self.tokenizer.pad_token_id
            # online: only a prompt pool is needed (prompt_ids, and the prompt text when the scorer reads chat prompts)
            self.pairs = read_pairs(args.pairs, ("prompt_ids",) if args.regime == "online" else PAIR_COLUMNS)
        self.iterations = self._count_iterations()

        with clock.phase("seeding"):
            seed_everything(args.seed)
        # One kernel for the policy AND its reference / anchor (the same module, or a copy loaded alike).
        self.attention = training_attention(self.objective.needs_embeddings, args.attention)
        with clock.phase("model_load"):
            policy = load_causal_lm(args.policy, attention=self.attention)
            disable_dropout(policy)
        with clock.phase("engine_init"):
            self.engine, self.ds_config = make_engine(
                policy, self.split, lr=args.lr, total_steps=self.iterations * self.plan.steps_per_iteration,
                warmup_ratio=args.warmup_ratio, zero_stage=args.zero_stage, precision=self.precision,
                gradient_checkpointing=args.gradient_checkpointing == "true")
        # The reference, fixed before any step (and before a resume loads later weights): offline, a
        # table of every pair's log-probs under the initial module; online, a frozen copy of the SFT policy.
        self.reference_model, self.reference_table = None, None
        if args.regime == "online":
            with clock.phase("model_load"):
                self.scorer = load_scorer(args.scorer, args.reward_model, self.device,
                                          **json.loads(args.scorer_options))
                self.stops = stop_token_ids(policy, self.tokenizer)
                self.sampler = self._online_sampler()
                self.reference_model = load_causal_lm(args.policy, attention=self.attention).to(self.device).eval()
                disable_dropout(self.reference_model)
                self.reference_model.requires_grad_(False)
        else:
            self.offline_pairs = orient(self.pairs, self.variant.base)
            self.truncated_pairs = self._count_truncated(self.offline_pairs)
            with clock.phase("reference_pass"):
                self.reference_table = self._offline_reference()
        # Checkpoints live in the job's own directory, beside (not inside) its declared outputs.
        # (the generation flags size the sampling batch only: rows are seeded per sample, see _online_sampler)
        job_args = {k: v for k, v in vars(args).items()
                    if not k.startswith(("checkpoint_", "generation_", "hf_", "vllm_"))}
        self.checkpointer = Checkpointer(
            self.engine, Path(args.out) / "checkpoints", every=args.checkpoint_every, keep=args.checkpoint_keep,
            fingerprint=fingerprint_of({**job_args, "world_size": self.world}), rank=self.rank)

    def _count_truncated(self, pairs: Pairs) -> int:
        """Pairs whose prompt + longer response exceed --max-length: training sees a prefix of a response whose
        reward was computed on all of it (the config checks rule this out for the workflow's presets)."""
        limit = self.args.max_length
        n = sum(len(p) + max(len(a), len(b)) > limit for p, a, b in zip(pairs.prompts, pairs.first, pairs.second))
        if n and self.rank == 0:
            logger.warning("%d of %d pairs are longer than --max-length %d: training truncates them, their rewards "
                           "are the full responses'", n, len(pairs), limit)
        return int(n)

    def _count_iterations(self) -> int:
        a = self.args
        if a.regime == "online":
            if a.iterations <= 0:
                raise ValueError("the online regime needs --iterations > 0.")
            return a.iterations
        per_epoch = len(self.pairs) // self.plan.iteration_batch
        if per_epoch == 0:
            raise ValueError(f"{a.pairs}: {len(self.pairs)} pairs is fewer than one iteration batch of "
                             f"{self.plan.iteration_batch}.")
        return a.iterations if a.iterations > 0 else max(1, int(round(per_epoch * a.epochs)))

    def numerics(self) -> dict:
        """What the policy's and the reference's forwards share (recorded in run_info.json)."""
        return {"precision": self.precision, "autocast": "bfloat16" if self.precision == "bf16" else None,
                "parameter_dtype": str(next(self.engine.module.parameters()).dtype).replace("torch.", ""),
                "attention": self.engine.module.config._attn_implementation, "max_length": self.args.max_length,
                "gradient_checkpointing": self.args.gradient_checkpointing == "true",
                "inputs": "inputs_embeds" if self.objective.needs_embeddings else "input_ids",
                "reference": "this job, same forward, first-use micro-batch" +
                             ("" if self.args.regime == "offline" else " (frozen copy of the SFT policy)")}

    # ------------------------------------------------------------------ data of one iteration
    def offline_iteration(self, t: int) -> np.ndarray:
        """Indices (into the pairs table) of iteration t's batch: a fresh seeded permutation each epoch."""
        size = self.plan.iteration_batch
        per_epoch = len(self.pairs) // size
        epoch, k = divmod(t, per_epoch)
        perm = np.random.default_rng([self.args.seed, epoch]).permutation(len(self.pairs))
        return perm[k * size:(k + 1) * size]

    def _online_sampler(self) -> HFSampler:
        """HF generate on the live training module (length-sorted batches, per-sample seeds). Never vLLM:
        the policy changes every iteration, and handing the live DeepSpeed weights to an engine each time
        is not robust; never compiled (the module trains between calls)."""
        a = self.args
        if a.generation_backend != "hf" or a.hf_compile:
            logger.info("online regime: sampling with hf generate, uncompiled (generation.backend %s, compile %s "
                        "apply to the sampling jobs only: the policy changes every iteration)",
                        a.generation_backend, a.hf_compile)
        return HFSampler(self.engine.module, self.pad_id, self.stops, device=self.device, batch_size=64,
                         auto_batch=a.hf_auto_batch, max_batch=a.hf_max_batch, memory_fraction=a.hf_memory_fraction)

    def online_iteration(self, t: int) -> pd.DataFrame:
        """Fresh pairs from pi_t for the iteration's prompts (each rank samples its share; all ranks get all)."""
        a, n = self.args, self.plan.iteration_batch
        prompt_idx = np.random.default_rng([a.seed, t]).choice(len(self.pairs), size=n, replace=len(self.pairs) < n)
        lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
        rows = self.pairs.iloc[prompt_idx[lo:hi]]
        prompts = list(rows["prompt_ids"])
        # seeded by the position in the iteration's batch, not by rank: the same samples for any world size
        completions = self.sampler.sample(
            prompts, n=2, temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, max_new_tokens=a.max_new_tokens,
            seed=a.seed * 100_003 + t * 101, row_ids=range(lo, hi), desc=f"iteration {t} sampling")
        decode = lambda ids: self.tokenizer.decode(list(ids), skip_special_tokens=True)  # noqa: E731
        # the prompt as the scorer should read it: its text when the pool has one (chat prompts), else decoded
        texts = list(rows["prompt"]) if "prompt" in rows else [decode(p) for p in prompts]
        # one uniform per position of the iteration's batch, whichever rank labels it: the same labels for any
        # number of processes (as the samples, seeded by position)
        uniforms = np.random.default_rng([a.seed, t, 1]).random(n)[lo:hi]
        local = label_pairs(self.scorer, texts, prompts, completions[0::2], completions[1::2], decode,
                            objectives=a.objectives, alpha0=a.alpha0, mixture=a.mixture, bt_scale=a.bt_scale,
                            uniforms=uniforms)
        self.truncated_pairs = getattr(self, "truncated_pairs", 0) + self._count_truncated(orient(local, "rebel"))
        if self.world == 1:
            return local
        frames = [None] * self.world
        dist.all_gather_object(frames, local)
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------------ the forward (policy = reference numerics)
    def pair_logprobs(self, model, pb: Pairs, with_embeddings: bool):
        """Log-probs (n, 2) of both completions in ONE forward: rows [first_0..first_n-1, second_0..]."""
        n = len(pb)
        batch = build_pair_batch(pb.prompts + pb.prompts, pb.first + pb.second, self.pad_id, self.args.max_length)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with autocast(self.precision, self.device):
            logp, embeddings = forward_logprob(model, batch, with_embeddings=with_embeddings)
        return torch.stack([logp[:n], logp[n:]], dim=1), embeddings

    @torch.no_grad()
    def logprob_table(self, model, pairs: Pairs, micro_batches, owned=None) -> torch.Tensor:
        """(n, 2) float64 log-probs of ``pairs``, each computed by this rank in its micro-batch (the
        training forward, no gradients), then summed over ranks: every rank gets the whole table.
        ``owned[k]`` (optional) masks the samples micro-batch k is responsible for."""
        table = torch.zeros(len(pairs), 2, dtype=torch.float64)
        was_training = model.training
        model.eval()
        for k, mb in enumerate(micro_batches):
            keep = mb if owned is None else mb[owned[k]]
            if len(keep) == 0:
                continue
            logp, _ = self.pair_logprobs(model, pairs.take(mb), with_embeddings=self.objective.needs_embeddings)
            values = logp.double().cpu()
            table[keep] = values if owned is None else values[torch.as_tensor(owned[k])]
        model.train(was_training)
        return all_reduce_(table)

    def _offline_reference(self) -> torch.Tensor:
        """Every pair's reference log-probs under the initial policy, each in the micro-batch where the
        training schedule first uses it (so step 0's log-ratio is exactly 0, not rounding noise)."""
        seen = np.zeros(len(self.pairs), dtype=bool)
        mine, owned = [], []
        for t in range(self.iterations):
            idx = self.offline_iteration(t)
            for minibatch in self.plan.minibatches(t, 0):
                for rank in range(self.world):
                    for mb in self.plan.micro_batches(minibatch, rank):
                        rows = idx[mb]
                        new = ~seen[rows]
                        if rank == self.rank and new.any():
                            mine.append(rows)
                            owned.append(new)
                        seen[rows] = True
            if seen.all():
                break
        return self.logprob_table(self.engine.module, self.offline_pairs, mine, owned).float()

    # ------------------------------------------------------------------ one optimizer step
    def _statistics(self, pb: Pairs, anchor: torch.Tensor) -> SampleStats:
        """The statistics pass over one micro-batch: losses (and Wasserstein norms), no parameter gradients."""
        obj = self.objective
        with torch.set_grad_enabled(obj.needs_embeddings):
            logp, embeddings = self.pair_logprobs(self.engine.module, pb, obj.needs_embeddings)
            losses = obj.per_sample(logp, anchor, reward=pb.reward.to(self.device))
            sqnorm = obj.sample_sqnorm(losses, embeddings, create_graph=False)
        return obj.statistics(losses, sqnorm)

    def optimizer_step(self, pairs: Pairs, anchor: torch.Tensor, reference: torch.Tensor,
                       micro_batches: list[np.ndarray]) -> dict:
        """One global batch (this rank's micro-batches): plan, micro-steps, DeepSpeed step.

        Forward through ``engine.module``, not ``engine(...)``: DeepSpeed's forward wraps the outputs
        in backward hooks that run its backward prologue and rescale gradients once per forward,
        which the Wasserstein penalty's inner autograd.grad would trigger. ``engine.backward()``
        still performs the ZeRO-2 reduction. ``scale_wrt_gas=False``: each surrogate already is its
        micro-batch's exact share of the global objective, so the micro-steps' gradients add up.
        """
        obj = self.objective
        plan = None
        if obj.separable:
            plan = obj.separable_plan(self.args.global_batch, self.world)
        elif len(micro_batches) > 1:
            plan = obj.plan(SampleStats.cat([self._statistics(pairs.take(mb), anchor[mb].to(self.device))
                                             for mb in micro_batches]))
        seen, ratios, winners, start = [], [], [], 0
        for mb in micro_batches:
            pb = pairs.take(mb)
            logp, embeddings = self.pair_logprobs(self.engine.module, pb, obj.needs_embeddings)
            losses = obj.per_sample(logp, anchor[mb].to(self.device), reward=pb.reward.to(self.device))
            sqnorm = obj.sample_sqnorm(losses, embeddings)
            seen.append(obj.statistics(losses, sqnorm))
            if plan is None:                                   # the rank's share is one micro-batch
                plan = obj.plan(seen[-1])
            self.engine.backward(obj.surrogate(losses, sqnorm, plan, start), scale_wrt_gas=False)
            self.engine.step()
            start += len(mb)
            ratios.append(logp.detach().double().cpu() - reference[mb].double())
            winners.append(pb.winner)
        logged = obj.plan(SampleStats.cat(seen)) if obj.separable else plan
        stats = {"objective": float(logged.value), "mean_loss": float(logged.mean_loss)}
        if logged.weights is not None:
            w = logged.weights.double()
            stats["max_weight"] = float(w.max() / w.sum())             # the largest sample's share of the weight
            stats["ess_fraction"] = float(effective_sample_fraction(w))  # Kish's effective sample size / n
        if logged.penalty is not None:
            stats["penalty"] = float(logged.penalty)
        ratio = torch.cat(ratios)
        summed = all_reduce_(torch.stack([ratio.sum(), torch.tensor(float(ratio.numel()), dtype=torch.float64)]))
        stats["logratio_ref_mean"] = float(summed[0] / summed[1])
        stats["logratio_ref_absmax"] = float(all_reduce_(ratio.abs().max(), dist.ReduceOp.MAX))
        stats.update(preference_metrics(ratio, torch.cat(winners)))
        return stats

    # ------------------------------------------------------------------ the loop
    def run_iteration(self, t: int) -> list[dict]:
        """Iteration t: its batch, its anchor, ``updates_per_iteration`` passes of minibatch steps."""
        if self.args.regime == "online":
            frame = self.online_iteration(t)
            pairs = orient(frame, self.variant.base)
            reference = self.logprob_table(self.reference_model, pairs, self.plan.first_pass_micro_batches(t, self.rank))
            mean_reward = float(np.mean(np.concatenate([frame["r1"], frame["r2"]])))
        else:
            idx = self.offline_iteration(t)
            pairs = self.offline_pairs.take(idx)
            reference = self.reference_table[torch.as_tensor(idx)]
            mean_reward = None
        anchor = reference
        if self.uses_iterate_anchor:
            anchor = self.logprob_table(self.engine.module, pairs, self.plan.first_pass_micro_batches(t, self.rank)).float()
        self.last_iteration = {"t": t, "pairs": pairs, "anchor": anchor, "reference": reference}   # for tests
        rows = []
        for update in range(self.plan.updates):
            for j, minibatch in enumerate(self.plan.minibatches(t, update)):
                stats = self.optimizer_step(pairs, anchor, reference, self.plan.micro_batches(minibatch, self.rank))
                row = {"iteration": t, "update": update, "minibatch": j, "lr": self.engine.get_lr()[0], **stats}
                if self.uses_iterate_anchor:
                    # REBEL's loss where the policy equals its anchor: the first minibatch of an iteration starts here.
                    gap = pairs.reward[torch.as_tensor(minibatch)].double()
                    row["reward_gap_sq"] = float((gap[:, 0] - gap[:, 1]).pow(2).mean())
                if mean_reward is not None:
                    row["mean_reward"] = mean_reward
                rows.append(row)
        return rows

    def train(self) -> list[dict]:
        from tqdm.auto import tqdm

        from workflow_scripts.core.train.scalars import ScalarLog

        a = self.args
        history, start = [], 0
        with self.clock.exclude("checkpoints"):
            resumed = self.checkpointer.resume()
        scalars = ScalarLog(Path(a.out) / "tensorboard", self.rank, prefix="align")
        if resumed is not None:
            history, start = list(resumed["history"]), int(resumed["next_iteration"])
            set_rng_state(resumed["rng"])
            scalars.rewrite(history)
            if self.rank == 0:
                logger.info("resuming at iteration %d/%d", start + 1, self.iterations)
        bar = tqdm(range(start, self.iterations), desc=f"{a.variant} r={a.radius:g} seed={a.seed}",
                   disable=self.rank != 0, mininterval=5, initial=start, total=self.iterations)
        self.engine.module.train()
        for t in bar:
            rows = self.run_iteration(t)
            for row in rows:
                row["step"] = len(history)
                history.append(row)
                scalars.add(row)
            bar.set_postfix(objective=f"{rows[-1]['objective']:.4f}", refresh=False)
            if self.rank == 0 and (t % max(1, self.iterations // 10) == 0 or t == self.iterations - 1):
                logger.info("iteration %d/%d %s", t + 1, self.iterations,
                            " ".join(f"{k}={v:.5g}" for k, v in rows[-1].items()
                                     if k not in ("iteration", "update", "minibatch", "step")))
            with self.clock.exclude("checkpoints"):
                self.checkpointer.step_done(t + 1, lambda: {"next_iteration": t + 1, "history": history,
                                                            "rng": rng_state()})
        scalars.close()
        return history


HISTORY_ORDER = ("step", "iteration", "update", "minibatch", "lr", "objective", "mean_loss", "ess_fraction",
                 "max_weight", "penalty", "logratio_ref_mean", "logratio_ref_absmax", "chosen_logratio",
                 "rejected_logratio", "margin", "preference_accuracy", "reward_gap_sq", "mean_reward")


def history_frame(history: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(history)
    return frame[[c for c in HISTORY_ORDER if c in frame.columns]]


def main(argv=None) -> None:
    clock = JobClock()
    setup_logging()
    args = parse_args(argv)
    started = time.time()
    aligner = Aligner(args, clock)
    if aligner.rank == 0:
        logger.info("variant %s (base %s, set %s) radius %g | %d iterations x %d steps (iteration batch %d, %d "
                    "pass(es)) | world %d, micro %d x accum %d = global %d | %s, ZeRO-%d",
                    aligner.variant.name, aligner.variant.base, aligner.variant.ambiguity, args.radius,
                    aligner.iterations, aligner.plan.steps_per_iteration, aligner.plan.iteration_batch,
                    aligner.plan.updates, aligner.world, aligner.split.micro_batch, aligner.split.grad_accum,
                    aligner.split.global_batch, aligner.precision, args.zero_stage)
    with clock.phase("training"):
        history = aligner.train()
    out = Path(args.out)
    with clock.phase("final_save"):
        save_model(aligner.engine, aligner.tokenizer, out / "policy", aligner.rank)
        if aligner.rank == 0:
            hist = history_frame(history)
            hist.to_csv(out / "history.csv", index=False)
            tail = hist.tail(max(1, len(hist) // 10))
            # metrics.json holds only quantities that depend on (data, seed, config): reruns compare byte for byte.
            write_json_atomic(out / "metrics.json", {
                "variant": aligner.variant.name, "radius": args.radius, "seed": args.seed, "regime": args.regime,
                "anchor": args.anchor, "iterations": aligner.iterations, "steps": len(hist),
                "final_objective": float(hist["objective"].iloc[-1]),
                "final_mean_loss": float(hist["mean_loss"].iloc[-1]),
                "tail_objective": float(tail["objective"].mean()),
            })
    if aligner.rank == 0:
        write_run_info(out / "run_info.json", job="align", seed=args.seed,
                       **run_info_fields(aligner.split, aligner.ds_config, aligner.precision),
                       numerics=aligner.numerics(), iteration_batch=aligner.plan.iteration_batch,
                       truncated_pairs=getattr(aligner, "truncated_pairs", 0),
                       updates_per_iteration=aligner.plan.updates, deepspeed_config=aligner.ds_config,
                       args=vars(args), wall_seconds=round(time.time() - started, 2), **clock.report())
        logger.info("done in %.1fs: %s", time.time() - started, out)
    aligner.checkpointer.finish()


if __name__ == "__main__":
    run(main)
