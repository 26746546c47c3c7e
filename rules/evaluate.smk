# Stage 7: mean r*(alpha) of each policy's generations on held-out prompts, for the alpha grid and both
# mixtures, on the validation split (radius / hyperparameter selection) and the test split (reported).
# The SFT policy is evaluated as the baseline (variant "sft").


rule emotion_evaluate:
    input:
        policy=f"{EMOTION}/align/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        f"{EMOTION}/eval/{{split}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.csv",
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/eval/{{split}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/eval/{{split}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}.tsv"
    threads: 1
    resources:
        gpu=0,
    params:
        label=run_label,
        e=cli_flags(emotion_cfg("evaluate")),
        objectives=cli_flags(emotion_cfg("mixture"), ["objectives"]),
        prompt_tokens=emotion_cfg("pairs")["prompt_tokens"],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.evaluate.emotion --policy {input.policy:q} --reward-model {input.reward_model:q} "
        "--data {input.data:q} --split {wildcards.split} {params.label} --seed {wildcards.seed} "
        "--out {output:q} --prompt-tokens {params.prompt_tokens} {params.e} {params.objectives} > {log:q} 2>&1"


use rule emotion_evaluate as emotion_evaluate_sft with:
    input:
        policy=f"{EMOTION}/sft/model",
        reward_model=f"{EMOTION}/reward_model/model",
        data=f"{EMOTION}/data",
    output:
        f"{EMOTION}/eval/{{split}}/sft/{{seed}}.csv",
    log:
        f"{LOGS}/emotion/eval/{{split}}/sft/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/emotion/eval/{{split}}/sft/{{seed}}.tsv"
    params:
        label=run_label,
        e=cli_flags(emotion_cfg("evaluate")),
        objectives=cli_flags(emotion_cfg("mixture"), ["objectives"]),
        prompt_tokens=emotion_cfg("pairs")["prompt_tokens"],
