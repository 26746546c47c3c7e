"""The radius-coverage study: generator, divergences, exact duals, estimators, report, and the
mini stage through Snakemake (well under a minute)."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy.optimize import check_grad, minimize
from scipy.stats import chi2 as chi2_law
from scipy.stats import wasserstein_distance as scipy_w1

from workflow_scripts.core.losses import chi2_dual, kl_value, per_sample_grad_sqnorm
from workflow_scripts.radius_coverage import report, simulate
from workflow_scripts.radius_coverage.estimators import (
    base_losses,
    chi2_dual_weighted,
    fit,
    fit_nonrobust,
    input_grad_sqnorm,
    kl_dual_weighted,
    robust_value_and_grad,
    separable,
)
from workflow_scripts.radius_coverage.model import (
    BASES,
    SETS,
    chi2_divergence,
    gauss_hermite_noise,
    ground_cost,
    kl_divergence,
    make_problem,
    sample_counts,
    sigmoid,
    wasserstein_distance,
)

GEOMETRY = dict(K=6, d=3, theta_norm=1.5, geometry_seed=0, noise_sd=1.0, noise_points=3)


@pytest.fixture(scope="module", params=BASES)
def problem(request):
    return make_problem(request.param, **GEOMETRY)


# ----------------------------------------------------------------------------- the generator
def test_problem_cells_and_true_distribution(problem):
    assert problem.p_star.sum() == pytest.approx(1.0, abs=1e-12)
    assert (problem.p_star > 0).all()
    atom_mass = np.bincount(problem.cell_atom, weights=problem.p_star)
    np.testing.assert_allclose(atom_mass, problem.q, atol=1e-12)
    margin = problem.atoms @ problem.theta_star
    assert np.linalg.norm(problem.theta_star) == pytest.approx(1.5)
    if problem.base == "dpo":                      # cells +x_k, -x_k with Bradley-Terry probabilities
        np.testing.assert_allclose(problem.p_star[0::2], problem.q * sigmoid(margin), atol=1e-12)
        np.testing.assert_allclose(problem.features[1::2], -problem.atoms)
    else:                                          # r = theta*^T x + noise, noise mean 0 and variance sd^2
        r = problem.targets.reshape(6, 3)
        probs = problem.label_probs[0]
        np.testing.assert_allclose(r @ probs, margin, atol=1e-12)
        np.testing.assert_allclose(((r - margin[:, None]) ** 2) @ probs, 1.0, atol=1e-12)


def test_gauss_hermite_noise_matches_gaussian_moments():
    nodes, probs = gauss_hermite_noise(3, 2.0)
    np.testing.assert_allclose(sorted(nodes), [-2 * math.sqrt(3), 0.0, 2 * math.sqrt(3)], atol=1e-12)
    np.testing.assert_allclose(sorted(probs), [1 / 6, 1 / 6, 2 / 3], atol=1e-12)
    for k, moment in [(1, 0.0), (2, 4.0), (3, 0.0), (4, 3 * 16.0)]:
        assert probs @ nodes ** k == pytest.approx(moment, abs=1e-9)
    with pytest.raises(ValueError, match=">= 3"):
        gauss_hermite_noise(2, 1.0)


def test_empirical_frequencies_converge_to_p_star(problem):
    rng = np.random.default_rng(0)
    errors = []
    for n in (1_000, 100_000, 10_000_000):
        counts = sample_counts(problem, n, rng)
        assert counts.sum() == n and counts.shape == problem.p_star.shape
        freq = counts / n
        sd = np.sqrt(problem.p_star * (1 - problem.p_star) / n)
        assert np.all(np.abs(freq - problem.p_star) <= 5 * sd)
        errors.append(np.abs(freq - problem.p_star).max())
    assert errors[2] < errors[1] < errors[0]
    # Pearson's test at n = 1e5: the hierarchical draw (atoms, then labels) has law Multinomial(n, P*).
    counts = sample_counts(problem, 100_000, np.random.default_rng(1))
    stat = np.sum((counts - 1e5 * problem.p_star) ** 2 / (1e5 * problem.p_star))
    assert chi2_law.sf(stat, problem.n_cells - 1) > 1e-3


# ----------------------------------------------------------------------------- divergences
def test_divergences_by_hand():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert chi2_divergence(p, q) == pytest.approx(0.5 * (0.0625 / 0.25 + 0.0625 / 0.75))   # = 1/6
    assert chi2_divergence(p, q) == pytest.approx(1 / 6)
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert chi2_divergence(p, p) == 0.0 and kl_divergence(p, p) == 0.0
    # P_n misses a cell P* has: infinite (coverage false); cells empty in both count 0.
    assert chi2_divergence([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]) == math.inf
    assert kl_divergence([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]) == math.inf
    assert chi2_divergence([0.5, 0.0, 0.5], [0.5, 0.0, 0.5]) == 0.0
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    # The chi2 convention equals the library's (n/2) sum (p_i - 1/n)^2 for the uniform P_n.
    w = np.random.default_rng(0).dirichlet(np.ones(5))
    assert chi2_divergence(w, np.full(5, 0.2)) == pytest.approx(2.5 * np.sum((w - 0.2) ** 2))


def test_wasserstein_by_hand():
    points = np.array([[0.0, 0.0], [3.0, 4.0]])                      # distance 5
    cost = ground_cost(points)
    assert cost[0, 1] == pytest.approx(5.0)
    assert wasserstein_distance([1, 0], [0, 1], cost, order=2) == pytest.approx(5.0)
    assert wasserstein_distance([0.5, 0.5], [1, 0], cost, order=1) == pytest.approx(2.5)
    assert wasserstein_distance([0.5, 0.5], [1, 0], cost, order=2) == pytest.approx(5 / math.sqrt(2))
    assert wasserstein_distance([0.3, 0.7], [0.3, 0.7], cost) == pytest.approx(0.0, abs=1e-12)
    # Three points on a line: moving 0.25 over distance 1 and 0.25 over distance 2.
    line = ground_cost(np.array([[0.0], [1.0], [3.0]]))
    p, q = np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.5, 0.25])
    assert wasserstein_distance(p, q, line, order=1) == pytest.approx(0.25)
    assert wasserstein_distance(p, q, line, order=2) == pytest.approx(0.5)


def test_wasserstein_matches_one_dimensional_closed_forms():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = np.sort(rng.normal(size=6))
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        cost = ground_cost(x[:, None])
        assert wasserstein_distance(p, q, cost, order=1) == pytest.approx(scipy_w1(x, x, p, q), abs=1e-9)
        # W_2 in 1-D: the L2 distance between quantile functions.
        levels = np.unique(np.concatenate([[0.0], np.cumsum(p), np.cumsum(q)]).clip(0, 1))
        mids = 0.5 * (levels[1:] + levels[:-1])
        qp = x[np.minimum(np.searchsorted(np.cumsum(p), mids), 5)]
        qq = x[np.minimum(np.searchsorted(np.cumsum(q), mids), 5)]
        w2 = math.sqrt(np.sum(np.diff(levels) * (qp - qq) ** 2))
        assert wasserstein_distance(p, q, cost, order=2) == pytest.approx(w2, abs=1e-7)


# ----------------------------------------------------------------------------- exact duals
def _primal(losses, weights, rho, divergence):
    """sup_P E_P l over the ball by SLSQP from several starts (the brute force the duals must match)."""
    w = weights / weights.sum()
    keep = w > 0
    l, w = losses[keep], w[keep]
    cons = [{"type": "eq", "fun": lambda p: p.sum() - 1.0},
            {"type": "ineq", "fun": lambda p: rho - divergence(np.clip(p, 1e-300, None), w)}]
    best = -math.inf
    starts = [w, np.full_like(w, 1 / len(w))] + [np.random.default_rng(s).dirichlet(np.ones(len(w))) for s in range(3)]
    for p0 in starts:
        res = minimize(lambda p: -(p @ l), p0, jac=lambda p: -l, method="SLSQP", bounds=[(0, 1)] * len(w),
                       constraints=cons, options={"ftol": 1e-13, "maxiter": 500})
        if res.success and divergence(np.clip(res.x, 0, None), w) <= rho + 1e-7:
            best = max(best, -res.fun)
    return best


def test_weighted_chi2_dual_equals_library_on_unit_weights():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40):
        for rho in (1e-4, 0.1, 1.0, 7.0, 100.0):
            l = rng.normal(size=n)
            eta, value, p = chi2_dual_weighted(l, np.ones(n), rho)
            lib_eta, lib_value = chi2_dual(torch.tensor(l), rho)
            assert value == pytest.approx(float(lib_value), abs=1e-10)
            assert p.sum() == pytest.approx(1.0)


def test_weighted_chi2_dual_equals_library_on_expanded_samples():
    """Counts per cell and the same samples listed one by one give the same worst case."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        l = rng.normal(size=7)
        counts = rng.integers(0, 6, size=7)
        counts[0] += 1
        expanded = np.repeat(l, counts)
        for rho in (0.01, 0.3, 2.0):
            value = chi2_dual_weighted(l, counts, rho)[1]
            assert value == pytest.approx(float(chi2_dual(torch.tensor(expanded), rho)[1]), abs=1e-10)


