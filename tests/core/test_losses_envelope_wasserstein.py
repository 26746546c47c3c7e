"""Gradients of the robust objectives.

* Envelope theorem (KL, chi2, plain mean): the gradient of the objective's ``loss`` equals the
  worst-case-weighted sum of per-sample gradients (a loop over samples), the autograd gradient
  of the dual value written out here, and central finite differences of the dual value.
* Wasserstein: per-sample embedding-gradient norms against single-sample forwards and
  finite differences on a tiny float64 GPT-2; the penalty's double-backward gradient against
  finite differences in the parameters; the objective's surrogate against the direct penalty.
"""
from __future__ import annotations

import math

import pytest
import torch

from workflow_scripts.core.losses import (
    chi2_dual,
    dpo_loss,
    kl_value,
    per_sample_grad_sqnorm,
    rebel_loss,
    robust_objective,
    wasserstein_penalty,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


# =========================================================================== envelope theorem
def _toy(seed=0, n=7, d=4):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, generator=g, dtype=F64)
    b = torch.randn(n, generator=g, dtype=F64) * 2.0
    theta = torch.randn(d, generator=g, dtype=F64)
    return A, b, theta


def _losses(A, b, theta):
    return (A @ theta - b) ** 2


def _grad(fn, theta):
    th = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(th), th)
    return g


def _per_sample_grads(A, b, theta):
    """Loop over samples: one forward + backward each."""
    rows = []
    for i in range(A.shape[0]):
        rows.append(_grad(lambda th: _losses(A[i:i + 1], b[i:i + 1], th).sum(), theta))
    return torch.stack(rows)                                     # (n, d)


def _central_difference(fn, theta, h=1e-6):
    out = torch.empty_like(theta)
    for j in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[j] = h
        out[j] = (fn(theta + e) - fn(theta - e)) / (2 * h)
    return out


WEIGHTED = [
    ("rebel", 0.0, {}),
    ("dpo", 0.0, {}),
    ("kl-rebel", 0.3, {}),
    ("kl-dpo", 4.0, {}),
    ("kl-rebel", 0.5, {"kl_form": "clipped"}),
    ("chi2-rebel", 0.02, {}),
    ("chi2-dpo", 0.7, {}),
    ("chi2-rebel", 2.0, {}),
    ("chi2-dpo", 100.0, {}),
]


def _independent_weights(variant, radius, kwargs, l):
    """Worst-case weights computed here, not by the library (chi2: returns None)."""
    n = l.numel()
    if variant in ("rebel", "dpo"):
        return torch.full_like(l, 1.0 / n)
    if variant.startswith("kl"):
        if kwargs.get("kl_form") == "clipped":
            return torch.tensor([min(math.exp((x - l.mean().item()) / radius), 10.0) / n for x in l.tolist()], dtype=F64)
        e = [math.exp(x / radius) for x in l.tolist()]
        return torch.tensor([x / sum(e) for x in e], dtype=F64)
    return None


@pytest.mark.parametrize("variant,radius,kwargs", WEIGHTED)
@pytest.mark.parametrize("seed", [0, 1])
def test_envelope_weighted_sum_of_per_sample_gradients(variant, radius, kwargs, seed):
    A, b, theta = _toy(seed)
    obj = robust_objective(variant, radius, **kwargs)
    th = theta.clone().requires_grad_(True)
    out = obj(_losses(A, b, th))
    (g_obj,) = torch.autograd.grad(out.loss, th)

    l = _losses(A, b, theta)
    G = _per_sample_grads(A, b, theta)
    w = out.weights
    assert w is not None and not w.requires_grad
    torch.testing.assert_close(g_obj, w @ G, rtol=1e-12, atol=1e-12)

    w_ref = _independent_weights(variant, radius, kwargs, l)
    if w_ref is not None:
        torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(g_obj, w_ref @ G, rtol=1e-11, atol=1e-12)
    assert out.mean_loss.item() == pytest.approx(l.mean().item(), rel=1e-14)


