# Stage 5: preference pairs from the SFT policy, scored by the reward model, labelled under
# r*(alpha0), with reference log-probs computed once.


rule emotion_pairs:
    input:
        data=f"{EMOTION}/data",
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
    output:
        f"{EMOTION}/pairs/train.parquet",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/pairs.log",
    benchmark:
        f"{BENCHMARKS}/emotion/pairs.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        p=emotion_cfg("pairs"),
        mix=emotion_cfg("mixture"),
        seed=config["seeds"][0],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.data.emotion_pairs --data {input.data:q} --policy {input.policy:q} "
        "--reward-model {input.reward_model:q} --out {output:q} --seed {params.seed} "
        "--n-prompts {params.p[n_prompts]} --prompt-tokens {params.p[prompt_tokens]} "
        "--max-new-tokens {params.p[max_new_tokens]} --top-k {params.p[top_k]} --top-p {params.p[top_p]} "
        "--objectives {params.mix[objectives][0]} {params.mix[objectives][1]} --alpha0 {params.mix[alpha0]} "
        "--mixture {params.mix[kind]} --bt-scale {params.mix[bt_scale]} > {log:q} 2>&1"
