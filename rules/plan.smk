# The grid planner (docs/planning.md): GPU-hours per rule, wall time on the cluster and each job's
# memory fit for this config's grid, from its own DAG, before anything runs. Requested explicitly:
#   snakemake results/paper/plan.md --cores 1            # `all` does not depend on it
# Code: workflow_scripts/tools/plan/ (the same as `python -m workflow_scripts.tools.plan`).
from workflow_scripts.tools.plan.workflow import config_json, plan_flags


rule plan:
    output:
        md=f"{RESULTS}/plan.md",
        csv=f"{RESULTS}/plan.csv",
    localrule: True
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/plan.log",
    benchmark:
        f"{BENCHMARKS}/plan.tsv"
    params:
        config=config_json(config),
        flags=plan_flags(config),
    shell:
        "python -m workflow_scripts.tools.plan all --config-json {params.config:q} {params.flags} "
        "--out-md {output.md:q} --out-csv {output.csv:q} > {log:q} 2>&1"
