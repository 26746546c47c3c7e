"""The radius-coverage study (SPEC 5.4): DRO-REBEL's no-free-lunch result as a synthetic experiment.

A log-linear preference model on a finite support, so that the divergence between the true
data distribution and the empirical one is finite and exact, and the robust objectives are
functions of a handful of cell counts (n up to 1e5 costs nothing).

- :mod:`.model`: the data generator (:class:`Problem`, :func:`make_problem`,
  :func:`sample_counts`) and the divergences D(P* || P_n) (chi2, KL, type-1/2 Wasserstein).
- :mod:`.estimators`: the weighted exact duals (chi2, KL), the gradient-penalty Wasserstein
  objective, and :func:`fit` (the robust estimator theta_hat).
- :mod:`.simulate`: the Monte-Carlo CLI (one job per ambiguity set x base).
- :mod:`.report`: the figure, the fitted-rate table and the summary CSV.
"""
