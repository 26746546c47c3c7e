"""The robust objective under torch.distributed (2 gloo processes on the CPU, float64).

Each rank holds a slice of the global batch (equal 4/4 and unequal 3/5 splits), computes
``objective(losses_local)`` and backpropagates; the per-rank parameter gradients are
averaged with ``all_reduce`` (what DDP / DeepSpeed do). The result must equal one process
holding the concatenated batch: weights, value, mean loss, penalty and gradients.

Gradient accumulation: a rank's share is further split into micro-batches; a statistics pass
over the share fixes the plan (global weights / the Wasserstein normaliser), then each
micro-batch's surrogate is backpropagated and the gradients summed. Any split (world size x
micro-batches) must give the one-process, whole-batch result (SPEC 4: the whole global batch).

The two processes are spawned once per module (a fixture); every variant and split is then
its own test reading the saved results.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from workflow_scripts.core.losses import robust_objective

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
N, T, V, D, H = 8, 4, 11, 5, 6
WORLD = 2

CONFIGS = {
    "rebel": ("rebel", 0.0, {}),
    "dpo": ("dpo", 0.0, {}),
    "kl-rebel": ("kl-rebel", 0.5, {}),
    "kl-dpo": ("kl-dpo", 0.2, {}),
    "kl-rebel[clipped]": ("kl-rebel", 0.5, {"kl_form": "clipped"}),
    "chi2-rebel": ("chi2-rebel", 0.3, {}),
    "chi2-dpo": ("chi2-dpo", 1.0, {}),
    "w-rebel": ("w-rebel", 0.2, {}),
    "wdpo": ("wdpo", 0.4, {}),
    "w-rebel[pointwise]": ("w-rebel", 0.2, {"wasserstein_form": "pointwise"}),
    "wdpo[pointwise]": ("wdpo", 0.4, {"wasserstein_form": "pointwise"}),
}
SPLITS = {"4+4": (4, 4), "3+5": (3, 5)}
#: Micro-batches of each rank's share (gradient accumulation on top of the rank split).
MICRO_SPLITS = {"4+4": ([2, 2], [1, 3]), "3+5": ([1, 2], [2, 2, 1])}


class Toy(torch.nn.Module):
    """Embedding -> tanh MLP -> per-token score summed over the sequence (a 'sequence log-prob').

    Non-linear in the embeddings, so the Wasserstein penalty's double backward is non-trivial.
    """

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = torch.nn.Embedding(V, D).to(F64)
        self.lin = torch.nn.Linear(D, H).to(F64)
        self.out = torch.nn.Linear(H, 1, bias=False).to(F64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=F64))

    def forward(self, ids):
        e = self.emb(ids)                                               # (R, T, D)
        lp = self.out(torch.tanh(self.lin(e))).squeeze(-1).sum(1) - 5.0  # (R,)
        return lp, e


def make_data():
    g = torch.Generator().manual_seed(1)
    chosen = torch.randint(0, V, (N, T), generator=g)
    rejected = torch.randint(0, V, (N, T), generator=g)
    anchor = torch.randn(N, 2, generator=g, dtype=F64) - 5.0
    reward = torch.randn(N, 2, generator=g, dtype=F64)
    return chosen, rejected, anchor, reward


def step(cfg, start, stop, group=None):
    """One forward/backward on samples [start, stop); returns the output and the flat gradient."""
    variant, radius, kwargs = cfg
    model = Toy()
    chosen, rejected, anchor, reward = make_data()
    ids = torch.cat([chosen[start:stop], rejected[start:stop]])        # k*B layout, k = 2
    lp, emb = model(ids)
    b = stop - start
    logp = torch.stack([lp[:b], lp[b:]], 1)
    obj = robust_objective(variant, radius, eta=1.0, beta=0.5, group=group, **kwargs)
    losses = obj.per_sample(logp, anchor[start:stop], reward[start:stop])
    out = obj(losses, emb if obj.needs_embeddings else None)
    out.loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return out, grad


def accumulated_step(cfg, start, stop, micro_sizes, group=None):
    """Samples [start, stop) as consecutive micro-batches of ``micro_sizes``: statistics pass, plan, then
    one surrogate backward per micro-batch (gradients accumulate). Returns (plan-based output, gradient)."""
    variant, radius, kwargs = cfg
    assert sum(micro_sizes) == stop - start
    model = Toy()
    chosen, rejected, anchor, reward = make_data()
    obj = robust_objective(variant, radius, eta=1.0, beta=0.5, group=group, **kwargs)
    bounds = [(start + sum(micro_sizes[:k]), start + sum(micro_sizes[:k + 1])) for k in range(len(micro_sizes))]

    def forward(lo, hi):
        lp, emb = model(torch.cat([chosen[lo:hi], rejected[lo:hi]]))
        b = hi - lo
        return obj.per_sample(torch.stack([lp[:b], lp[b:]], 1), anchor[lo:hi], reward[lo:hi]), emb

    if obj.separable:
        plan = obj.separable_plan(N, dist.get_world_size(group) if dist.is_initialized() else 1)
    else:
        parts = []
        for lo, hi in bounds:                                           # the statistics pass
            losses, emb = forward(lo, hi)
            parts.append(obj.statistics(losses, obj.sample_sqnorm(losses, emb, create_graph=False)))
        plan = obj.plan(type(parts[0]).cat(parts))
    seen = []
    for lo, hi in bounds:                                               # the gradient pass
        losses, emb = forward(lo, hi)
        sqnorm = obj.sample_sqnorm(losses, emb)
        seen.append(obj.statistics(losses, sqnorm))
        obj.surrogate(losses, sqnorm, plan, lo - start).backward()
    logged = obj.plan(type(seen[0]).cat(seen))                          # what the step logs
    out = type("Out", (), {"weights": logged.weights, "value": logged.value, "mean_loss": logged.mean_loss,
                           "penalty": logged.penalty})
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    return out, grad


def _record(out, grad):
    return {
        "weights": None if out.weights is None else out.weights.clone(),
        "value": out.value.clone(),
        "mean_loss": out.mean_loss.clone(),
        "penalty": None if out.penalty is None else out.penalty.clone(),
        "grad": grad.clone(),
    }


def _worker(rank, init_file, outdir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    results = {}
    try:
        for split_name, sizes in SPLITS.items():
            start = sum(sizes[:rank])
            stop = start + sizes[rank]
            for name, cfg in CONFIGS.items():
                out, grad = step(cfg, start, stop)
                dist.all_reduce(grad, op=dist.ReduceOp.SUM)
                grad /= WORLD                                           # the data-parallel average
                results[(split_name, name)] = _record(out, grad)
                micro = MICRO_SPLITS[split_name][rank]
                out, grad = accumulated_step(cfg, start, stop, micro)
                dist.all_reduce(grad, op=dist.ReduceOp.SUM)
                grad /= WORLD
                results[(split_name + " accumulated", name)] = _record(out, grad)
        # Each rank alone in its own process group: the objective must ignore the other rank.
        groups = [dist.new_group([r]) for r in range(WORLD)]
        start, stop = (0, 4) if rank == 0 else (4, N)
        for name, cfg in CONFIGS.items():
            out, grad = step(cfg, start, stop, group=groups[rank])
            results[("subgroup", name)] = _record(out, grad)
        dist.barrier()
    finally:
        torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def dist_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _assert_same(got, ref, what):
    for key in ["value", "mean_loss"]:
        torch.testing.assert_close(got[key], ref[key], rtol=1e-12, atol=1e-12, msg=f"{what}: {key}")
    for key in ["weights", "penalty"]:
        assert (got[key] is None) == (ref[key] is None), f"{what}: {key}"
        if ref[key] is not None:
            torch.testing.assert_close(got[key], ref[key], rtol=1e-12, atol=1e-12, msg=f"{what}: {key}")
    torch.testing.assert_close(got["grad"], ref["grad"], rtol=1e-10, atol=1e-10, msg=f"{what}: gradient")


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_equal_one_process(dist_results, name, split):
    out, grad = step(CONFIGS[name], 0, N)                               # single process, whole batch
    ref = _record(out, grad)
    assert ref["grad"].abs().max() > 0
    if ref["weights"] is not None:
        assert ref["weights"].shape == (N,)
    for rank in range(WORLD):
        _assert_same(dist_results[rank][(split, name)], ref, f"{name} {split} rank {rank}")


@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_with_accumulation_equal_one_process(dist_results, name, split):
    """2 ranks x several micro-batches each (statistics pass, plan, surrogates) = one process, one pass."""
    out, grad = step(CONFIGS[name], 0, N)
    ref = _record(out, grad)
    for rank in range(WORLD):
        _assert_same(dist_results[rank][(split + " accumulated", name)], ref, f"{name} {split} accumulated rank {rank}")


@pytest.mark.parametrize("micro", [[N], [3, 3, 2], [1] * N])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_accumulation_equals_one_pass(name, micro):
    """One process: the batch as 1, 3 or N micro-batches gives the whole-batch objective and gradient."""
    ref = _record(*step(CONFIGS[name], 0, N))
    _assert_same(_record(*accumulated_step(CONFIGS[name], 0, N, micro)), ref, f"{name} micro {micro}")


def test_per_micro_batch_weights_would_differ():
    """The old per-micro-step weights are NOT the global ones (so the test above can fail)."""
    ref = _record(*step(CONFIGS["chi2-dpo"], 0, N))
    old = [step(CONFIGS["chi2-dpo"], lo, lo + 4) for lo in (0, 4)]     # each half weighted on its own
    grad = (old[0][1] + old[1][1]) / 2
    assert not torch.allclose(grad, ref["grad"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_objective_respects_its_process_group(dist_results, name):
    """group=<a one-rank group> must behave exactly like a single process on that rank's data."""
    for rank, (start, stop) in enumerate([(0, 4), (4, N)]):
        out, grad = step(CONFIGS[name], start, stop)
        _assert_same(dist_results[rank][("subgroup", name)], _record(out, grad), f"{name} rank {rank} own group")
