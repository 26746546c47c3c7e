# Emotion alignment (SPEC 5.1): data -> tokenizer -> SFT -> reward model -> pairs{data_seed}
# -> align{variant,radius,hp,seed} -> evaluate{validation,test} -> report. Code: workflow_scripts/emotion/.
from workflow_scripts.emotion.workflow import EmotionRules

E = EmotionRules(W)
EMOTION = E.root


rule emotion_data:
    input:
        E.source_files(),
    output:
        directory(f"{EMOTION}/data"),
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/emotion/data.log",
    benchmark:
        f"{BENCHMARKS}/emotion/data.tsv"
    params:
        source=E.cfg["dataset"],
        generate=cli_flags(E.cfg["generate_dataset"] or {}),
        carve=E.cfg["test_from_validation"],
    shell:
        "python -m workflow_scripts.emotion.prepare --source {params.source:q} {params.generate} "
        "--test-from-validation {params.carve} --out {output:q} > {log:q} 2>&1"


use rule tokenizer as emotion_tokenizer with:
    input:
        f"{EMOTION}/data",
    output:
        directory(f"{EMOTION}/tokenizer"),
    log:
        W.log("emotion/tokenizer"),
    benchmark:
        W.benchmark("emotion/tokenizer"),
    params:
        source=E.cfg["tokenizer"],
        flags=cli_flags({"vocab_size": E.cfg["tokenizer_vocab_size"]}),


use rule sft as emotion_sft with:
    input:
        data=f"{EMOTION}/data",
        tokenizer=f"{EMOTION}/tokenizer",
    output:
        **W.train_outputs("emotion/sft"),
    log:
        W.log("emotion/sft"),
    benchmark:
        W.benchmark("emotion/sft"),
    resources:
        **W.resources("emotion", "sft", nproc=W.procs("sft")),
    params:
        model=model_spec_arg(E.cfg["policy_model"]),
        flags=W.train_flags(E.cfg["sft"]),
        ckpt_dir=f"{EMOTION}/sft/checkpoints",


use rule reward_model as emotion_reward_model with:
    input:
        data=f"{EMOTION}/data",
        tokenizer=f"{EMOTION}/tokenizer",
    output:
        **W.train_outputs("emotion/reward_model"),
    log:
        W.log("emotion/reward_model"),
    benchmark:
        W.benchmark("emotion/reward_model"),
    resources:
        **W.resources("emotion", "reward_model", nproc=W.procs("reward_model")),
    params:
        module="workflow_scripts.emotion.train_reward",
        model=model_spec_arg(E.cfg["reward_model"]),
        flags=W.train_flags(E.cfg["reward"]),
        ckpt_dir=f"{EMOTION}/reward_model/checkpoints",


# Preference pairs from the SFT policy, scored by the reward model, labelled under r*(alpha0); one set per
# data seed (emotion.pairs.per_seed: the training seed; else the first seed).
rule emotion_pairs:
    input:
        data=f"{EMOTION}/data",
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
    output:
        pairs=f"{EMOTION}/pairs/{{data_seed}}/train.parquet",
        summary=f"{EMOTION}/pairs/{{data_seed}}/summary.json",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/emotion/pairs/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/pairs/{{data_seed}}.tsv"
    threads: 1
    resources:
        **W.resources("emotion", "pairs"),
    params:
        pairs=cli_flags(E.cfg["pairs"], ["n_prompts", "prompt_tokens", "max_new_tokens", "top_k", "top_p"]),
        mix=E.mixture_flags(),
        generation=W.generation_flags(),
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.emotion.pairs --data {input.data:q} --policy {input.policy:q} "
        "--reward-model {input.reward_model:q} --out {output.pairs:q} --summary {output.summary:q} "
        "--seed {wildcards.data_seed} {params.pairs} {params.mix} {params.generation} > {log:q} 2>&1"


use rule align as emotion_align with:
    input:
        pairs=E.pairs_path,
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
        **W.canary_input(),
    output:
        **W.align_outputs("emotion/align"),
    log:
        W.log("emotion/align", W.RUN),
    benchmark:
        W.benchmark("emotion/align", W.RUN),
    resources:
        **W.resources("emotion", "align", nproc=W.align_procs),
    params:
        flags=E.align_flags,
        settings=settings_of(E.align_flags),


use rule evaluate as emotion_evaluate with:
    input:
        policy=f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        **W.eval_outputs("emotion/eval", W.RUN),
    log:
        W.log("emotion/eval", W.RUN),
    benchmark:
        W.benchmark("emotion/eval", W.RUN),
    resources:
        **W.resources("emotion", "evaluate"),
    params:
        module="workflow_scripts.emotion.evaluate",
        flags=E.eval_flags,
        settings=settings_of(E.eval_flags),


# The SFT policy, evaluated as the baseline (variant "sft") once per seed.
use rule emotion_evaluate as emotion_evaluate_sft with:
    input:
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        **W.eval_outputs("emotion/eval", "sft/{seed}"),
    log:
        W.log("emotion/eval", "sft/{seed}"),
    benchmark:
        W.benchmark("emotion/eval", "sft/{seed}"),


