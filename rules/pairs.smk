# Stage 5: preference pairs from the SFT policy, scored by the reward model, labelled under r*(alpha0).
# One set per data seed (emotion.pairs.per_seed: the training seed; else the first seed).


rule emotion_pairs:
    input:
        data=f"{EMOTION}/data",
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
    output:
        pairs=f"{EMOTION}/pairs/{{data_seed}}/train.parquet",
        summary=f"{EMOTION}/pairs/{{data_seed}}/summary.json",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/pairs/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/pairs/{{data_seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        pairs=cli_flags(emotion_cfg("pairs"), ["n_prompts", "prompt_tokens", "max_new_tokens", "top_k", "top_p"]),
        mix=cli_flags(emotion_cfg("mixture"), ["objectives", "alpha0", "kind", "bt_scale"], kind="mixture"),
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.data.emotion_pairs --data {input.data:q} --policy {input.policy:q} "
        "--reward-model {input.reward_model:q} --out {output.pairs:q} --summary {output.summary:q} "
        "--seed {wildcards.data_seed} {params.pairs} "
        "{params.mix} > {log:q} 2>&1"
