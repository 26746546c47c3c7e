# Stage 6: one DeepSpeed alignment job per (variant, radius, base hyperparameter, seed), all variants
# through the same entry point (workflow_scripts.train.align).


rule emotion_align:
    input:
        pairs=emotion_pairs,
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
        **canary_input(),
    output:
        policy=directory(f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy"),
        metrics=f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/metrics.json",
        history=f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/history.csv",
        run_info=f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}.tsv"
    threads: lambda wildcards: train_procs("align", wildcards.variant)
    resources:
        gpu=0,
        nproc=lambda wildcards: train_procs("align", wildcards.variant),
    params:
        out=subpath(output.metrics, parent=True),
        hp=hparam_flag,
        flags=align_flags("emotion"),
        mix=cli_flags(emotion_cfg("mixture"), ["objectives", "alpha0", "kind", "bt_scale"], kind="mixture"),
        run_name=config["run_name"],
    shell:
        LAUNCH + " workflow_scripts.train.align --pairs {input.pairs:q} --policy {input.policy:q} "
        "--reward-model {input.reward_model:q} --out {params.out:q} --variant {wildcards.variant} "
        "--radius {wildcards.radius} {params.hp} --seed {wildcards.seed} {params.flags} {params.mix} "
        "--run-name={params.run_name:q} > {log:q} 2>&1"
