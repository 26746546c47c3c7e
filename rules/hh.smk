# HH-Alignment (SPEC 5.3; the protocol is our choice, docs/hh.md): dialogues -> SFT per policy ->
# reward models {helpful, harmless} -> completions{data_seed} -> preferences{aggregation, scale} ->
# align{policy, aggregation, scale, variant, radius, hp, seed} (the core template) -> evaluate{validation,test}
# -> Pareto front, alpha sweep, data scale, table. Code: workflow_scripts/hh/.
from workflow_scripts.hh.workflow import HHRules

H = HHRules(W)
HH = H.root


wildcard_constraints:
    policy=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    aggregation="mixture|hard_min|cvar",
    scale=r"\d+|all",
    objective="|".join(H.cfg["reward_models"]["subsets"]),


rule hh_data:
    input:
        H.source_files(),
    output:
        prompts=multiext(f"{HH}/data/prompts/", "train.parquet", "validation.parquet", "test.parquet"),
        preferences=H.preference_files(),
        sft_corpus=directory(f"{HH}/sft_corpus"),
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/hh/data.log",
    benchmark:
        f"{BENCHMARKS}/hh/data.tsv"
    params:
        flags=H.data_flags(),
        out=H.data_dir,
    shell:
        "python -m workflow_scripts.hh.data {params.flags} --out {params.out:q} --sft-out {output.sft_corpus:q} "
        "> {log:q} 2>&1"


use rule tokenizer as hh_tokenizer with:
    input:
        f"{HH}/sft_corpus",
    output:
        directory(f"{HH}/{{policy}}/tokenizer"),
    log:
        W.log("hh/{policy}/tokenizer"),
    benchmark:
        W.benchmark("hh/{policy}/tokenizer"),
    params:
        source=H.tokenizer_source,
        flags=cli_flags({"vocab_size": H.cfg["tokenizer_vocab_size"], "chat_template": "hh"}),


use rule sft as hh_sft with:
    input:
        data=f"{HH}/sft_corpus",
        tokenizer=f"{HH}/{{policy}}/tokenizer",
    output:
        **W.train_outputs("hh/{policy}/sft"),
    log:
        W.log("hh/{policy}/sft"),
    benchmark:
        W.benchmark("hh/{policy}/sft"),
    resources:
        **W.resources("hh", "sft", nproc=W.procs("sft")),
    params:
        model=H.policy_spec,
        flags=W.train_flags(H.cfg["sft"]),
        ckpt_dir=f"{HH}/{{policy}}/sft/checkpoints",


# A Bradley-Terry reward model per objective, trained on its subset's pairs (hh.reward_models.source: train);
# with `pretrained` the public Ray2333 models are loaded by name instead.
use rule tokenizer as hh_reward_tokenizer with:
    input:
        f"{HH}/sft_corpus",
    output:
        directory(f"{HH}/reward_models/tokenizer"),
    log:
        W.log("hh/reward_models/tokenizer"),
    benchmark:
        W.benchmark("hh/reward_models/tokenizer"),
    params:
        source=H.cfg["reward_models"]["tokenizer"],
        flags=cli_flags({"vocab_size": H.cfg["tokenizer_vocab_size"]}),


use rule reward_model as hh_reward_model with:
    input:
        pairs=H.preference_inputs,
        tokenizer=f"{HH}/reward_models/tokenizer",
    output:
        **W.train_outputs("hh/reward_models/{objective}"),
    log:
        W.log("hh/reward_models/{objective}"),
    benchmark:
        W.benchmark("hh/reward_models/{objective}"),
    resources:
        **W.resources("hh", "reward_model", nproc=W.procs("reward_model")),
    params:
        module="workflow_scripts.hh.train_reward",
        data_flag="--pairs",
        data=input_parent("pairs"),
        model=model_spec_arg(H.cfg["reward_models"]["model"]),
        flags=W.train_flags(H.cfg["reward_models"]["train"]),
        ckpt_dir=f"{HH}/reward_models/{{objective}}/checkpoints",


rule hh_completions:
    input:
        prompts=f"{HH}/data/prompts/train.parquet",
        policy=f"{HH}/{{policy}}/sft/model",
        **H.reward_model_inputs(),
    output:
        f"{HH}/{{policy}}/completions/{{data_seed}}/train.parquet",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/hh/{{policy}}/completions/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/hh/{{policy}}/completions/{{data_seed}}.tsv"
    threads: 1
    resources:
        **W.resources("hh", "completions", nproc=1),
    params:
        flags=H.completion_flags(),
        rm=H.reward_flags,
        settings=settings_of(H.reward_flags),
    shell:
        launch(
            "workflow_scripts.hh.completions --prompts {input.prompts:q} "
            "--policy {input.policy:q} --out {output:q} {params.flags} {params.rm} --seed {wildcards.data_seed} "
            "> {log:q} 2>&1"
        )


rule hh_prefs:
    input:
        f"{HH}/{{policy}}/completions/{{data_seed}}/train.parquet",
    output:
        pairs=f"{HH}/{{policy}}/prefs/{{aggregation}}/{{scale}}/{{data_seed}}/train.parquet",
        summary=f"{HH}/{{policy}}/prefs/{{aggregation}}/{{scale}}/{{data_seed}}/summary.json",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/hh/{{policy}}/prefs/{{aggregation}}/{{scale}}/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/hh/{{policy}}/prefs/{{aggregation}}/{{scale}}/{{data_seed}}.tsv"
    params:
        flags=H.prefs_flags,
    shell:
        "python -m workflow_scripts.hh.prefs --completions {input:q} {params.flags} --seed {wildcards.data_seed} "
        "--out {output.pairs:q} --summary {output.summary:q} > {log:q} 2>&1"


