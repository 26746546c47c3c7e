# Stage 3: supervised fine-tuning of the policy on the emotion texts (DeepSpeed).


rule emotion_sft:
    input:
        data=f"{EMOTION}/data",
        tokenizer=f"{EMOTION}/tokenizer",
    output:
        model=directory(f"{EMOTION}/sft/model"),
        metrics=f"{EMOTION}/sft/metrics.json",
        run_info=f"{EMOTION}/sft/run_info.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/sft.log",
    benchmark:
        f"{BENCHMARKS}/emotion/sft.tsv"
    threads: train_procs("sft")
    resources:
        gpu=0,
        nproc=train_procs("sft"),
    params:
        model=model_spec_arg(config["emotion"]["policy_model"]),
        seed=config["seeds"][0],
        flags=train_flags(emotion_cfg("sft")),
        run_name=config["run_name"],
        # beside the model, not inside a declared output (Snakemake removes those on failure)
        ckpt_dir=f"{EMOTION}/sft/checkpoints",
    shell:
        LAUNCH + " workflow_scripts.train.sft --data {input.data:q} --tokenizer {input.tokenizer:q} "
        "--model {params.model:q} --out {output.model:q} --metrics {output.metrics:q} --run-info {output.run_info:q} "
        "--seed {params.seed} {params.flags} --checkpoint-dir {params.ckpt_dir:q} --run-name={params.run_name:q} "
        "> {log:q} 2>&1"