def test_weighted_chi2_dual_equals_brute_force_primal():
    rng = np.random.default_rng(2)
    for trial in range(15):
        l = rng.normal(size=6)
        if trial % 3 == 0:
            l[:2] = l[2]                                                # ties
        w = rng.dirichlet(np.ones(6))
        for rho in (0.02, 0.5, 3.0):
            eta, value, p = chi2_dual_weighted(l, w, rho)
            assert value == pytest.approx(_primal(l, w, rho, chi2_divergence), abs=1e-6)
            assert p @ l == pytest.approx(value, abs=1e-9)              # the worst case attains it
            assert chi2_divergence(p, w) <= rho + 1e-9


def test_weighted_kl_dual_equals_brute_force_primal_and_library():
    rng = np.random.default_rng(4)
    for trial in range(15):
        l = rng.normal(size=6)
        w = rng.dirichlet(np.ones(6))
        for rho in (0.01, 0.3, 1.0):
            lam, value, p = kl_dual_weighted(l, w, rho)
            assert value == pytest.approx(_primal(l, w, rho, kl_divergence), abs=1e-6)
            if lam > 0:
                assert kl_divergence(p, w) == pytest.approx(rho, abs=1e-9)
                assert p @ l == pytest.approx(value, abs=1e-9)
    # The library's penalised value at tau = lambda* plus lambda* rho is the constrained value.
    l = rng.normal(size=9)
    lam, value, _ = kl_dual_weighted(l, np.ones(9), 0.2)
    assert value == pytest.approx(float(kl_value(torch.tensor(l), lam)) + lam * 0.2, abs=1e-10)