use rule align as hh_align with:
    input:
        pairs=H.prefs_path,
        policy=f"{HH}/{{policy}}/sft/model",
        **W.canary_input(),
    output:
        **W.align_outputs("hh/{policy}/align/{aggregation}/{scale}"),
    log:
        W.log("hh/{policy}/align/{aggregation}/{scale}", W.RUN),
    benchmark:
        W.benchmark("hh/{policy}/align/{aggregation}/{scale}", W.RUN),
    resources:
        **W.resources("hh", "align", nproc=W.align_procs),
    params:
        flags=H.align_flags(),


use rule evaluate as hh_evaluate with:
    input:
        policy=f"{HH}/{{policy}}/align/{{aggregation}}/{{scale}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        validation_prompts=f"{HH}/data/prompts/validation.parquet",
        test_prompts=f"{HH}/data/prompts/test.parquet",
        **H.reward_model_inputs(),
    output:
        **W.eval_outputs("hh/{policy}/eval", "{aggregation}/{scale}", W.RUN),
    log:
        W.log("hh/{policy}/eval", "{aggregation}/{scale}", W.RUN),
    benchmark:
        W.benchmark("hh/{policy}/eval", "{aggregation}/{scale}", W.RUN),
    resources:
        **W.resources("hh", "evaluate"),
    params:
        module="workflow_scripts.hh.evaluate",
        flags=H.eval_flags,
        settings=settings_of(H.eval_flags),


use rule hh_evaluate as hh_evaluate_sft with:
    input:
        policy=f"{HH}/{{policy}}/sft/model",
        validation_prompts=f"{HH}/data/prompts/validation.parquet",
        test_prompts=f"{HH}/data/prompts/test.parquet",
        **H.reward_model_inputs(),
    output:
        **W.eval_outputs("hh/{policy}/eval", "sft/{seed}"),
    log:
        W.log("hh/{policy}/eval", "sft/{seed}"),
    benchmark:
        W.benchmark("hh/{policy}/eval", "sft/{seed}"),


rule hh_report:
    input:
        samples=H.eval_samples(),
        training=H.training_completions(),
        summaries=H.prefs_summaries(),
        histories=H.histories(),
    output:
        pareto_pdf=f"{RESULTS}/figures/hh_pareto.pdf",
        pareto_png=report(f"{RESULTS}/figures/hh_pareto.png", caption="report/hh/pareto.rst", category="HH-Alignment",
                          labels={"figure": "Pareto front", "format": "png"}),
        sweep_pdf=f"{RESULTS}/figures/hh_alpha_sweep.pdf",
        sweep_png=report(f"{RESULTS}/figures/hh_alpha_sweep.png", caption="report/hh/alpha_sweep.rst",
                         category="HH-Alignment", labels={"figure": "alpha sweep", "format": "png"}),
        scale_pdf=f"{RESULTS}/figures/hh_scale.pdf",
        scale_png=report(f"{RESULTS}/figures/hh_scale.png", caption="report/hh/scale.rst", category="HH-Alignment",
                         labels={"figure": "data scale", "format": "png"}),
        training_pdf=f"{RESULTS}/figures/hh_training.pdf",
        training_png=report(f"{RESULTS}/figures/hh_training.png", caption="report/hh/training.rst",
                            category="HH-Alignment", labels={"figure": "training curves", "format": "png"}),
        tables=report(f"{RESULTS}/tables/hh_objectives.csv", caption="report/hh/table.rst",
                      category="HH-Alignment", labels={"table": "objectives"}),
        tables_text=multiext(f"{RESULTS}/tables/hh_objectives", ".md", ".tex"),
    localrule: True
    conda:
        "envs/plot.yaml"
    log:
        f"{LOGS}/report/hh.log",
    benchmark:
        f"{BENCHMARKS}/report/hh.tsv"
    params:
        training=H.training_flags,
        settings=settings_of(H.training_flags),
        flags=H.report_flags(),
        pareto=subpath(output.pareto_pdf, strip_suffix=".pdf"),
        sweep=subpath(output.sweep_pdf, strip_suffix=".pdf"),
        scale=subpath(output.scale_pdf, strip_suffix=".pdf"),
        curves=subpath(output.training_pdf, strip_suffix=".pdf"),
        table=output_stem("tables"),
    shell:
        "python -m workflow_scripts.hh.report --samples {input.samples:q} --training {params.training} "
        "--summaries {input.summaries:q} {params.flags} --table {params.table:q} --pareto {params.pareto:q} "
        "--alpha-sweep {params.sweep:q} --scale {params.scale:q} --histories {input.histories:q} "
        "--training-figure {params.curves:q} > {log:q} 2>&1"


# The selection the lm-eval leaderboard reads (per policy, aggregation, scale and variant, the report's choice
# on VALIDATION): its inputs are validation CSVs only, so what the benchmark evaluates cannot depend on the
# test split.
rule hh_selection:
    input:
        evals=H.selection_evals(),
        training=H.training_completions(),
    output:
        f"{RESULTS}/lm_eval/hh/selected.json",
    localrule: True
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/lm_eval/select_hh.log",
    benchmark:
        f"{BENCHMARKS}/lm_eval/select_hh.tsv"
    params:
        training=H.training_flags,
        settings=settings_of(H.training_flags),
        flags=H.selection_flags(),
    shell:
        "python -m workflow_scripts.hh.select --evals {input.evals:q} --training {params.training} {params.flags} "
        "--out {output:q} > {log:q} 2>&1"
