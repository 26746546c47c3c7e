"""Monte-Carlo simulation of the radius-coverage study for one ambiguity set and one base.

For every n of the grid and every repetition: draw n samples (as cell counts), compute
``D(P* || P_n)`` in the set's divergence, then fit the non-robust estimator and the robust one
for every radius schedule ``rho_n = c * (n / n_ref)^(-kappa)``; record the estimation error
``||theta_hat - theta*||`` and whether the ball covers P* (``D(P* || P_n) <= rho_n``).

The data of repetition r at sample size n depend only on (seed, base, n, r), not on the set:
every set's job sees the same samples (common random numbers across sets and schedules).

For each (schedule, n) it also records the **population bias** ``||theta_rho - theta*||`` of
the same estimator fitted on P* itself (n = infinity) at radius ``rho_n``: the floor that the
Monte-Carlo error converges to, which explains the fitted slopes (SPEC 5.4's expectation is
``bias ~ sqrt(rho)`` for chi2/KL and ``~ rho`` for Wasserstein).

Output: one CSV row per (schedule, n, rep) with columns
``set, base, schedule, kappa, n, rep, rho, error, bias, divergence, covered, converged,
iterations, n_cells, c, n_ref`` (``schedule`` is ``non-robust`` or ``kappa=<k>``; ``kappa`` is
empty for the non-robust estimator, whose rho is 0).

    python -m workflow_scripts.radius_coverage.simulate --set chi2 --base dpo \\
        --n-grid 100 1000 10000 --kappas 0 0.5 1 --c 0.07 --reps 50 --output out.csv
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from workflow_scripts.core.report.tables import atomic_path

from workflow_scripts.radius_coverage.estimators import fit, fit_nonrobust
from workflow_scripts.radius_coverage.model import BASES, SETS, divergence, ground_cost, make_problem, sample_counts
from workflow_scripts.core.cli import run

log = logging.getLogger("workflow_scripts.radius_coverage.simulate")


def schedule_name(kappa: float | None) -> str:
    """``non-robust`` or ``kappa=<k>`` (``kappa=0.5``, ``kappa=1``)."""
    return "non-robust" if kappa is None else f"kappa={kappa:g}"


def radius(c: float, n: int, n_ref: float, kappa: float) -> float:
    """``rho_n = c * (n / n_ref)^(-kappa)``: equal to c at ``n = n_ref`` for every schedule."""
    return float(c * (n / n_ref) ** (-kappa))


def simulate(set_name: str, base: str, *, K: int, d: int, theta_norm: float, geometry_seed: int,
             seed: int, noise_sd: float, noise_points: int, c: float, n_ref: float,
             kappas: list[float], n_grid: list[int], reps: int, progress: bool = True) -> pd.DataFrame:
    problem = make_problem(base, K, d, theta_norm, geometry_seed, noise_sd, noise_points)
    cost = ground_cost(problem.points) if set_name == "wasserstein" else None
    base_id = BASES.index(base)
    population_bias = {}

    def bias(rho: float) -> float:
        if rho not in population_bias:
            result = fit(problem, problem.p_star, set_name, rho, theta0=problem.theta_star)
            population_bias[rho] = float(np.linalg.norm(result.theta - problem.theta_star))
        return population_bias[rho]

    rows = []
    bar = tqdm(total=len(n_grid) * reps, desc=f"{set_name}-{base}", mininterval=10.0, disable=not progress,
               file=sys.stderr)
    for n in n_grid:
        for rep in range(reps):
            rng = np.random.default_rng([seed, base_id, n, rep])
            weights = sample_counts(problem, n, rng) / n
            div = divergence(set_name, problem.p_star, weights, cost)
            start = fit_nonrobust(problem, weights)
            fits = [(None, 0.0, start)]
            for kappa in kappas:
                rho = radius(c, n, n_ref, kappa)
                fits.append((kappa, rho, fit(problem, weights, set_name, rho, theta0=start.theta)))
            for kappa, rho, result in fits:
                rows.append({
                    "set": set_name, "base": base, "schedule": schedule_name(kappa),
                    "kappa": math.nan if kappa is None else kappa, "n": n, "rep": rep, "rho": rho,
                    "error": float(np.linalg.norm(result.theta - problem.theta_star)), "bias": bias(rho),
                    "divergence": div, "covered": bool(div <= rho), "converged": result.converged,
                    "iterations": result.iterations,
                })
            bar.update()
        log.info("n=%d done (%d reps)", n, reps)
    bar.close()
    frame = pd.DataFrame(rows)
    frame["n_cells"] = problem.n_cells
    frame["c"] = c
    frame["n_ref"] = n_ref
    return frame


def _positive_int_list(values, name):
    if not values or any(v < 1 for v in values):
        raise ValueError(f"--{name} must list integers >= 1, got {values}.")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"--{name} must be strictly increasing, got {values}.")
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--set", required=True, choices=SETS, dest="set_name")
    parser.add_argument("--base", required=True, choices=BASES)
    parser.add_argument("--K", type=int, default=6, help="number of atoms (feature-difference vectors)")
    parser.add_argument("--d", type=int, default=3, help="feature dimension")
    parser.add_argument("--theta-norm", type=float, default=1.5, help="||theta*||")
    parser.add_argument("--geometry-seed", type=int, default=0, help="seed of the atoms, q and theta*")
    parser.add_argument("--seed", type=int, default=1, help="seed of the Monte-Carlo samples")
    parser.add_argument("--noise-sd", type=float, default=1.0, help="REBEL reward noise sd")
    parser.add_argument("--noise-points", type=int, default=3, help="Gauss-Hermite nodes of the REBEL noise (>= 3)")
    parser.add_argument("--c", type=float, required=True, help="radius constant: rho_n = c (n / n_ref)^(-kappa)")
    parser.add_argument("--n-ref", type=float, default=1.0, help="sample size at which every schedule's radius is c")
    parser.add_argument("--kappas", type=float, nargs="+", required=True, help="radius decay exponents")
    parser.add_argument("--n-grid", type=int, nargs="+", required=True, help="sample sizes, increasing")
    parser.add_argument("--reps", type=int, required=True, help="Monte-Carlo repetitions per n")
    parser.add_argument("--output", required=True, help="CSV path")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        _positive_int_list(args.n_grid, "n-grid")
        if args.reps < 2:
            raise ValueError(f"--reps must be >= 2, got {args.reps}.")
        if not args.c > 0 or not args.n_ref > 0:
            raise ValueError(f"--c and --n-ref must be > 0, got {args.c} and {args.n_ref}.")
        if any(not k >= 0 for k in args.kappas) or len(set(args.kappas)) != len(args.kappas):
            raise ValueError(f"--kappas must be distinct numbers >= 0, got {args.kappas}.")
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    log.info("radius-coverage %s-%s: K=%d d=%d n=%s kappas=%s c=%g n_ref=%g reps=%d", args.set_name, args.base,
             args.K, args.d, args.n_grid, args.kappas, args.c, args.n_ref, args.reps)
    frame = simulate(args.set_name, args.base, K=args.K, d=args.d, theta_norm=args.theta_norm,
                     geometry_seed=args.geometry_seed, seed=args.seed, noise_sd=args.noise_sd,
                     noise_points=args.noise_points, c=args.c, n_ref=args.n_ref, kappas=args.kappas,
                     n_grid=args.n_grid, reps=args.reps, progress=not args.no_progress)
    failed = int((~frame["converged"]).sum())
    if failed:
        log.warning("%d of %d fits did not converge (kept, flagged in the 'converged' column)", failed, len(frame))
    with atomic_path(args.output) as tmp:
        frame.to_csv(tmp, index=False)
    log.info("wrote %s (%d rows) in %.1f s", args.output, len(frame), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    run(main)
