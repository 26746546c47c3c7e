r"""The synthetic preference model of the radius-coverage study, and the divergences D(P* || P_n).

The model
---------
A log-linear policy ``pi_theta(y | x) ∝ exp(theta^T phi(x, y))`` with the reference (and REBEL
anchor) at ``theta = 0`` and ``beta = eta = 1`` (the scale is absorbed into theta). The
normaliser cancels in a log-ratio of two responses, so a pair is summarised by its feature
difference ``Δphi = phi(x, y1) - phi(x, y2)`` and the implicit reward gap is ``theta^T Δphi``.

There are ``K`` **atoms**: feature differences ``x_1 .. x_K`` in R^d (standard normal, fixed by
``geometry_seed``), drawn with probabilities ``q`` (a Dirichlet(5) draw, so P* is not uniform),
and a true parameter ``theta*`` of norm ``theta_norm`` (a uniform direction).

A **sample** is an atom with its label:

- ``dpo``: the Bradley-Terry label, y1 preferred with probability ``sigmoid(theta*^T x_k)``.
  Written as "chosen minus rejected", the sample is the vector ``z = +x_k`` or ``z = -x_k`` and
  its loss is ``-log sigmoid(theta^T z)`` (SPEC 3, DPO with beta = 1).
- ``rebel``: the observed reward gap ``r = theta*^T x_k + noise``; its loss is
  ``(theta^T x_k - r)^2`` (SPEC 3, REBEL with eta = 1). The noise is the ``noise_points``-node
  Gauss-Hermite discretisation of N(0, noise_sd^2) (**our choice**: it keeps the support finite;
  mean 0, variance ``noise_sd^2``, symmetric, and it matches the Gaussian's moments up to order
  ``2 * noise_points - 1``). At least 3 nodes: with 2 (Rademacher) noise every loss at theta*
  is the same number and the robust objectives have a kink there.

Cells
-----
The distinct samples are the **cells** of the support: ``2K`` for DPO (atom x label), ``K *
noise_points`` for REBEL (atom x noise node). P* is a categorical over cells and the empirical
distribution P_n is ``counts / n``. Samples in one cell have identical losses, so the robust
weights of SPEC 4 (functions of the per-sample losses) are equal within a cell, and the
sample-level ambiguity sets reduce exactly to the cell-level ones with weights ``counts / n``
(for chi2, ``(n/2) sum_i (p_i - 1/n)^2`` over samples equals ``(1/2) sum_c (P_c - w_c)^2 / w_c``
over cells when the mass is spread evenly within each cell, which the worst case does).
That is why coverage is measured on **cells**, not on the K atoms: the ambiguity set the
estimator uses is a set of distributions over whole samples, labels included. (The atom
marginal would be the ambiguity set of a different, covariate-shift-only estimator; by the
data-processing inequality its divergence is never larger, so its coverage is never smaller.)

Transport geometry (Wasserstein): a cell is a point of the space in which the gradient penalty
perturbs samples: ``z`` in R^d for DPO (the embeddings of the two responses, here their feature
difference); ``(x_k, r)`` in R^{d+1} for REBEL, where the observed reward is transported too
(**our choice**: with the reward held fixed, no mass could move between cells, every cell having
its own reward value, and the ball around P_n would never contain P*). The ground cost is the
Euclidean distance between cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

BASES = ("dpo", "rebel")
SETS = ("chi2", "kl", "wasserstein")


@dataclass(frozen=True)
class Problem:
    """One synthetic preference problem: atoms, theta*, and the cells of the sample space."""

    base: str
    atoms: np.ndarray          # (K, d) feature differences x_k
    q: np.ndarray              # (K,) P* over atoms
    theta_star: np.ndarray     # (d,)
    features: np.ndarray       # (C, d) the loss's feature vector per cell (z for DPO, x_k for REBEL)
    targets: np.ndarray        # (C,) REBEL: the observed reward gap r; DPO: zeros (unused)
    points: np.ndarray         # (C, D) the cell as a point of the transport space
    cell_atom: np.ndarray      # (C,) atom index of each cell
    label_probs: np.ndarray    # (K, L) P*(label | atom), L = 2 (DPO) or noise_points (REBEL)
    p_star: np.ndarray = field(init=False)  # (C,) P* over cells, cell k * L + j

    def __post_init__(self):
        object.__setattr__(self, "p_star", (self.q[:, None] * self.label_probs).ravel())

    @property
    def n_cells(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.atoms.shape[1])


def sigmoid(t):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(t, dtype=float)))


def gauss_hermite_noise(points: int, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and probabilities of the ``points``-node Gauss-Hermite discretisation of N(0, sd^2)."""
    if points < 3:
        raise ValueError(f"noise_points must be >= 3 (2 nodes make every loss at theta* equal), got {points}.")
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)
    return sd * nodes, weights / weights.sum()


def make_problem(base: str, K: int, d: int, theta_norm: float, geometry_seed: int,
                 noise_sd: float = 1.0, noise_points: int = 3) -> Problem:
    """The problem of ``base`` on the atoms fixed by ``geometry_seed`` (the same atoms, q and
    theta* for both bases)."""
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES}, got {base!r}.")
    if K < d:
        raise ValueError(f"K ({K}) must be >= d ({d}) so that the atoms can identify theta*.")
    rng = np.random.default_rng(geometry_seed)
    atoms = rng.standard_normal((K, d))
    q = rng.dirichlet(np.full(K, 5.0))
    direction = rng.standard_normal(d)
    theta_star = theta_norm * direction / np.linalg.norm(direction)
    if base == "dpo":
        p_first = sigmoid(atoms @ theta_star)
        label_probs = np.stack([p_first, 1.0 - p_first], axis=1)            # z = +x_k, z = -x_k
        features = np.stack([atoms, -atoms], axis=1).reshape(2 * K, d)
        targets = np.zeros(2 * K)
        points = features
    else:
        nodes, probs = gauss_hermite_noise(noise_points, noise_sd)
        label_probs = np.tile(probs, (K, 1))
        features = np.repeat(atoms, noise_points, axis=0)
        targets = (atoms @ theta_star)[:, None].repeat(noise_points, axis=1).ravel() + np.tile(nodes, K)
        points = np.concatenate([features, targets[:, None]], axis=1)
    cell_atom = np.repeat(np.arange(K), label_probs.shape[1])
    return Problem(base, atoms, q, theta_star, features, targets, points, cell_atom, label_probs)


