# Stage 6: one DeepSpeed alignment job per (variant, radius, seed), all variants through the
# same entry point (workflow_scripts.train.align).


rule emotion_align:
    input:
        pairs=f"{EMOTION}/pairs/train.parquet",
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
        **canary_input(),
    output:
        policy=directory(f"{EMOTION}/align/{{variant}}/{{radius}}/{{seed}}/policy"),
        metrics=f"{EMOTION}/align/{{variant}}/{{radius}}/{{seed}}/metrics.json",
        history=f"{EMOTION}/align/{{variant}}/{{radius}}/{{seed}}/history.csv",
        run_info=f"{EMOTION}/align/{{variant}}/{{radius}}/{{seed}}/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/align/{{variant}}/{{radius}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/align/{{variant}}/{{radius}}/{{seed}}.tsv"
    threads: lambda wildcards: train_procs("align", wildcards.variant)
    resources:
        gpu=0,
        nproc=lambda wildcards: train_procs("align", wildcards.variant),
    params:
        out=subpath(output.metrics, parent=True),
        hp=emotion_cfg("align"),
        mix=emotion_cfg("mixture"),
        losses=config["losses"],
        ds=config["deepspeed"],
        ck=config["checkpoint"],
        run_name=config["run_name"],
    shell:
        LAUNCH + " workflow_scripts.train.align --pairs {input.pairs:q} --policy {input.policy:q} "
        "--reward-model {input.reward_model:q} --out {params.out:q} --variant {wildcards.variant} "
        "--radius {wildcards.radius} --seed {wildcards.seed} --eta {params.losses[eta]} --beta {params.losses[beta]} "
        "--kl-form {params.losses[kl_form]} --wasserstein-form {params.losses[wasserstein_form]} "
        "--regime {params.hp[regime]} --anchor {params.hp[anchor]} --epochs {params.hp[epochs]} "
        "--iterations {params.hp[iterations]} --updates-per-iteration {params.hp[updates_per_iteration]} "
        "--global-batch {params.hp[global_batch]} --micro-batch {params.hp[micro_batch]} --lr {params.hp[lr]} "
        "--warmup-ratio {params.hp[warmup_ratio]} --max-length {params.hp[max_length]} "
        "--max-new-tokens {params.hp[max_new_tokens]} "
        "--objectives {params.mix[objectives][0]} {params.mix[objectives][1]} --alpha0 {params.mix[alpha0]} "
        "--mixture {params.mix[kind]} --bt-scale {params.mix[bt_scale]} "
        "--zero-stage {params.ds[zero_stage]} --precision {params.ds[precision]} "
        "--checkpoint-every {params.ck[every_steps]} --checkpoint-keep {params.ck[keep]} --run-name={params.run_name:q} "
        "> {log:q} 2>&1"
