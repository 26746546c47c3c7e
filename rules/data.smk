# Stage 1-2: the emotion dataset (generated, local, or from the hub) and the tokenizer.


rule emotion_data:
    output:
        directory(f"{EMOTION}/data"),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/data.log",
    benchmark:
        f"{BENCHMARKS}/emotion/data.tsv"
    params:
        source=emotion_cfg("dataset") if emotion_cfg("dataset") != "generated" else "generated",
        generate=" ".join(
            f"--{key.replace('_', '-')} {value}"
            for key, value in (config["emotion"].get("generate_dataset") or {}).items()
        ),
        carve=emotion_cfg("test_from_validation"),
    shell:
        "python -m workflow_scripts.data.prepare_emotion --source {params.source:q} {params.generate} "
        "--test-from-validation {params.carve} --out {output:q} > {log:q} 2>&1"


rule emotion_tokenizer:
    input:
        f"{EMOTION}/data",
    output:
        directory(f"{EMOTION}/tokenizer"),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/emotion/tokenizer.log",
    benchmark:
        f"{BENCHMARKS}/emotion/tokenizer.tsv"
    params:
        source=config["emotion"]["tokenizer"],
        vocab=config["emotion"].get("tokenizer_vocab_size", 512),
    shell:
        "python -m workflow_scripts.data.tokenizer --source {params.source:q} --data {input:q} "
        "--vocab-size {params.vocab} --out {output:q} > {log:q} 2>&1"