def sample_counts(problem: Problem, n: int, rng: np.random.Generator) -> np.ndarray:
    """Counts per cell of ``n`` i.i.d. samples: atoms from ``q``, then each atom's labels.

    Equivalent in law to drawing n samples one by one and grouping them by cell.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    atom_counts = rng.multinomial(n, problem.q)
    if problem.base == "dpo":
        first = rng.binomial(atom_counts, problem.label_probs[:, 0])
        counts = np.stack([first, atom_counts - first], axis=1)
    else:
        counts = rng.multinomial(atom_counts, problem.label_probs[0])
    return counts.ravel()


# --------------------------------------------------------------------------- divergences
def _check_pair(p, q):
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"p and q must be 1-D arrays of the same length, got shapes {p.shape} and {q.shape}.")
    return p, q


def chi2_divergence(p, q) -> float:
    r"""``D(p || q) = (1/2) sum_c (p_c - q_c)^2 / q_c``: the chi-squared ball's divergence.

    Convention: this is the f-divergence with ``f(t) = (t - 1)^2 / 2``, the one whose ball has
    the dual ``min_eta eta + sqrt(1 + 2 rho) sqrt(E_q (l - eta)_+^2)``; with ``q`` the uniform
    distribution over n samples it is the library's ``(n/2) sum_i (p_i - 1/n)^2`` (SPEC 4).
    ``+inf`` when ``p`` puts mass on a cell where ``q`` has none (a ball around ``q`` contains
    only distributions absolutely continuous with respect to it); cells where both are 0 count 0.
    """
    p, q = _check_pair(p, q)
    if np.any((q <= 0) & (p > 0)):
        return math.inf
    keep = q > 0
    return float(0.5 * np.sum((p[keep] - q[keep]) ** 2 / q[keep]))


def kl_divergence(p, q) -> float:
    r"""``KL(p || q) = sum_c p_c log(p_c / q_c)`` (``0 log 0 = 0``), the KL ball's divergence.

    The direction matches the ball ``{P : KL(P || P_n) <= rho}`` whose dual is
    ``min_{lambda > 0} lambda rho + lambda log E_{P_n} exp(l / lambda)``. ``+inf`` when ``p`` has
    mass where ``q`` has none.
    """
    p, q = _check_pair(p, q)
    if np.any((q <= 0) & (p > 0)):
        return math.inf
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def ground_cost(points: np.ndarray) -> np.ndarray:
    """Euclidean distances between the cells' points, ``(C, C)``."""
    points = np.asarray(points, dtype=float)
    return np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)


def wasserstein_distance(p, q, cost: np.ndarray, order: int = 2) -> float:
    r"""Type-``order`` Wasserstein distance between two categoricals on the same cells.

    ``W_k(p, q) = (min_{pi in Pi(p, q)} sum_{ij} pi_ij cost_ij^k)^(1/k)``, solved exactly as a
    linear program (scipy HiGHS) on the cells that carry mass. The study uses ``order=2``:
    the gradient penalty ``rho sqrt(E ||grad_u l||^2)`` is the first-order expansion of the
    worst case over the **type-2** ball, ``sup_{W_2(Q, P) <= rho} E_Q l = E_P l + rho
    ||grad_u l||_{L^2(P)} + o(rho)`` (type 1 would give ``rho sup_u ||grad_u l||``, a maximum
    over the support instead of a root mean square).
    """
    p, q = _check_pair(p, q)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}.")
    rows, cols = np.flatnonzero(p > 0), np.flatnonzero(q > 0)
    a, b = p[rows] / p.sum(), q[cols] / q.sum()
    m, k = len(rows), len(cols)
    c = np.asarray(cost, dtype=float)[np.ix_(rows, cols)] ** order
    if m == 1 or k == 1:                      # a point mass: the only coupling is the product
        return float(np.sum(np.outer(a, b) * c) ** (1.0 / order))
    a_eq = np.zeros((m + k, m * k))
    for i in range(m):
        a_eq[i, i * k:(i + 1) * k] = 1.0
    for j in range(k):
        a_eq[m + j, j::k] = 1.0
    # One marginal constraint is redundant (both sum to 1): drop the last to keep the LP full rank.
    res = linprog(c.ravel(), A_eq=a_eq[:-1], b_eq=np.concatenate([a, b])[:-1], bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"transport LP failed: {res.message}")
    return float(max(res.fun, 0.0) ** (1.0 / order))


def divergence(set_name: str, p_star: np.ndarray, p_n: np.ndarray, cost: np.ndarray | None = None) -> float:
    """``D(P* || P_n)`` in the divergence of ``set_name``'s ball (type-2 Wasserstein for ``wasserstein``)."""
    if set_name == "chi2":
        return chi2_divergence(p_star, p_n)
    if set_name == "kl":
        return kl_divergence(p_star, p_n)
    if set_name == "wasserstein":
        if cost is None:
            raise ValueError("the Wasserstein divergence needs the ground cost matrix.")
        return wasserstein_distance(p_star, p_n, cost, order=2)
    raise ValueError(f"set must be one of {SETS}, got {set_name!r}.")
