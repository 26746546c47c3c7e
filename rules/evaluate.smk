# Stage 7: mean r*(alpha) of each policy's generations on held-out prompts, for the alpha
# grid and both mixtures. The SFT policy is evaluated as the baseline (variant "sft").


rule emotion_evaluate:
    input:
        policy=emotion_policy,
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        f"{EMOTION}/eval/{{variant}}/{{radius}}/{{seed}}.csv",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/eval/{{variant}}/{{radius}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/eval/{{variant}}/{{radius}}/{{seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        e=emotion_cfg("evaluate"),
        mix=emotion_cfg("mixture"),
        prompt_tokens=emotion_cfg("pairs")["prompt_tokens"],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.evaluate.emotion --policy {input.policy:q} --reward-model {input.reward_model:q} "
        "--data {input.data:q} --variant {wildcards.variant} --radius {wildcards.radius} --seed {wildcards.seed} "
        "--out {output:q} --n-prompts {params.e[n_prompts]} --samples-per-prompt {params.e[samples_per_prompt]} "
        "--prompt-tokens {params.prompt_tokens} --max-new-tokens {params.e[max_new_tokens]} "
        "--objectives {params.mix[objectives][0]} {params.mix[objectives][1]} "
        "--alphas {params.e[alphas]} --mixtures {params.e[mixtures]} > {log:q} 2>&1"
