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

# The reward-model arguments shared by scoring and evaluation.
ARMORM_RM_ARGS = (
    "--reward-model {params.rm:q} --allowlist {params.allowlist:q} --loader {params.loader} "
    "--dtype {params.dtype} --score-batch-size {params.scoring[batch_size]} "
    "--score-max-length {params.scoring[max_length]}"
)


rule armorm_prompts:
    output:
        train=f"{ARMORM}/prompts/train.parquet",
        test=f"{ARMORM}/prompts/test.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/prompts.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prompts.tsv"
    params:
        p=armorm_cfg("prompts"),
    shell:
        "python -m workflow_scripts.data.armorm_prompts --source {params.p[source]:q} --n-train {params.p[n_train]} "
        "--n-test {params.p[n_test]} --seed {params.p[seed]} --train-out {output.train:q} "
        "--test-out {output.test:q} > {log:q} 2>&1"


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
        f"{ARMORM}/completions/train.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/completions.log",
    benchmark:
        f"{BENCHMARKS}/armorm/completions.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        c=armorm_cfg("completions"),
        max_length=armorm_cfg("align")["max_length"],
        seed=config["seeds"][0],
    shell:
        shell_join(
            ARMORM_SHARDED,
            "workflow_scripts.data.armorm_completions --prompts {input.prompts:q} --policy {input.policy:q} "
            "--out {output:q} --per-prompt {params.c[n]} --temperature {params.c[temperature]} --top-p {params.c[top_p]} "
            "--max-new-tokens {params.c[max_new_tokens]} --max-prompt-tokens {params.c[max_prompt_tokens]} "
            "--logp-max-length {params.max_length} --batch-size {params.c[batch_size]} "
            "--shard-size {params.c[shard_size]} --seed {params.seed} > {log:q} 2>&1",
        )


rule armorm_scores:
    input:
        completions=f"{ARMORM}/completions/train.parquet",
        **armorm_reward_input(),
    output:
        f"{ARMORM}/scores/train.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/scores.log",
    benchmark:
        f"{BENCHMARKS}/armorm/scores.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        rm=armorm_reward_source,
        allowlist=armorm_cfg("trust_remote_code_allowlist"),
        loader=armorm_cfg("reward_loader"),
        dtype=armorm_cfg("reward_dtype"),
        scoring=armorm_cfg("scoring"),
    shell:
        shell_join(
            ARMORM_SHARDED,
            "workflow_scripts.data.armorm_scores --completions {input.completions:q} --out {output:q} "
            "--shard-size {params.scoring[shard_size]}",
            ARMORM_RM_ARGS,
            "> {log:q} 2>&1",
        )


rule armorm_prefs:
    input:
        completions=f"{ARMORM}/completions/train.parquet",
        scores=f"{ARMORM}/scores/train.parquet",
    output:
        pairs=f"{ARMORM}/prefs/{{pair}}/train.parquet",
        summary=f"{ARMORM}/prefs/{{pair}}/summary.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/prefs/{{pair}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prefs/{{pair}}.tsv"
    params:
        spec=armorm_pair,
    shell:
        "python -m workflow_scripts.data.armorm_prefs --completions {input.completions:q} --scores {input.scores:q} "
        "--objectives {params.spec[objectives][0]} {params.spec[objectives][1]} "
        "--weights {params.spec[weights][0]} {params.spec[weights][1]} --out {output.pairs:q} "
        "--summary {output.summary:q} > {log:q} 2>&1"


# The one alignment entry point of both experiments, in its offline regime: the pairs are fixed
# (chosen = argmax, rejected = argmin of the mixed z-score) and REBEL is anchored at the base policy.
rule armorm_align:
    input:
        pairs=f"{ARMORM}/prefs/{{pair}}/train.parquet",
        policy=f"{ARMORM}/base_policy",
        **canary_input(),
    output:
        policy=directory(f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}/policy"),
        metrics=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}/metrics.json",
        history=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}/history.csv",
        run_info=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}.tsv"
    threads: train_procs("align")
    resources:
        gpu=0,
        nproc=train_procs("align"),
    params:
        out=subpath(output.metrics, parent=True),
        hp=armorm_cfg("align"),
        losses=config["losses"],
        ds=config["deepspeed"],
        ck=config["checkpoint"],
        run_name=config["run_name"],
    shell:
        shell_join(
            LAUNCH,
            "workflow_scripts.train.align --pairs {input.pairs:q} --policy {input.policy:q} --out {params.out:q} "
            "--variant {wildcards.variant} --radius {wildcards.radius} --seed {wildcards.seed} "
            "--eta {params.hp[eta]} --beta {params.hp[beta]} --kl-form {params.losses[kl_form]} "
            "--wasserstein-form {params.losses[wasserstein_form]} --regime offline --anchor reference "
            "--epochs {params.hp[epochs]} --global-batch {params.hp[global_batch]} "
            "--micro-batch {params.hp[micro_batch]} --lr {params.hp[lr]} --warmup-ratio {params.hp[warmup_ratio]} "
            "--max-length {params.hp[max_length]} --zero-stage {params.ds[zero_stage]} "
            "--precision {params.ds[precision]} --checkpoint-every {params.ck[every_steps]} "
            "--checkpoint-keep {params.ck[keep]} --run-name={params.run_name:q} > {log:q} 2>&1",
        )


