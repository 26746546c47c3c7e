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
        hp=emotion_cfg("reward"),
        ds=config["deepspeed"],
        ck=config["checkpoint"],
        run_name=config["run_name"],
        # beside the model, not inside a declared output (Snakemake removes those on failure)
        ckpt_dir=f"{EMOTION}/reward_model/checkpoints",
    shell:
        LAUNCH + " workflow_scripts.train.reward_model --data {input.data:q} --tokenizer {input.tokenizer:q} "
        "--model {params.model:q} --out {output.model:q} --metrics {output.metrics:q} --run-info {output.run_info:q} "
        "--seed {params.seed} --epochs {params.hp[epochs]} --global-batch {params.hp[global_batch]} "
        "--micro-batch {params.hp[micro_batch]} --lr {params.hp[lr]} --warmup-ratio {params.hp[warmup_ratio]} "
        "--max-concat {params.hp[max_concat]} --max-length {params.hp[max_length]} "
        "--zero-stage {params.ds[zero_stage]} --precision {params.ds[precision]} --checkpoint-dir {params.ckpt_dir:q} "
        "--checkpoint-every {params.ck[every_steps]} --checkpoint-keep {params.ck[keep]} --run-name={params.run_name:q} "
        "> {log:q} 2>&1"