@pytest.mark.parametrize("tau", [0.05, 0.3, 1.0, 20.0])
def test_kl_gradient_is_gradient_of_log_mean_exp(tau):
    A, b, theta = _toy(3)
    obj = robust_objective("kl-dpo", tau)
    g_obj = _grad(lambda th: obj(_losses(A, b, th)).loss, theta)

    def dual(th):                                                 # tau log mean exp(l / tau), written out
        l = _losses(A, b, th)
        return tau * (torch.logsumexp(l / tau, 0) - math.log(l.numel()))

    torch.testing.assert_close(g_obj, _grad(dual, theta), rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(g_obj, _grad(lambda th: kl_value(_losses(A, b, th), tau), theta), rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(g_obj, _central_difference(lambda th: dual(th).item(), theta), rtol=1e-6, atol=1e-8)
    out = obj(_losses(A, b, theta))
    assert out.value.item() == pytest.approx(dual(theta).item(), rel=1e-13)


@pytest.mark.parametrize("rho", [0.01, 0.1, 0.5, 1.5, 2.9])
@pytest.mark.parametrize("seed", [0, 4])
def test_chi2_gradient_is_gradient_of_dual_at_fixed_eta(rho, seed):
    A, b, theta = _toy(seed)
    n = A.shape[0]
    obj = robust_objective("chi2-rebel", rho)
    g_obj = _grad(lambda th: obj(_losses(A, b, th)).loss, theta)

    l0 = _losses(A, b, theta)
    eta_star = chi2_dual(l0, rho)[0].item()
    c = math.sqrt(1.0 + 2.0 * rho)

    def dual(th, eta=eta_star):                                   # eta + sqrt(1+2rho) sqrt(mean (l-eta)_+^2)
        l = _losses(A, b, th)
        return eta + c * torch.sqrt(torch.mean(torch.clamp(l - eta, min=0.0) ** 2))

    torch.testing.assert_close(g_obj, _grad(dual, theta), rtol=1e-10, atol=1e-12)
    out = obj(l0)
    assert out.value.item() == pytest.approx(dual(theta).item(), rel=1e-12)

    # Finite differences of the dual VALUE (eta* re-optimised at every theta): smooth away
    # from breakpoints (no loss at eta*) and below the max(l) regime.
    assert (l0 - eta_star).abs().min().item() > 1e-3
    assert rho < (n - 1) / 2
    fd = _central_difference(lambda th: chi2_dual(_losses(A, b, th), rho)[1].item(), theta)
    torch.testing.assert_close(g_obj, fd, rtol=1e-6, atol=1e-7)


def test_chi2_large_radius_gradient_is_gradient_of_max():
    A, b, theta = _toy(5)
    l = _losses(A, b, theta)
    i = int(torch.argmax(l))
    obj = robust_objective("chi2-dpo", 50.0)
    g_obj = _grad(lambda th: obj(_losses(A, b, th)).loss, theta)
    torch.testing.assert_close(g_obj, _per_sample_grads(A, b, theta)[i], rtol=1e-12, atol=1e-12)


# =========================================================================== Wasserstein on a tiny GPT-2
B, T, PROMPT = 3, 6, 2


@pytest.fixture(scope="module")
def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        n_layer=2, n_embd=16, n_head=2, vocab_size=50, n_positions=16,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        attn_implementation="eager",                              # double backward through attention
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).double().eval()
    assert model.config._attn_implementation == "eager"
    return model


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 50, (B, PROMPT), generator=g)
    chosen = torch.cat([prompt, torch.randint(0, 50, (B, T - PROMPT), generator=g)], 1)
    rejected = torch.cat([prompt, torch.randint(0, 50, (B, T - PROMPT), generator=g)], 1)
    ids = torch.cat([chosen, rejected])                         # rows [chosen_0..B-1, rejected_0..B-1]
    ref = torch.randn(B, 2, generator=g, dtype=F64) * 0.5 - 20.0
    reward = torch.rand(B, 2, generator=g, dtype=F64)
    return ids, ref, reward


