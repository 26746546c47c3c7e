# Stage 8: the emotion figures (reward vs alpha, training curves; radius and eta/beta selected on validation,
# test reported) and table.


rule emotion_report:
    input:
        evals=emotion_eval_csvs(),
        histories=emotion_histories(),
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
        training_pdf=report(
            f"{RESULTS}/figures/emotion_training.pdf",
            caption="report/emotion_training.rst",
            category="Emotion alignment",
        ),
        training_png=report(
            f"{RESULTS}/figures/emotion_training.png",
            caption="report/emotion_training.rst",
            category="Emotion alignment",
        ),
        tables=expand(f"{RESULTS}/tables/emotion_robustness.{{ext}}", ext=["csv", "md", "tex"]),
        verdict=expand(f"{RESULTS}/tables/emotion_verdict.{{ext}}", ext=["csv", "md", "tex"]),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/report/emotion.log",
    benchmark:
        f"{BENCHMARKS}/report/emotion.tsv"
    params:
        alpha0=emotion_cfg("mixture")["alpha0"],
        figure=subpath(output.pdf, strip_suffix=".pdf"),
        training=subpath(output.training_pdf, strip_suffix=".pdf"),
        table=lambda wildcards, output: os.path.splitext(output.tables[0])[0],
        verdict=lambda wildcards, output: os.path.splitext(output.verdict[0])[0],
    shell:
        "python -m workflow_scripts.report.emotion --inputs {input.evals:q} --histories {input.histories:q} "
        "--alpha0 {params.alpha0} --figure {params.figure:q} --training {params.training:q} "
        "--table {params.table:q} --verdict {params.verdict:q} > {log:q} 2>&1"
