# Stage 4: the multi-label emotion reward model (sigmoid + BCE over five emotions).


rule emotion_reward_model:
    input:
        data=f"{EMOTION}/data",
        tokenizer=f"{EMOTION}/tokenizer",
    output:
        model=directory(f"{EMOTION}/reward_model/model"),
        metrics=f"{EMOTION}/reward_model/metrics.json",
        run_info=f"{EMOTION}/reward_model/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/reward_model.log",
    benchmark:
        f"{BENCHMARKS}/emotion/reward_model.tsv"
    threads: train_procs("reward_model")
    resources:
        gpu=0,
        nproc=train_procs("reward_model"),
    params:
        model=model_spec_arg(config["emotion"]["reward_model"]),
        seed=config["seeds"][0],
        flags=train_flags(emotion_cfg("reward")),
        run_name=config["run_name"],
        # beside the model, not inside a declared output (Snakemake removes those on failure)
        ckpt_dir=f"{EMOTION}/reward_model/checkpoints",
    shell:
        LAUNCH + " workflow_scripts.train.reward_model --data {input.data:q} --tokenizer {input.tokenizer:q} "
        "--model {params.model:q} --out {output.model:q} --metrics {output.metrics:q} --run-info {output.run_info:q} "
        "--seed {params.seed} {params.flags} --checkpoint-dir {params.ckpt_dir:q} --run-name={params.run_name:q} "
        "> {log:q} 2>&1"