def _seq_logp(model, emb, ids):
    """Sum of response-token log-probs of every row, from input embeddings."""
    logits = model(inputs_embeds=emb).logits                     # (R, T, V)
    logprobs = torch.log_softmax(logits[:, :-1], -1)
    tok = torch.gather(logprobs, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return tok[:, PROMPT - 1:].sum(1)                             # tokens PROMPT.. are the response


def _pairs(lp):
    half = lp.shape[0] // 2
    return torch.stack([lp[:half], lp[half:]], 1)


def _dpo_losses(model, ids, ref, beta=0.5):
    emb = model.get_input_embeddings()(ids)
    return dpo_loss(_pairs(_seq_logp(model, emb, ids)), ref, beta), emb


def test_per_sample_sqnorm_matches_single_sample_forwards(gpt2, batch):
    ids, ref, _ = batch
    losses, emb = _dpo_losses(gpt2, ids, ref)
    assert emb.requires_grad and emb.shape == (2 * B, T, 16)
    sq = per_sample_grad_sqnorm(losses, emb)
    assert sq.shape == (B,)
    for i in range(B):
        rows = torch.tensor([i, B + i])
        l_i, emb_i = _dpo_losses(gpt2, ids[rows], ref[i:i + 1])
        (g_i,) = torch.autograd.grad(l_i.sum(), emb_i)
        assert sq[i].item() == pytest.approx(g_i.pow(2).sum().item(), rel=1e-12)
        assert sq[i].item() > 0


def test_per_sample_sqnorm_matches_finite_differences(gpt2, batch):
    ids, ref, _ = batch
    beta, h = 0.5, 1e-5
    losses, emb = _dpo_losses(gpt2, ids, ref, beta)
    sq = per_sample_grad_sqnorm(losses, emb)
    with torch.no_grad():
        e0 = gpt2.get_input_embeddings()(ids)
        lp0 = _seq_logp(gpt2, e0, ids)
        for i in [0, B - 1]:
            total = 0.0
            for col, r in enumerate([i, B + i]):                  # chosen row, rejected row of sample i
                base = e0[r]
                k = base.numel()
                eye = torch.eye(k, dtype=F64).view(k, T, 16) * h
                ids_r = ids[r].expand(k, T)
                lp_plus = _seq_logp(gpt2, base + eye, ids_r)
                lp_minus = _seq_logp(gpt2, base - eye, ids_r)

                def loss_with(lp_r):
                    pair = torch.empty(k, 2, dtype=F64)
                    pair[:, col] = lp_r
                    pair[:, 1 - col] = lp0[B + i if col == 0 else i]
                    return dpo_loss(pair, ref[i].expand(k, 2), beta)

                grad_fd = (loss_with(lp_plus) - loss_with(lp_minus)) / (2 * h)
                total += grad_fd.pow(2).sum().item()
            assert sq[i].item() == pytest.approx(total, rel=1e-6)


def _penalty(model, ids, ref, rho0, form):
    losses, emb = _dpo_losses(model, ids, ref)
    return wasserstein_penalty(losses, emb, rho0, form)


@pytest.mark.parametrize("form", ["sqrt_mean", "pointwise"])
def test_penalty_parameter_gradient_matches_finite_differences(gpt2, batch, form):
    ids, ref, _ = batch
    rho0, h = 0.7, 1e-5
    gpt2.zero_grad(set_to_none=True)
    pen = _penalty(gpt2, ids, ref, rho0, form)
    pen.backward()
    entries = [
        (gpt2.transformer.h[0].mlp.c_fc.weight, (1, 3)),
        (gpt2.transformer.h[1].attn.c_attn.weight, (4, 7)),
        (gpt2.transformer.ln_f.weight, (5,)),
        (gpt2.transformer.wte.weight, (int(ids[0, 3]), 2)),      # tied with the LM head
    ]
    try:
        for param, idx in entries:
            g = param.grad[idx].item()
            assert math.isfinite(g)
            orig = param.data[idx].item()
            param.data[idx] = orig + h
            up = _penalty(gpt2, ids, ref, rho0, form).item()
            param.data[idx] = orig - h
            down = _penalty(gpt2, ids, ref, rho0, form).item()
            param.data[idx] = orig
            assert g == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)
        for p in gpt2.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()
    finally:
        gpt2.zero_grad(set_to_none=True)


def _flat_grad(model, scalar):
    grads = torch.autograd.grad(scalar, list(model.parameters()), allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(model.parameters(), grads)])