def test_dual_edge_cases():
    l, w = np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.3, 0.5])
    for dual in (chi2_dual_weighted, kl_dual_weighted):
        assert dual(l, w, 0.0)[1] == pytest.approx(l @ w)               # rho = 0: the mean
        assert dual(np.full(3, 2.5), w, 0.7)[1] == pytest.approx(2.5)   # equal losses
        assert dual(l, w, 50.0)[1] == pytest.approx(3.0)                # huge ball: the maximum
        with pytest.raises(ValueError):
            dual(l, w, -1.0)
    # Zero-weight cells cannot receive mass.
    assert chi2_dual_weighted([1.0, 9.0], [1.0, 0.0], 5.0)[1] == pytest.approx(1.0)
    assert kl_dual_weighted([1.0, 9.0], [1.0, 0.0], 5.0)[1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- objectives and estimators
def test_input_gradient_norms_match_the_library_double_backward(problem):
    """||grad_u l||^2 of the Wasserstein penalty equals the library's per-sample autograd."""
    theta = np.array([0.3, -0.7, 1.1])
    g, _ = input_grad_sqnorm(problem, theta)
    emb = torch.tensor(problem.points, requires_grad=True)
    th = torch.tensor(theta)
    if problem.base == "dpo":
        losses = torch.nn.functional.softplus(-(emb @ th))
    else:
        losses = (emb[:, :3] @ th - emb[:, 3]) ** 2
    np.testing.assert_allclose(per_sample_grad_sqnorm(losses, emb).detach().numpy(), g, rtol=1e-10)
    np.testing.assert_allclose(losses.detach().numpy(), base_losses(problem, theta)[0], rtol=1e-12)


@pytest.mark.parametrize("set_name", SETS)
def test_robust_objective_gradients_match_finite_differences(problem, set_name):
    w = sample_counts(problem, 500, np.random.default_rng(5)) / 500
    for theta in (np.array([0.3, -0.7, 1.1]), problem.theta_star + 0.2):
        err = check_grad(lambda t: robust_value_and_grad(problem, w, set_name, 0.05, t)[0],
                         lambda t: robust_value_and_grad(problem, w, set_name, 0.05, t)[1], theta, epsilon=1e-7)
        assert err < 1e-5


@pytest.mark.parametrize("set_name", SETS)
def test_estimators_recover_theta_star_without_radius(problem, set_name):
    # At P* itself (n = infinity) exactly, and from a large sample within a few standard errors.
    assert np.linalg.norm(fit(problem, problem.p_star, set_name, 0.0).theta - problem.theta_star) < 1e-8
    w = sample_counts(problem, 1_000_000, np.random.default_rng(6)) / 1_000_000
    result = fit(problem, w, set_name, 0.0)
    assert result.converged and np.linalg.norm(result.theta - problem.theta_star) < 0.02
    # A tiny radius stays next to the non-robust estimate (the L-BFGS path).
    small = fit(problem, w, set_name, 1e-8)
    assert small.converged and np.linalg.norm(small.theta - result.theta) < 1e-3


def test_population_bias_of_the_robust_estimators():
    """The study's explanation, checked at P* (n = infinity): DPO's chi2/KL estimators are biased
    by ~sqrt(rho) (shrunk towards 0), Wasserstein's by ~rho; REBEL's chi2/KL estimators are not
    biased at all (symmetric noise), its Wasserstein one is (the penalty grows with ||theta||)."""
    dpo, rebel = make_problem("dpo", **GEOMETRY), make_problem("rebel", **GEOMETRY)

    def bias(problem, set_name, rho):
        return np.linalg.norm(fit(problem, problem.p_star, set_name, rho, theta0=problem.theta_star).theta
                              - problem.theta_star)

    for set_name in ("chi2", "kl"):
        b1, b2 = bias(dpo, set_name, 1e-4), bias(dpo, set_name, 1e-2)
        assert math.log(b2 / b1) / math.log(100) == pytest.approx(0.5, abs=0.05)
        shrunk = fit(dpo, dpo.p_star, set_name, 0.05).theta
        assert np.linalg.norm(shrunk) < np.linalg.norm(dpo.theta_star)
        assert bias(rebel, set_name, 0.07) < 1e-6
        assert bias(rebel, set_name, 0.5) < 1e-6
    for problem in (dpo, rebel):
        b1, b2 = bias(problem, "wasserstein", 1e-4), bias(problem, "wasserstein", 1e-3)
        assert math.log(b2 / b1) / math.log(10) == pytest.approx(1.0, abs=0.05)


def test_nonrobust_fit_flags_separable_data():
    problem = make_problem("dpo", **GEOMETRY)
    w = np.zeros(problem.n_cells)
    w[0::2] = problem.q * (problem.atoms @ problem.theta_star > 0)   # only the Bayes-correct labels
    w[1::2] = problem.q * (problem.atoms @ problem.theta_star <= 0)
    assert separable(problem.features, w) and not fit_nonrobust(problem, w).converged
    assert not separable(problem.features, problem.p_star) and fit_nonrobust(problem, problem.p_star).converged


# ----------------------------------------------------------------------------- CLIs and report
def test_simulate_and_report_clis(tmp_path):
    for cli in ("simulate", "report"):
        out = subprocess.run([sys.executable, "-m", f"workflow_scripts.radius_coverage.{cli}", "--help"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and "usage" in out.stdout
    csvs = []
    for set_name in ("chi2", "wasserstein"):
        path = tmp_path / f"{set_name}_dpo.csv"
        assert simulate.main(["--set", set_name, "--base", "dpo", "--c", "0.1", "--n-ref", "100", "--kappas", "0",
                              "1", "--n-grid", "200", "2000", "--reps", "3", "--output", str(path),
                              "--no-progress"]) == 0
        csvs.append(str(path))
    data = pd.read_csv(csvs[0])
    assert len(data) == 3 * 2 * 3 and set(data["schedule"]) == {"non-robust", "kappa=0", "kappa=1"}
    np.testing.assert_allclose(data.loc[data["schedule"] == "kappa=1", "rho"], [0.05] * 3 + [0.005] * 3)
    assert data["converged"].all()
    # Common random numbers: both sets saw the same samples, so their non-robust fits agree.
    other = pd.read_csv(csvs[1])
    np.testing.assert_allclose(data.loc[data["schedule"] == "non-robust", "error"],
                               other.loc[other["schedule"] == "non-robust", "error"])
    assert report.main(["--inputs", *csvs, "--figure", str(tmp_path / "fig"), "--table", str(tmp_path / "rates"),
                        "--summary", str(tmp_path / "summary.csv"), "--bootstrap", "50"]) == 0
    rates = pd.read_csv(tmp_path / "rates.csv")
    assert len(rates) == 6 and rates["tail_slope"].notna().all()
    assert (tmp_path / "fig.png").stat().st_size > 0 and (tmp_path / "rates.md").exists()


def test_slope_fit_recovers_a_known_rate_and_theory_values():
    rng = np.random.default_rng(0)
    ns = np.array([100, 1000, 10000, 100000])
    errors = (ns[:, None] ** -0.25) * rng.lognormal(0.0, 0.3, size=(4, 400))
    slope, lo, hi = report.fit_slope(ns, errors, np.ones(4, bool), rng, 500)
    assert lo < -0.25 < hi and hi - lo < 0.05 and slope == pytest.approx(-0.25, abs=0.02)
    assert report.predicted_slope("chi2", 0.5) == -0.25 and report.predicted_slope("wasserstein", 0.25) == -0.25
    assert report.predicted_slope("kl", 0.0) == 0.0 and report.predicted_slope("kl", None) == -0.5
    assert report.coverage_limit("chi2", 1.0, 0.07, 100, 12) == pytest.approx(chi2_law.cdf(14, 11))
    assert report.coverage_limit("kl", 0.5, 0.07, 100, 12) == 1.0
    assert report.coverage_limit("wasserstein", 0.5, 0.5, 100, 12) == 0.0


def test_coverage_at_the_critical_radius_tends_to_the_chi2_limit():
    """2 n D(P* || P_n) -> chi2_{C-1}: at n = 1e5 the coverage of rho = c / n is the limit's."""
    problem = make_problem("dpo", **GEOMETRY)
    rng = np.random.default_rng(7)
    n, c = 100_000, 7.0
    hits = {"chi2": 0, "kl": 0}
    for _ in range(2000):
        w = sample_counts(problem, n, rng) / n
        hits["chi2"] += chi2_divergence(problem.p_star, w) <= c / n
        hits["kl"] += kl_divergence(problem.p_star, w) <= c / n
    limit = chi2_law.cdf(2 * c, problem.n_cells - 1)
    for count in hits.values():
        assert count / 2000 == pytest.approx(limit, abs=4 * math.sqrt(limit * (1 - limit) / 2000) + 0.01)


# ----------------------------------------------------------------------------- the Snakemake stage
def test_mini_stage_through_snakemake(tmp_path, repo):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/mini/figures/radius_coverage.pdf", "--cores", "2",
         "--configfile", str(repo / "presets/mini.yaml"), "--directory", str(tmp_path),
         "--snakefile", str(repo / "Snakefile")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = tmp_path / "results/mini/figures"
    assert (figures / "radius_coverage.pdf").stat().st_size > 0 and (figures / "radius_coverage.png").stat().st_size > 0
    rates = pd.read_csv(tmp_path / "results/mini/tables/radius_coverage_rates.csv")
    mini = yaml.safe_load((repo / "presets/mini.yaml").read_text())["radius_coverage"]
    paper = yaml.safe_load((repo / "config.yaml").read_text())["radius_coverage"]
    schedules = {"non-robust"} | {f"kappa={k:g}" for k in mini["kappas"]}
    expected = {(s, b, sch) for s in paper["sets"] for b in paper["bases"] for sch in schedules}
    assert set(zip(rates["set"], rates["base"], rates["schedule"])) == expected
    assert rates[["tail_slope", "tail_lo", "tail_hi", "slope"]].notna().all().all()
    assert (rates["tail_lo"] <= rates["tail_slope"]).all() and (rates["tail_slope"] <= rates["tail_hi"]).all()
    for ext in ("md", "tex"):
        assert (tmp_path / f"results/mini/tables/radius_coverage_rates.{ext}").stat().st_size > 0
    for name in ("radius_coverage/chi2_dpo.log", "report/radius_coverage.log"):
        assert (tmp_path / "logs/mini" / name).exists()
    assert (tmp_path / "benchmarks/mini/report/radius_coverage.tsv").exists()


@pytest.mark.parametrize("override, key", [
    ({"radius_coverage": {"n_grid": [1000, 100]}}, "radius_coverage.n_grid"),
    ({"radius_coverage": {"kappas": [-0.5]}}, "radius_coverage.kappas[0]"),
    ({"radius_coverage": {"c": {"chi2": 0}}}, "radius_coverage.c.chi2"),
    ({"radius_coverage": {"reps": 1}}, "radius_coverage.reps"),
])
def test_radius_coverage_config_errors(tmp_path, repo, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                             str(repo / "presets/mini.yaml"), str(bad), "--directory", str(tmp_path),
                             "--snakefile", str(repo / "Snakefile")], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Config error:")]
    assert len(lines) == 1 and f"'{key}" in lines[0], result.stderr[-2000:]
