"""Unit tests: grid expansion, radius spelling, mixtures, Bradley-Terry labels, log-prob masking."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from workflow_scripts.core.logprobs import build_pair_batch, forward_logprob, sequence_logprob
from workflow_scripts.core.grid import expand_grid, format_hparam, format_radius, hparams_for, parse_hparam, radii_for
from workflow_scripts.core.mixtures import bradley_terry_labels, mix, preference_probability

RADII = {"wasserstein": [50, 75.0], "kl": [0.5, 1], "chi2": [0.1, 1e-6]}


# ----------------------------------------------------------------------------- grid
def test_format_radius_is_canonical():
    assert format_radius(50) == format_radius(50.0) == format_radius("50") == "50"
    assert format_radius(0.5) == "0.5"
    assert format_radius(1e-4) == "0.0001"
    assert format_radius(1e-6) == "1e-06"
    assert format_radius(0) == "0"
    with pytest.raises(ValueError, match="radius"):
        format_radius(-1)


HPARAMS = {"eta": [1, 10.0, 100], "beta": [0.1]}


def test_format_hparam_is_canonical_and_named():
    assert format_hparam("eta", 10) == format_hparam("eta", 10.0) == format_hparam("eta", "10") == "eta10"
    assert format_hparam("beta", 0.1) == "beta0.1" and format_hparam("eta", 1e-4) == "eta0.0001"
    assert parse_hparam("eta10") == ("eta", 10.0) and parse_hparam("beta0.01") == ("beta", 0.01)
    for bad in ("eta10.0", "beta1e-01", "gamma1"):
        with pytest.raises(ValueError):
            parse_hparam(bad)                                   # a second spelling of a path is refused
    with pytest.raises(ValueError):
        format_hparam("eta", 0)
    assert hparams_for("kl-rebel", HPARAMS) == ["eta1", "eta10", "eta100"] and hparams_for("wdpo", HPARAMS) == ["beta0.1"]


def test_grid_has_one_row_per_job():
    variants = ["rebel", "w-rebel", "kl-rebel", "chi2-rebel", "dpo", "wdpo", "kl-dpo", "chi2-dpo"]
    grid = pd.DataFrame(expand_grid(variants, RADII, HPARAMS, seeds=[0, 1, 2]))
    # REBEL family: (1 + 3 robust x 2 radii) x 3 etas; DPO family: (1 + 3 x 2) x 1 beta; times 3 seeds
    assert len(grid) == ((1 + 3 * 2) * 3 + (1 + 3 * 2) * 1) * 3
    assert not grid.duplicated().any()
    assert set(grid[grid.variant == "kl-rebel"].hp) == {"eta1", "eta10", "eta100"}
    assert set(grid[grid.variant == "dpo"].hp) == {"beta0.1"}
    assert set(grid[grid.variant == "rebel"].radius) == {"0"}
    assert set(grid[grid.variant == "wdpo"].radius) == {"50", "75"}
    assert set(grid[grid.variant == "chi2-dpo"].radius) == {"0.1", "1e-06"}
    assert radii_for("kl-dpo", RADII) == ["0.5", "1"]


def test_grid_rejects_unknown_variant():
    with pytest.raises(ValueError, match="unknown variant"):
        expand_grid(["ppo"], RADII, HPARAMS, [0])


# ----------------------------------------------------------------------------- mixtures
def test_convex_and_geometric_mixtures():
    r1, r2 = np.array([0.2, 0.9]), np.array([0.8, 0.1])
    np.testing.assert_allclose(mix(r1, r2, 0.25, "convex"), [0.25 * 0.2 + 0.75 * 0.8, 0.25 * 0.9 + 0.75 * 0.1])
    np.testing.assert_allclose(mix(r1, r2, 0.25, "geometric"), [0.2 ** 0.25 * 0.8 ** 0.75, 0.9 ** 0.25 * 0.1 ** 0.75])
    # endpoints recover the single objectives for both mixtures
    for kind in ("convex", "geometric"):
        np.testing.assert_allclose(mix(r1, r2, 1.0, kind), r1)
        np.testing.assert_allclose(mix(r1, r2, 0.0, kind), r2)
    with pytest.raises(ValueError, match="alpha"):
        mix(r1, r2, 1.5)
    with pytest.raises(ValueError, match="unknown mixture"):
        mix(r1, r2, 0.5, "harmonic")


def test_bradley_terry_probability_and_label_frequency():
    assert preference_probability(0.7, 0.2, scale=2.0) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert preference_probability(1000.0, 0.0) == pytest.approx(1.0)       # no overflow
    n = 200_000
    rng = np.random.default_rng(0)
    ra, rb = np.full(n, 0.6), np.full(n, 0.1)
    labels = bradley_terry_labels(ra, rb, scale=4.0, rng=rng)
    expected = 1 / (1 + math.exp(-4.0 * 0.5))
    # binomial standard error ~ 1e-3: 5 sigma
    assert abs(labels.mean() - expected) < 5 * math.sqrt(expected * (1 - expected) / n)
    assert set(np.unique(labels)) <= {0, 1}


# ----------------------------------------------------------------------------- masking
def test_pair_batch_masks_prompt_and_padding():
    batch = build_pair_batch([[5, 6], [7]], [[8, 9, 10], [11]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 8, 9, 10], [7, 11, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert batch["response_mask"].tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]


def test_sequence_logprob_sums_response_tokens_only():
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 7)
    ids = torch.tensor([[1, 2, 3, 4, 0]])
    response = torch.tensor([[0, 0, 1, 1, 0]])      # tokens 3 and 4 are the response, last is padding
    lp = torch.log_softmax(logits, -1)
    expected = lp[0, 1, 3] + lp[0, 2, 4]             # token t is predicted at position t-1
    assert sequence_logprob(logits, ids, response).item() == pytest.approx(expected.item(), rel=1e-6)


def test_logprob_independent_of_padding_and_batchmates():
    """A pair's log-prob is the same alone or right-padded next to a longer sequence."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=30, n_positions=32,
                                       attn_implementation="eager")).eval()
    prompt, response = [3, 4, 5], [6, 7]
    alone = build_pair_batch([prompt], [response], pad_id=0)
    padded = build_pair_batch([prompt, [1, 2, 3, 4]], [response, [5, 6, 7, 8, 9, 10]], pad_id=0)
    with torch.no_grad():
        a, _ = forward_logprob(model, alone)
        b, _ = forward_logprob(model, padded)
        # brute force: chain rule over the response tokens with the full sequence
        full = torch.tensor([prompt + response])
        lp = torch.log_softmax(model(full).logits, -1)
        brute = lp[0, 2, 6] + lp[0, 3, 7]
    assert a[0].item() == pytest.approx(b[0].item(), abs=1e-5)
    assert a[0].item() == pytest.approx(brute.item(), abs=1e-5)


def test_roc_auc_equals_pairwise_definition_with_ties():
    """The reward model's AUC: P(score_pos > score_neg) + 1/2 P(tie), by brute force over pairs."""
    from workflow_scripts.emotion.train_reward import roc_auc

    rng = np.random.default_rng(0)
    for _ in range(100):
        scores = rng.integers(0, 5, size=30).astype(float)
        targets = rng.integers(0, 2, size=30)
        pos, neg = scores[targets == 1], scores[targets == 0]
        if len(pos) and len(neg):
            brute = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
            assert roc_auc(scores, targets) == pytest.approx(brute, abs=1e-12)
    assert math.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))
