# Rules shared by every experiment: the GPU canary, and the tokenizer, training, alignment and evaluation
# rules as TEMPLATES. Each experiment uses them with its own inputs and paths (`use rule align as
# emotion_align with: ...`), so a fix here reaches every experiment; the helpers W.train_outputs /
# W.align_outputs / W.eval_outputs, W.log and W.benchmark derive a job's outputs, log and benchmark from
# one path. The templates' own outputs live under results/<preset>/templates/, which nothing requests:
# they never run themselves.


wildcard_constraints:
    variant="|".join(VARIANTS),
    radius=r"[0-9][0-9.e+-]*",
    hp=r"(eta|beta)[0-9][0-9.e+-]*",
    seed=r"\d+",
    data_seed=r"\d+",


# The GPU canary: one short job, launched exactly like an alignment job (same launcher, same
# resources under the SLURM profile), that records the devices, SLURM allocation and world size
# each rank sees, and fails if they disagree. With `launch.canary: true` (set by profiles/slurm)
# every alignment job depends on it, so a misconfigured allocation stops the grid in minutes rather
# than after hours.
rule gpu_canary:
    output:
        f"{RESULTS}/canary/gpu_job.json",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/canary/gpu_job.log",
    benchmark:
        f"{BENCHMARKS}/canary/gpu_job.tsv"
    threads: 2
    resources:
        **W.canary_resources(),
    shell:
        launch("workflow_scripts.tools.canary --out {output:q} --expected-gpus {resources.gpu} > {log:q} 2>&1")


# A tokenizer: a hub tokenizer, or a BPE trained on the corpus (the directory's train split). An experiment
# sets the corpus, the paths, `params.source` and `params.flags` (vocabulary size; a chat template).
rule tokenizer:
    input:
        f"{RESULTS}/templates/tokenizer/corpus",
    output:
        directory(f"{RESULTS}/templates/tokenizer/tokenizer"),
    conda:
        "envs/train.yaml"
    log:
        W.log("templates/tokenizer"),
    benchmark:
        W.benchmark("templates/tokenizer"),
    params:
        source="",
        flags="",
    shell:
        "python -m workflow_scripts.core.tokenizer --source {params.source:q} --data {input:q} {params.flags} "
        "--out {output:q} > {log:q} 2>&1"


# One training job of a model on a tokenized dataset: supervised fine-tuning of a policy on a corpus of texts
# (the directory's train / validation splits, column `text`) here, an experiment's reward model through the
# `reward_model` template below. `params.module` names the trainer, `params.data_flag` / `params.data` its data
# argument; an experiment sets the inputs, the paths and `params` (model spec, flags).
rule sft:
    input:
        data=f"{RESULTS}/templates/sft/corpus",
        tokenizer=f"{RESULTS}/templates/sft/tokenizer",
    output:
        **W.train_outputs("templates/sft"),
    conda:
        "envs/train.yaml"
    log:
        W.log("templates/sft"),
    benchmark:
        W.benchmark("templates/sft"),
    threads: W.procs("sft")
    resources:
        gpu=0,
        nproc=W.procs("sft"),
    params:
        module="workflow_scripts.core.train.sft",
        data_flag="--data",
        data=subpath(input.data),
        model="",
        seed=config["seeds"][0],
        flags="",
        run_name=config["run_name"],
        # beside the model, not inside a declared output (Snakemake removes those on failure)
        ckpt_dir=f"{RESULTS}/templates/sft/checkpoints",
    shell:
        launch(
            "{params.module} {params.data_flag} {params.data:q} --tokenizer {input.tokenizer:q} "
            "--model {params.model:q} --out {output.model:q} --metrics {output.metrics:q} "
            "--run-info {output.run_info:q} --seed {params.seed} {params.flags} --checkpoint-dir {params.ckpt_dir:q} "
            "--run-name={params.run_name:q} > {log:q} 2>&1"
        )


# A reward model's training job: the `sft` command and outputs on the reward-model process count. An
# experiment sets `params.module` (its reward trainer) besides what it sets for `sft`.
use rule sft as reward_model with:
    output:
        **W.train_outputs("templates/reward_model"),
    log:
        W.log("templates/reward_model"),
    benchmark:
        W.benchmark("templates/reward_model"),
    threads: W.procs("reward_model")
    resources:
        gpu=0,
        nproc=W.procs("reward_model"),
    params:
        module="workflow_scripts.templates.train_reward",
        ckpt_dir=f"{RESULTS}/templates/reward_model/checkpoints",


# One DeepSpeed alignment job: the ONE entry point (workflow_scripts.core.train.align) for every
# variant, radius, eta/beta and seed of every experiment. An experiment sets the inputs (pairs, initial
# policy), the paths, and `params.flags` (its losses and align sections; its scorer for the online regime).
rule align:
    input:
        pairs=f"{RESULTS}/templates/align/pairs.parquet",
        policy=f"{RESULTS}/templates/align/policy",
    output:
        **W.align_outputs("templates/align"),
    conda:
        "envs/train.yaml"
    log:
        W.log("templates/align", W.RUN),
    benchmark:
        W.benchmark("templates/align", W.RUN),
    threads: W.align_procs
    resources:
        gpu=0,
        nproc=W.align_procs,
    params:
        out=subpath(output.metrics, parent=True),
        hp=hparam_flag,
        flags="",
        run_name=config["run_name"],
    shell:
        launch(
            "workflow_scripts.core.train.align --pairs {input.pairs:q} --policy {input.policy:q} "
            "--out {params.out:q} --variant {wildcards.variant} --radius {wildcards.radius} {params.hp} "
            "--seed {wildcards.seed} {params.flags} --run-name={params.run_name:q} > {log:q} 2>&1"
        )


# One policy's generations on the validation AND the test prompts, scored (radii and eta/beta are selected on
# validation, results reported on test); one job, so the policy and the reward model load once. An
# experiment sets the inputs, the paths, `params.module` (its evaluation CLI) and `params.flags` (data and
# reward-model arguments, its evaluate section).
rule evaluate:
    input:
        policy=f"{RESULTS}/templates/evaluate/policy",
    output:
        **W.eval_outputs("templates/evaluate", W.RUN),
    conda:
        "envs/train.yaml"
    log:
        W.log("templates/evaluate", W.RUN),
    benchmark:
        W.benchmark("templates/evaluate", W.RUN),
    threads: 1
    resources:
        gpu=0,
    params:
        module="workflow_scripts.templates.evaluate",
        label=run_label,
        flags="",
    shell:
        "export OMP_NUM_THREADS={threads}; python -m {params.module} --policy {input.policy:q} {params.label} "
        "--seed {wildcards.seed} --out validation={output.validation:q} --out test={output.test:q} "
        "--completions-out {output.completions:q} {params.flags} > {log:q} 2>&1"