ARMORM_EVALUATE = shell_join(
    "export OMP_NUM_THREADS={threads};",
    "python -m workflow_scripts.evaluate.armorm --policy {input.policy:q} --prompts {input.prompts:q} "
    "--variant {params.variant} --radius {params.radius} --seed {wildcards.seed} --pair={params.pair:q} "
    "--out {output.csv:q} --completions-out {output.completions:q} --n-prompts {params.e[n_prompts]} "
    "--samples-per-prompt {params.e[samples_per_prompt]} --temperature {params.e[temperature]} "
    "--top-p {params.e[top_p]} --max-new-tokens {params.e[max_new_tokens]} "
    "--max-prompt-tokens {params.max_prompt_tokens} --batch-size {params.e[batch_size]} "
    "--selection {params.e[selection]} --best-by {params.e[best_by]}",
    ARMORM_RM_ARGS,
    "> {log:q} 2>&1",
)


rule armorm_evaluate:
    input:
        policy=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{seed}}/policy",
        prompts=f"{ARMORM}/prompts/test.parquet",
        **armorm_reward_input(),
    output:
        csv=f"{ARMORM}/eval/{{pair}}/{{variant}}/{{radius}}/{{seed}}.csv",
        completions=f"{ARMORM}/eval/{{pair}}/{{variant}}/{{radius}}/{{seed}}.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/eval/{{pair}}/{{variant}}/{{radius}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/eval/{{pair}}/{{variant}}/{{radius}}/{{seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        variant=lambda wildcards: wildcards.variant,
        radius=lambda wildcards: wildcards.radius,
        pair=lambda wildcards: wildcards.pair,
        e=armorm_cfg("evaluate"),
        max_prompt_tokens=armorm_cfg("completions")["max_prompt_tokens"],
        rm=armorm_reward_source,
        allowlist=armorm_cfg("trust_remote_code_allowlist"),
        loader=armorm_cfg("reward_loader"),
        dtype=armorm_cfg("reward_dtype"),
        scoring=armorm_cfg("scoring"),
    shell:
        ARMORM_EVALUATE


# The base policy (variant "sft" in tables and figures), once per seed, shared by every training pair.
rule armorm_evaluate_base:
    input:
        policy=f"{ARMORM}/base_policy",
        prompts=f"{ARMORM}/prompts/test.parquet",
        **armorm_reward_input(),
    output:
        csv=f"{ARMORM}/eval/sft/0/{{seed}}.csv",
        completions=f"{ARMORM}/eval/sft/0/{{seed}}.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/armorm/eval/sft/0/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/eval/sft/0/{{seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        variant="sft",
        radius="0",
        pair="",
        e=armorm_cfg("evaluate"),
        max_prompt_tokens=armorm_cfg("completions")["max_prompt_tokens"],
        rm=armorm_reward_source,
        allowlist=armorm_cfg("trust_remote_code_allowlist"),
        loader=armorm_cfg("reward_loader"),
        dtype=armorm_cfg("reward_dtype"),
        scoring=armorm_cfg("scoring"),
    shell:
        ARMORM_EVALUATE


rule armorm_report:
    input:
        evals=armorm_eval_csvs(),
        scores=f"{ARMORM}/scores/train.parquet",
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
        table=lambda wildcards, output: os.path.splitext(output.tables[0])[0],
    shell:
        "python -m workflow_scripts.report.armorm --inputs {input.evals:q} --scores {input.scores:q} "
        "--pairs-json {params.pairs:q} --axes {params.axes} --alphas {params.alphas} --spider {params.spider:q} "
        "--alpha-sweep {params.sweep:q} --table {params.table:q} > {log:q} 2>&1"
