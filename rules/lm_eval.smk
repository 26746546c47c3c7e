# The OpenLLM Leaderboard v2 through lm-evaluation-harness (WDPO/KLDPO paper): the base policy and, per
# variant, the policy at the radius / eta-beta selected on VALIDATION -> lm-eval (one job per policy) ->
# table and difference-to-SFT figure. Code: workflow_scripts/lm_eval/. The selections are the experiments'
# own (lm_eval/<experiment>/selected.json, written by the armorm_selection and hh_selection rules).
from workflow_scripts.lm_eval.workflow import LMEvalRules

L = LMEvalRules(W, A, H)
LM_EVAL = L.root


# Offline presets: a small task group in lm-eval's schema with local data (lm_eval.demo_task).
rule lm_eval_demo_task:
    output:
        directory(f"{LM_EVAL}/demo_task"),
    localrule: True
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/lm_eval/demo_task.log",
    benchmark:
        f"{BENCHMARKS}/lm_eval/demo_task.tsv"
    shell:
        "python -m workflow_scripts.lm_eval.demo_task --out {output:q} > {log:q} 2>&1"


# One lm-eval job (TEMPLATE: the instances below set the inputs, the paths and `params.which`).
rule lm_eval:
    input:
        policy=f"{RESULTS}/templates/lm_eval/policy",
        **L.demo_input(),
    output:
        results=f"{RESULTS}/templates/lm_eval/results.json",
        harness=directory(f"{RESULTS}/templates/lm_eval/harness"),
    conda:
        "envs/train.yaml"
    log:
        W.log("templates/lm_eval"),
    benchmark:
        W.benchmark("templates/lm_eval"),
    threads: 1
    resources:
        **W.resources("lm_eval", "evaluate"),
    params:
        which="",
        harness=L.harness_flags,
        settings=settings_of(L.harness_flags),
    shell:
        "export OMP_NUM_THREADS={threads} TOKENIZERS_PARALLELISM=false; python -m workflow_scripts.lm_eval.run "
        "{params.which} {params.harness} --out {output.results:q} --raw-dir {output.harness:q} > {log:q} 2>&1"


use rule lm_eval as lm_eval_armorm with:
    input:
        selection=f"{LM_EVAL}/armorm/selected.json",
        candidates=L.armorm_candidates,
        **L.demo_input(),
    output:
        results=f"{LM_EVAL}/armorm/{{pair}}/{{variant}}/{{seed}}/results.json",
        harness=directory(f"{LM_EVAL}/armorm/{{pair}}/{{variant}}/{{seed}}/harness"),
    log:
        W.log("lm_eval/armorm/{pair}/{variant}/{seed}"),
    benchmark:
        W.benchmark("lm_eval/armorm/{pair}/{variant}/{seed}"),
    params:
        which=L.which_flags("armorm"),


use rule lm_eval as lm_eval_armorm_base with:
    input:
        policy=f"{ARMORM}/base_policy",
        **L.demo_input(),
    output:
        results=f"{LM_EVAL}/armorm/sft/results.json",
        harness=directory(f"{LM_EVAL}/armorm/sft/harness"),
    log:
        W.log("lm_eval/armorm/sft"),
    benchmark:
        W.benchmark("lm_eval/armorm/sft"),
    params:
        which=L.which_flags("armorm"),


use rule lm_eval as lm_eval_hh with:
    input:
        selection=f"{LM_EVAL}/hh/selected.json",
        candidates=L.hh_candidates,
        **L.demo_input(),
    output:
        results=f"{LM_EVAL}/hh/{{policy}}/{{aggregation}}/{{scale}}/{{variant}}/{{seed}}/results.json",
        harness=directory(f"{LM_EVAL}/hh/{{policy}}/{{aggregation}}/{{scale}}/{{variant}}/{{seed}}/harness"),
    log:
        W.log("lm_eval/hh/{policy}/{aggregation}/{scale}/{variant}/{seed}"),
    benchmark:
        W.benchmark("lm_eval/hh/{policy}/{aggregation}/{scale}/{variant}/{seed}"),
    params:
        which=L.which_flags("hh"),


use rule lm_eval as lm_eval_hh_sft with:
    input:
        policy=f"{HH}/{{policy}}/sft/model",
        **L.demo_input(),
    output:
        results=f"{LM_EVAL}/hh/{{policy}}/sft/results.json",
        harness=directory(f"{LM_EVAL}/hh/{{policy}}/sft/harness"),
    log:
        W.log("lm_eval/hh/{policy}/sft"),
    benchmark:
        W.benchmark("lm_eval/hh/{policy}/sft"),
    params:
        which=L.which_flags("hh"),


rule lm_eval_report:
    input:
        L.results_files(),
    output:
        table=report(f"{RESULTS}/tables/lm_eval_leaderboard.csv", caption="report/lm_eval/table.rst",
                     category="Leaderboard (lm-eval)", labels={"table": "leaderboard", "format": "csv"}),
        table_md=f"{RESULTS}/tables/lm_eval_leaderboard.md",
        table_tex=f"{RESULTS}/tables/lm_eval_leaderboard.tex",
        runs=f"{RESULTS}/tables/lm_eval_leaderboard_runs.csv",
        figure_pdf=f"{RESULTS}/figures/lm_eval_vs_sft.pdf",
        figure_png=report(f"{RESULTS}/figures/lm_eval_vs_sft.png", caption="report/lm_eval/vs_sft.rst",
                          category="Leaderboard (lm-eval)", labels={"figure": "difference to SFT", "format": "png"}),
    localrule: True
    conda:
        "envs/plot.yaml"
    log:
        f"{LOGS}/report/lm_eval.log",
    benchmark:
        f"{BENCHMARKS}/report/lm_eval.tsv"
    params:
        table=output_stem("table"),
        figure=subpath(output.figure_pdf, strip_suffix=".pdf"),
    shell:
        "python -m workflow_scripts.lm_eval.report --results {input:q} --table {params.table:q} "
        "--figure {params.figure:q} > {log:q} 2>&1"