# The online grid (emotion.regimes lists online): REBEL's own loop, fresh pairs from pi_t every iteration, the
# pairs of the training seed as its prompt pool; evaluated and reported like the offline grid (emotion_online_*).
use rule emotion_align as emotion_align_online with:
    output:
        **W.align_outputs("emotion/online/align"),
    log:
        W.log("emotion/online/align", W.RUN),
    benchmark:
        W.benchmark("emotion/online/align", W.RUN),
    resources:
        **W.resources("emotion", "align_online", nproc=W.align_procs),
    params:
        flags=E.online_flags,
        settings=settings_of(E.online_flags),


use rule emotion_evaluate as emotion_evaluate_online with:
    input:
        policy=f"{EMOTION}/online/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        **W.eval_outputs("emotion/online/eval", W.RUN),
    log:
        W.log("emotion/online/eval", W.RUN),
    benchmark:
        W.benchmark("emotion/online/eval", W.RUN),


# Radius and eta/beta per variant chosen on validation; the alpha sweep, training curves, robustness and
# verdict tables on test; the tilt table (how far each policy leans towards alpha0) on validation.
rule emotion_report:
    input:
        evals=E.eval_csvs(),
        histories=E.histories(),
    output:
        sweep_pdf=f"{RESULTS}/figures/emotion_alpha_sweep.pdf",
        sweep_png=report(f"{RESULTS}/figures/emotion_alpha_sweep.png", caption="report/emotion/alpha_sweep.rst",
                         category="Emotion alignment", labels={"figure": "alpha sweep", "format": "png"}),
        training_pdf=f"{RESULTS}/figures/emotion_training.pdf",
        training_png=report(f"{RESULTS}/figures/emotion_training.png", caption="report/emotion/training.rst",
                            category="Emotion alignment", labels={"figure": "training curves", "format": "png"}),
        robustness=report(f"{RESULTS}/tables/emotion_robustness.csv", caption="report/emotion/robustness.rst",
                          category="Emotion alignment", labels={"table": "robustness"}),
        robustness_text=multiext(f"{RESULTS}/tables/emotion_robustness", ".md", ".tex"),
        verdict=report(f"{RESULTS}/tables/emotion_verdict.csv", caption="report/emotion/verdict.rst",
                       category="Emotion alignment", labels={"table": "verdict"}),
        verdict_text=multiext(f"{RESULTS}/tables/emotion_verdict", ".md", ".tex"),
        tilt=report(f"{RESULTS}/tables/emotion_tilt.csv", caption="report/emotion/tilt.rst",
                    category="Emotion alignment", labels={"table": "tilt (validation)"}),
        tilt_text=multiext(f"{RESULTS}/tables/emotion_tilt", ".md", ".tex"),
    localrule: True
    conda:
        "envs/plot.yaml"
    log:
        f"{LOGS}/report/emotion.log",
    benchmark:
        f"{BENCHMARKS}/report/emotion.tsv"
    params:
        alpha0=lookup(dpath="emotion/mixture/alpha0", within=config),
        sweep=subpath(output.sweep_pdf, strip_suffix=".pdf"),
        training=subpath(output.training_pdf, strip_suffix=".pdf"),
        robustness=output_stem("robustness"),
        verdict=output_stem("verdict"),
        tilt=output_stem("tilt"),
    shell:
        "python -m workflow_scripts.emotion.report --inputs {input.evals:q} --histories {input.histories:q} "
        "--alpha0 {params.alpha0} --figure {params.sweep:q} --training {params.training:q} "
        "--table {params.robustness:q} --verdict {params.verdict:q} --tilt {params.tilt:q} > {log:q} 2>&1"


use rule emotion_report as emotion_report_online with:
    input:
        evals=E.eval_csvs("online"),
        histories=E.histories("online"),
    output:
        sweep_pdf=f"{RESULTS}/figures/emotion_online_alpha_sweep.pdf",
        sweep_png=report(f"{RESULTS}/figures/emotion_online_alpha_sweep.png", caption="report/emotion/alpha_sweep.rst",
                         category="Emotion alignment (online)", labels={"figure": "alpha sweep", "format": "png"}),
        training_pdf=f"{RESULTS}/figures/emotion_online_training.pdf",
        training_png=report(f"{RESULTS}/figures/emotion_online_training.png", caption="report/emotion/training.rst",
                            category="Emotion alignment (online)", labels={"figure": "training curves", "format": "png"}),
        robustness=report(f"{RESULTS}/tables/emotion_online_robustness.csv", caption="report/emotion/robustness.rst",
                          category="Emotion alignment (online)", labels={"table": "robustness"}),
        robustness_text=multiext(f"{RESULTS}/tables/emotion_online_robustness", ".md", ".tex"),
        verdict=report(f"{RESULTS}/tables/emotion_online_verdict.csv", caption="report/emotion/verdict.rst",
                       category="Emotion alignment (online)", labels={"table": "verdict"}),
        verdict_text=multiext(f"{RESULTS}/tables/emotion_online_verdict", ".md", ".tex"),
        tilt=report(f"{RESULTS}/tables/emotion_online_tilt.csv", caption="report/emotion/tilt.rst",
                    category="Emotion alignment (online)", labels={"table": "tilt (validation)"}),
        tilt_text=multiext(f"{RESULTS}/tables/emotion_online_tilt", ".md", ".tex"),
    log:
        f"{LOGS}/report/emotion_online.log",
    benchmark:
        f"{BENCHMARKS}/report/emotion_online.tsv"
