# The radius-coverage study (SPEC 5.4): a synthetic, CPU-only stage in the same DAG.
# One simulation job per (ambiguity set, base), then one report job: figure + fitted-rate table.


rule radius_coverage_simulate:
    output:
        f"{RADIUS_COVERAGE}/{{rc_set}}_{{rc_base}}.csv",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/radius_coverage/{{rc_set}}_{{rc_base}}.log",
    benchmark:
        f"{BENCHMARKS}/radius_coverage/{{rc_set}}_{{rc_base}}.tsv"
    wildcard_constraints:
        rc_set="chi2|kl|wasserstein",
        rc_base="dpo|rebel",
    threads: 1
    params:
        c=lambda wildcards: radius_coverage_constant(wildcards.rc_set, wildcards.rc_base),
        kappas=" ".join(str(k) for k in rc_cfg("kappas")),
        n_grid=" ".join(str(n) for n in rc_cfg("n_grid")),
        K=rc_cfg("K"),
        d=rc_cfg("d"),
        theta_norm=rc_cfg("theta_norm"),
        geometry_seed=rc_cfg("geometry_seed"),
        seed=rc_cfg("seed"),
        noise_sd=rc_cfg("noise_sd"),
        noise_points=rc_cfg("noise_points"),
        n_ref=rc_cfg("n_ref"),
        reps=rc_cfg("reps"),
    shell:
        "OMP_NUM_THREADS=1 python -m workflow_scripts.radius_coverage.simulate "
        "--set {wildcards.rc_set:q} --base {wildcards.rc_base:q} --K {params.K} --d {params.d} "
        "--theta-norm {params.theta_norm} --geometry-seed {params.geometry_seed} --seed {params.seed} "
        "--noise-sd {params.noise_sd} --noise-points {params.noise_points} --c {params.c} "
        "--n-ref {params.n_ref} --kappas {params.kappas} --n-grid {params.n_grid} --reps {params.reps} "
        "--output {output:q} > {log:q} 2>&1"


rule radius_coverage_report:
    input:
        radius_coverage_csvs(),
    output:
        pdf=report(
            f"{RESULTS}/figures/radius_coverage.pdf",
            caption="report/radius_coverage.rst",
            category="Radius-coverage study",
        ),
        png=report(
            f"{RESULTS}/figures/radius_coverage.png",
            caption="report/radius_coverage.rst",
            category="Radius-coverage study",
        ),
        tables=expand(f"{RESULTS}/tables/radius_coverage_rates.{{ext}}", ext=["csv", "md", "tex"]),
        summary=f"{RADIUS_COVERAGE}/summary.csv",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/report/radius_coverage.log",
    benchmark:
        f"{BENCHMARKS}/report/radius_coverage.tsv"
    params:
        figure=subpath(output.pdf, strip_suffix=".pdf"),
        table=lambda wildcards, output: os.path.splitext(output.tables[0])[0],
        fit_from=rc_cfg("fit_from"),
        bootstrap=rc_cfg("bootstrap"),
        seed=rc_cfg("seed"),
    shell:
        "OMP_NUM_THREADS=1 python -m workflow_scripts.radius_coverage.report --inputs {input:q} "
        "--figure {params.figure:q} --table {params.table:q} --summary {output.summary:q} "
        "--fit-from {params.fit_from} --bootstrap {params.bootstrap} --seed {params.seed} > {log:q} 2>&1"
