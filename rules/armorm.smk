# ArmoRM multi-objective alignment (SPEC 5.2): prompts -> base policy -> completions -> ArmoRM scores ->
# preference pairs per training pair -> alignment for every pair x variant x radius x seed (through the
# same DeepSpeed entry point as the emotion stage) -> evaluation -> spider plots, alpha sweep, table.
wildcard_constraints:
    pair=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


# Completions and scoring run as one process, or one per GPU when the job is given several (each takes
# every k-th shard; rank 0 merges).
ARMORM_SHARDED = (
    "gpus={resources.gpu}; "
    'if [ "$gpus" -gt 1 ]; then launcher="python -m torch.distributed.run --standalone '
    '--nproc_per_node ${{SLURM_GPUS_ON_NODE:-$gpus}}"; else launcher=python; fi; '
    "export OMP_NUM_THREADS={threads}; $launcher -m"
)

rule armorm_prompts:
    output:
        multiext(f"{ARMORM}/prompts/", "train.parquet", "validation.parquet", "test.parquet"),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/prompts.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prompts.tsv"
    params:
        flags=cli_flags(armorm_cfg("prompts")),
        out_dir=subpath(output[0], parent=True),
    shell:
        "python -m workflow_scripts.data.armorm_prompts {params.flags} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule armorm_base_policy:
    input:
        f"{ARMORM}/prompts/train.parquet",
    output:
        directory(f"{ARMORM}/base_policy"),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/base_policy.log",
    benchmark:
        f"{BENCHMARKS}/armorm/base_policy.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        source=model_spec_arg(armorm_cfg("policy_model")),
        vocab=armorm_cfg("tokenizer_vocab_size"),
        seed=config["seeds"][0],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.models.armorm_policy --source {params.source:q} --prompts {input:q} "
        "--vocab-size {params.vocab} --seed {params.seed} --out {output:q} > {log:q} 2>&1"


rule armorm_reward_model:
    input:
        f"{ARMORM}/base_policy",
    output:
        directory(f"{ARMORM}/reward_model"),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/reward_model.log",
    benchmark:
        f"{BENCHMARKS}/armorm/reward_model.tsv"
    threads: 1
    params:
        spec=json.dumps(armorm_cfg("reward_model") if armorm_builds_reward_model() else {}, sort_keys=True),
        seed=config["seeds"][0],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.models.armorm_standin --tokenizer {input:q} --spec {params.spec:q} "
        "--seed {params.seed} --out {output:q} > {log:q} 2>&1"


rule armorm_completions:
    input:
        prompts=f"{ARMORM}/prompts/train.parquet",
        policy=f"{ARMORM}/base_policy",
    output:
        f"{ARMORM}/completions/{{data_seed}}/train.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/completions/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/completions/{{data_seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        flags=cli_flags(armorm_cfg("completions"), ["temperature", "top_p", "max_new_tokens", "max_prompt_tokens",
                                                    "batch_size", "shard_size", "n"], n="per_prompt"),
    shell:
        shell_join(
            ARMORM_SHARDED,
            "workflow_scripts.data.armorm_completions --prompts {input.prompts:q} --policy {input.policy:q} "
            "--out {output:q} {params.flags} --seed {wildcards.data_seed} > {log:q} 2>&1",
        )


rule armorm_scores:
    input:
        completions=f"{ARMORM}/completions/{{data_seed}}/train.parquet",
        **armorm_reward_input(),
    output:
        f"{ARMORM}/scores/{{data_seed}}/train.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/scores/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/scores/{{data_seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        shard_size=armorm_cfg("scoring")["shard_size"],
        rm=armorm_reward_flags,
    shell:
        shell_join(
            ARMORM_SHARDED,
            "workflow_scripts.data.armorm_scores --completions {input.completions:q} --out {output:q} "
            "--shard-size {params.shard_size} {params.rm} > {log:q} 2>&1",
        )


rule armorm_prefs:
    input:
        completions=f"{ARMORM}/completions/{{data_seed}}/train.parquet",
        scores=f"{ARMORM}/scores/{{data_seed}}/train.parquet",
    output:
        pairs=f"{ARMORM}/prefs/{{pair}}/{{data_seed}}/train.parquet",
        summary=f"{ARMORM}/prefs/{{pair}}/{{data_seed}}/summary.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/prefs/{{pair}}/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prefs/{{pair}}/{{data_seed}}.tsv"
    params:
        spec=armorm_pair,
    shell:
        "python -m workflow_scripts.data.armorm_prefs --completions {input.completions:q} --scores {input.scores:q} "
        "--objectives {params.spec[objectives][0]} {params.spec[objectives][1]} "
        "--weights {params.spec[weights][0]} {params.spec[weights][1]} --out {output.pairs:q} "
        "--summary {output.summary:q} > {log:q} 2>&1"


