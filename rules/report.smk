# Stage 8: the emotion figure (reward vs alpha, best radius per variant) and table.


rule emotion_report:
    input:
        emotion_eval_csvs(),
    output:
        pdf=report(
            f"{RESULTS}/figures/emotion_alpha_sweep.pdf",
            caption="report/emotion_alpha_sweep.rst",
            category="Emotion alignment",
        ),
        png=report(
            f"{RESULTS}/figures/emotion_alpha_sweep.png",
            caption="report/emotion_alpha_sweep.rst",
            category="Emotion alignment",
        ),
        tables=expand(f"{RESULTS}/tables/emotion_robustness.{{ext}}", ext=["csv", "md", "tex"]),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/report/emotion.log",
    benchmark:
        f"{BENCHMARKS}/report/emotion.tsv"
    params:
        alpha0=emotion_cfg("mixture")["alpha0"],
        figure=subpath(output.pdf, strip_suffix=".pdf"),
        table=lambda wildcards, output: os.path.splitext(output.tables[0])[0],
    shell:
        "python -m workflow_scripts.report.emotion --inputs {input:q} --alpha0 {params.alpha0} "
        "--figure {params.figure:q} --table {params.table:q} > {log:q} 2>&1"