def _per_sample_losses(model, variant, ids, ref, reward, eta=1.0, beta=0.5):
    emb = model.get_input_embeddings()(ids)
    logp = _pairs(_seq_logp(model, emb, ids))
    if variant == "w-rebel":
        return rebel_loss(logp, ref, reward, eta), emb
    return dpo_loss(logp, ref, beta), emb


@pytest.mark.parametrize("form", ["sqrt_mean", "pointwise"])
@pytest.mark.parametrize("variant", ["w-rebel", "wdpo"])
def test_wasserstein_objective_gradient_equals_direct_penalty(gpt2, batch, variant, form):
    ids, ref, reward = batch
    rho0 = 0.3
    obj = robust_objective(variant, rho0, eta=1.0, beta=0.5, wasserstein_form=form)

    emb = gpt2.get_input_embeddings()(ids)
    logp = _pairs(_seq_logp(gpt2, emb, ids))
    out = obj(obj.per_sample(logp, ref, reward), emb)
    g_obj = _flat_grad(gpt2, out.loss)
    assert out.weights is None

    # (1) mean(l) + wasserstein_penalty(...), differentiated directly
    losses, emb = _per_sample_losses(gpt2, variant, ids, ref, reward)
    pen = wasserstein_penalty(losses, emb, rho0, form)
    g_direct = _flat_grad(gpt2, losses.mean() + pen)
    torch.testing.assert_close(g_obj, g_direct, rtol=1e-10, atol=1e-12)

    # (2) the penalty rebuilt from single-sample forwards (no batch trick, no library helper)
    losses, _ = _per_sample_losses(gpt2, variant, ids, ref, reward)
    sqnorms = []
    for i in range(B):
        rows = torch.tensor([i, B + i])
        l_i, e_i = _per_sample_losses(gpt2, variant, ids[rows], ref[i:i + 1], reward[i:i + 1])
        (g_i,) = torch.autograd.grad(l_i.sum(), e_i, create_graph=True)
        sqnorms.append(g_i.pow(2).sum())
    sqnorms = torch.stack(sqnorms)
    pen_ref = rho0 * (torch.sqrt(sqnorms.mean()) if form == "sqrt_mean" else sqnorms.mean())
    g_ref = _flat_grad(gpt2, losses.mean() + pen_ref)
    torch.testing.assert_close(g_obj, g_ref, rtol=1e-10, atol=1e-12)
    assert g_obj.abs().max() > 0

    assert out.penalty.item() == pytest.approx(pen_ref.item(), rel=1e-12)
    assert out.mean_loss.item() == pytest.approx(losses.mean().item(), rel=1e-13)
    assert out.value.item() == pytest.approx(losses.mean().item() + pen_ref.item(), rel=1e-12)


def test_wasserstein_zero_radius_is_the_base_gradient(gpt2, batch):
    ids, ref, reward = batch
    obj = robust_objective("wdpo", 0.0, beta=0.5)
    losses, emb = _per_sample_losses(gpt2, "wdpo", ids, ref, reward)
    g_obj = _flat_grad(gpt2, obj(losses, emb).loss)
    losses, _ = _per_sample_losses(gpt2, "wdpo", ids, ref, reward)
    torch.testing.assert_close(g_obj, _flat_grad(gpt2, losses.mean()), rtol=1e-12, atol=1e-14)


def test_wasserstein_penalty_zero_gradient_is_finite():
    """All embedding gradients zero (at e = 0, l = w (sum e)^2): penalty 0, finite gradient."""
    w = torch.tensor(0.5, dtype=F64, requires_grad=True)
    e = torch.zeros(4, 3, dtype=F64, requires_grad=True)
    per_row = e.sum(dim=1).view(2, 2).sum(0)                      # rows j*B + i -> sample i (B = 2)
    losses = w * per_row ** 2
    for form in ["sqrt_mean", "pointwise"]:
        pen = wasserstein_penalty(losses, e, 0.3, form)
        (g,) = torch.autograd.grad(pen, w, retain_graph=True)
        assert pen.item() == pytest.approx(0.0, abs=1e-15)
        assert math.isfinite(g.item())