# The one alignment entry point of both experiments; the regime and anchor come from armorm.align
# (offline, anchored at the base policy, in the WDPO protocol).
rule armorm_align:
    input:
        pairs=armorm_prefs_for_seed,
        policy=f"{ARMORM}/base_policy",
        **canary_input(),
    output:
        policy=directory(f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy"),
        metrics=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/metrics.json",
        history=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/history.csv",
        run_info=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.tsv"
    threads: train_procs("align")
    resources:
        gpu=0,
        nproc=train_procs("align"),
    params:
        out=subpath(output.metrics, parent=True),
        hp=hparam_flag,
        flags=align_flags("armorm"),
        run_name=config["run_name"],
    shell:
        shell_join(
            LAUNCH,
            "workflow_scripts.train.align --pairs {input.pairs:q} --policy {input.policy:q} --out {params.out:q} "
            "--variant {wildcards.variant} --radius {wildcards.radius} {params.hp} --seed {wildcards.seed} "
            "{params.flags} --run-name={params.run_name:q} > {log:q} 2>&1",
        )


rule armorm_evaluate:
    input:
        policy=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        prompts=f"{ARMORM}/prompts/{{split}}.parquet",
        **armorm_reward_input(),
    output:
        csv=f"{ARMORM}/eval/{{split}}/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.csv",
        completions=f"{ARMORM}/eval/{{split}}/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/eval/{{split}}/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/eval/{{split}}/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        label=armorm_run_label,
        e=cli_flags(armorm_cfg("evaluate"), ["n_prompts", "samples_per_prompt", "temperature", "top_p",
                                             "max_new_tokens", "batch_size", "selection", "best_by"]),
        max_prompt_tokens=armorm_cfg("completions")["max_prompt_tokens"],
        rm=armorm_reward_flags,
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.evaluate.armorm --policy {input.policy:q} --prompts {input.prompts:q} "
        "--split {wildcards.split} {params.label} --seed {wildcards.seed} --out {output.csv:q} "
        "--completions-out {output.completions:q} {params.e} --max-prompt-tokens {params.max_prompt_tokens} "
        "{params.rm} > {log:q} 2>&1"


# The base policy (variant "sft" in tables and figures), once per seed, shared by every training pair.
use rule armorm_evaluate as armorm_evaluate_base with:
    input:
        policy=f"{ARMORM}/base_policy",
        prompts=f"{ARMORM}/prompts/{{split}}.parquet",
        **armorm_reward_input(),
    output:
        csv=f"{ARMORM}/eval/{{split}}/sft/{{seed}}.csv",
        completions=f"{ARMORM}/eval/{{split}}/sft/{{seed}}.parquet",
    log:
        f"{LOGS}/armorm/eval/{{split}}/sft/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/eval/{{split}}/sft/{{seed}}.tsv"


rule armorm_report:
    input:
        evals=armorm_eval_csvs(),
        histories=armorm_histories(),
        # the reporting scale: z-scores w.r.t. the base policy's training completions (first data seed)
        scores=f"{ARMORM}/scores/{data_seeds('armorm')[0]}/train.parquet",
    output:
        spider_pdf=report(
            f"{RESULTS}/figures/armorm_spider.pdf", caption="report/armorm_spider.rst", category="ArmoRM alignment"
        ),
        spider_png=report(
            f"{RESULTS}/figures/armorm_spider.png", caption="report/armorm_spider.rst", category="ArmoRM alignment"
        ),
        sweep_pdf=report(
            f"{RESULTS}/figures/armorm_alpha_sweep.pdf",
            caption="report/armorm_alpha_sweep.rst",
            category="ArmoRM alignment",
        ),
        sweep_png=report(
            f"{RESULTS}/figures/armorm_alpha_sweep.png",
            caption="report/armorm_alpha_sweep.rst",
            category="ArmoRM alignment",
        ),
        training_pdf=report(
            f"{RESULTS}/figures/armorm_training.pdf", caption="report/armorm_training.rst", category="ArmoRM alignment"
        ),
        training_png=report(
            f"{RESULTS}/figures/armorm_training.png", caption="report/armorm_training.rst", category="ArmoRM alignment"
        ),
        tables=expand(f"{RESULTS}/tables/armorm_objectives.{{ext}}", ext=["csv", "md", "tex"]),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/report/armorm.log",
    benchmark:
        f"{BENCHMARKS}/report/armorm.tsv"
    params:
        pairs=json.dumps(ARMORM_PAIRS),
        axes=armorm_cfg("evaluate")["axes"],
        alphas=armorm_cfg("evaluate")["alphas"],
        spider=subpath(output.spider_pdf, strip_suffix=".pdf"),
        sweep=subpath(output.sweep_pdf, strip_suffix=".pdf"),
        training=subpath(output.training_pdf, strip_suffix=".pdf"),
        table=lambda wildcards, output: os.path.splitext(output.tables[0])[0],
    shell:
        "python -m workflow_scripts.report.armorm --inputs {input.evals:q} --histories {input.histories:q} "
        "--scores {input.scores:q} --pairs-json {params.pairs:q} --axes {params.axes} --alphas {params.alphas} "
        "--spider {params.spider:q} --alpha-sweep {params.sweep:q} --training {params.training:q} "
        "--table {params.table:q} > {log:q} 2>&1"
