# The radius-coverage study (SPEC 5.4): a synthetic, CPU-only stage in the same DAG.
# One simulation job per (ambiguity set, base), then one report job: figure + fitted-rate table.
# Code: workflow_scripts/radius_coverage/.
from workflow_scripts.radius_coverage.workflow import RadiusCoverageRules

RC = RadiusCoverageRules(W)


rule radius_coverage_simulate:
    output:
        f"{RC.root}/{{rc_set}}_{{rc_base}}.csv",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/radius_coverage/{{rc_set}}_{{rc_base}}.log",
    benchmark:
        f"{BENCHMARKS}/radius_coverage/{{rc_set}}_{{rc_base}}.tsv"
    wildcard_constraints:
        rc_set="chi2|kl|wasserstein",
        rc_base="dpo|rebel",
    threads: 1
    params:
        c=RC.constant,
        flags=RC.simulation_flags(),
    shell:
        "OMP_NUM_THREADS=1 python -m workflow_scripts.radius_coverage.simulate "
        "--set {wildcards.rc_set:q} --base {wildcards.rc_base:q} --c {params.c} {params.flags} "
        "--output {output:q} > {log:q} 2>&1"


rule radius_coverage_report:
    input:
        RC.csvs(),
    output:
        pdf=f"{RESULTS}/figures/radius_coverage.pdf",
        png=report(f"{RESULTS}/figures/radius_coverage.png", caption="report/radius_coverage/figure.rst",
                   category="Radius-coverage study", labels={"figure": "error and coverage", "format": "png"}),
        tables=report(f"{RESULTS}/tables/radius_coverage_rates.csv", caption="report/radius_coverage/table.rst",
                      category="Radius-coverage study", labels={"table": "rates"}),
        tables_text=multiext(f"{RESULTS}/tables/radius_coverage_rates", ".md", ".tex"),
        summary=f"{RC.root}/summary.csv",
    localrule: True
    conda:
        "envs/plot.yaml"
    log:
        f"{LOGS}/report/radius_coverage.log",
    benchmark:
        f"{BENCHMARKS}/report/radius_coverage.tsv"
    params:
        figure=subpath(output.pdf, strip_suffix=".pdf"),
        table=output_stem("tables"),
        flags=RC.report_flags(),
    shell:
        "OMP_NUM_THREADS=1 python -m workflow_scripts.radius_coverage.report --inputs {input:q} "
        "--figure {params.figure:q} --table {params.table:q} --summary {output.summary:q} {params.flags} "
        "> {log:q} 2>&1"
