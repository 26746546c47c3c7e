# ArmoRM multi-objective alignment (SPEC 5.2): prompts{train,validation,test} -> base policy ->
# completions{data_seed} -> ArmoRM scores -> preference pairs{pair,data_seed} -> align{pair,variant,radius,hp,seed}
# (the core alignment template) -> evaluate{validation,test} -> spider plots, alpha sweep, training curves,
# table. Code: workflow_scripts/armorm/.
from workflow_scripts.armorm.workflow import ArmoRMRules

A = ArmoRMRules(W)
ARMORM = A.root


wildcard_constraints:
    pair=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


rule armorm_prompts:
    input:
        A.source_files(),
    output:
        multiext(f"{ARMORM}/prompts/", "train.parquet", "validation.parquet", "test.parquet"),
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/prompts.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prompts.tsv"
    params:
        flags=cli_flags(A.cfg["prompts"]),
        out_dir=subpath(output[0], parent=True),
    shell:
        "python -m workflow_scripts.armorm.prompts {params.flags} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule armorm_base_policy:
    input:
        f"{ARMORM}/prompts/train.parquet",
    output:
        directory(f"{ARMORM}/base_policy"),
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/base_policy.log",
    benchmark:
        f"{BENCHMARKS}/armorm/base_policy.tsv"
    threads: 1
    params:
        source=model_spec_arg(A.cfg["policy_model"]),
        vocab=A.cfg["tokenizer_vocab_size"],
        seed=config["seeds"][0],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.armorm.policy --source {params.source:q} --prompts {input:q} "
        "--vocab-size {params.vocab} --seed {params.seed} --out {output:q} > {log:q} 2>&1"


# Mini only: the ArmoRM stand-in (random init, ArmoRM's interface); the paper loads the hub model.
rule armorm_reward_model:
    input:
        f"{ARMORM}/base_policy",
    output:
        directory(f"{ARMORM}/reward_model"),
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/reward_model.log",
    benchmark:
        f"{BENCHMARKS}/armorm/reward_model.tsv"
    threads: 1
    params:
        spec=A.standin_spec(),
        seed=config["seeds"][0],
    shell:
        "export OMP_NUM_THREADS={threads}; "
        "python -m workflow_scripts.armorm.standin --tokenizer {input:q} --spec {params.spec:q} "
        "--seed {params.seed} --out {output:q} > {log:q} 2>&1"


# Completions and scoring run as one process, or one per GPU when the job is given several (each takes
# every k-th shard; rank 0 merges): the same launcher as training.
rule armorm_completions:
    input:
        prompts=f"{ARMORM}/prompts/train.parquet",
        policy=f"{ARMORM}/base_policy",
    output:
        f"{ARMORM}/completions/{{data_seed}}/train.parquet",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/completions/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/completions/{{data_seed}}.tsv"
    threads: 1
    resources:
        **W.resources("armorm", "completions", nproc=1),
    params:
        flags=A.completion_flags(),
    shell:
        launch(
            "workflow_scripts.armorm.completions --prompts {input.prompts:q} --policy {input.policy:q} "
            "--out {output:q} {params.flags} --seed {wildcards.data_seed} > {log:q} 2>&1"
        )


rule armorm_scores:
    input:
        completions=f"{ARMORM}/completions/{{data_seed}}/train.parquet",
        **A.reward_input(),
    output:
        f"{ARMORM}/scores/{{data_seed}}/train.parquet",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/scores/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/scores/{{data_seed}}.tsv"
    threads: 1
    resources:
        **W.resources("armorm", "scores", nproc=1),
    params:
        shard_size=lookup(dpath="armorm/scoring/shard_size", within=config),
        rm=A.reward_flags,
        settings=settings_of(A.reward_flags),
    shell:
        launch(
            "workflow_scripts.armorm.scores --completions {input.completions:q} --out {output:q} "
            "--shard-size {params.shard_size} {params.rm} > {log:q} 2>&1"
        )


rule armorm_prefs:
    input:
        completions=f"{ARMORM}/completions/{{data_seed}}/train.parquet",
        scores=f"{ARMORM}/scores/{{data_seed}}/train.parquet",
    output:
        pairs=f"{ARMORM}/prefs/{{pair}}/{{data_seed}}/train.parquet",
        summary=f"{ARMORM}/prefs/{{pair}}/{{data_seed}}/summary.json",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/prefs/{{pair}}/{{data_seed}}.log",
    benchmark:
        f"{BENCHMARKS}/armorm/prefs/{{pair}}/{{data_seed}}.tsv"
    params:
        spec=A.pair,
    shell:
        "python -m workflow_scripts.armorm.prefs --completions {input.completions:q} --scores {input.scores:q} "
        "--objectives {params.spec[objectives][0]} {params.spec[objectives][1]} "
        "--weights {params.spec[weights][0]} {params.spec[weights][1]} --out {output.pairs:q} "
        "--summary {output.summary:q} > {log:q} 2>&1"


# The WDPO protocol: offline, REBEL anchored at the base policy (armorm.align). Every ArmoRM alignment job
# (offline and online) runs on launch.cpu_procs.align CPU processes, whatever its variant: the config check
# splits ArmoRM's align batches over that count only (launch.align_two_process_variants applies to the emotion
# and HH grids), and the mini preset's ArmoRM batch (global = micro = 16) does not split over 2.
use rule align as armorm_align with:
    input:
        pairs=A.prefs_path,
        policy=f"{ARMORM}/base_policy",
        **W.canary_input(),
    output:
        **W.align_outputs("armorm/align/{pair}"),
    log:
        W.log("armorm/align/{pair}", W.RUN),
    benchmark:
        W.benchmark("armorm/align/{pair}", W.RUN),
    threads: W.procs("align")
    resources:
        **W.resources("armorm", "align", nproc=W.procs("align")),
    params:
        flags=W.align_flags("armorm"),


use rule evaluate as armorm_evaluate with:
    input:
        policy=f"{ARMORM}/align/{{pair}}/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        validation_prompts=f"{ARMORM}/prompts/validation.parquet",
        test_prompts=f"{ARMORM}/prompts/test.parquet",
        **A.reward_input(),
    output:
        **W.eval_outputs("armorm/eval", "{pair}", W.RUN),
    log:
        W.log("armorm/eval", "{pair}", W.RUN),
    benchmark:
        W.benchmark("armorm/eval", "{pair}", W.RUN),
    resources:
        **W.resources("armorm", "evaluate"),
    params:
        module="workflow_scripts.armorm.evaluate",
        flags=A.eval_flags,
        settings=settings_of(A.eval_flags),


# The base policy (variant "sft" in tables and figures), once per seed, shared by every training pair.
use rule armorm_evaluate as armorm_evaluate_base with:
    input:
        policy=f"{ARMORM}/base_policy",
        validation_prompts=f"{ARMORM}/prompts/validation.parquet",
        test_prompts=f"{ARMORM}/prompts/test.parquet",
        **A.reward_input(),
    output:
        **W.eval_outputs("armorm/eval", "sft/{seed}"),
    log:
        W.log("armorm/eval", "sft/{seed}"),
    benchmark:
        W.benchmark("armorm/eval", "sft/{seed}"),


# The DRO-REBEL authors' online runner (armorm.online, when armorm.regimes lists it): the same alignment
# template, fed a prompt pool; every iteration samples from pi_t and scores with ArmoRM (a Scorer).
rule armorm_online_prompts:
    input:
        prompts=f"{ARMORM}/prompts/train.parquet",
        policy=f"{ARMORM}/base_policy",
    output:
        f"{ARMORM}/online/prompts.parquet",
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/armorm/online/prompts.log",
    benchmark:
        f"{BENCHMARKS}/armorm/online/prompts.tsv"
    params:
        max_prompt_tokens=lookup(dpath="armorm/completions/max_prompt_tokens", within=config),
    shell:
        "python -m workflow_scripts.armorm.online --prompts {input.prompts:q} --policy {input.policy:q} "
        "--max-prompt-tokens {params.max_prompt_tokens} --out {output:q} > {log:q} 2>&1"


use rule armorm_align as armorm_align_online with:
    input:
        pairs=f"{ARMORM}/online/prompts.parquet",
        policy=f"{ARMORM}/base_policy",
        **A.reward_input(),
        **W.canary_input(),
    output:
        **W.align_outputs("armorm/align/{pair}@online"),
    log:
        W.log("armorm/align/{pair}@online", W.RUN),
    benchmark:
        W.benchmark("armorm/align/{pair}@online", W.RUN),
    resources:
        **W.resources("armorm", "align_online", nproc=W.procs("align")),
    params:
        flags=A.online_flags,
        settings=settings_of(A.online_flags),


use rule armorm_evaluate as armorm_evaluate_online with:
    input:
        policy=f"{ARMORM}/align/{{pair}}@online/{{variant}}/{{radius}}/{{hp}}/{{seed}}/policy",
        validation_prompts=f"{ARMORM}/prompts/validation.parquet",
        test_prompts=f"{ARMORM}/prompts/test.parquet",
        **A.reward_input(),
    output:
        **W.eval_outputs("armorm/eval", "{pair}@online", W.RUN),
    log:
        W.log("armorm/eval", "{pair}@online", W.RUN),
    benchmark:
        W.benchmark("armorm/eval", "{pair}@online", W.RUN),
    params:
        flags=A.online_eval_flags,
        settings=settings_of(A.online_eval_flags),


rule armorm_report:
    input:
        evals=A.eval_csvs(),
        histories=A.histories(),
        scores=A.scale_scores(),
    output:
        spider_pdf=f"{RESULTS}/figures/armorm_spider.pdf",
        spider_png=report(f"{RESULTS}/figures/armorm_spider.png", caption="report/armorm/spider.rst",
                          category="ArmoRM alignment", labels={"figure": "spider", "format": "png"}),
        sweep_pdf=f"{RESULTS}/figures/armorm_alpha_sweep.pdf",
        sweep_png=report(f"{RESULTS}/figures/armorm_alpha_sweep.png", caption="report/armorm/alpha_sweep.rst",
                         category="ArmoRM alignment", labels={"figure": "alpha sweep", "format": "png"}),
        training_pdf=f"{RESULTS}/figures/armorm_training.pdf",
        training_png=report(f"{RESULTS}/figures/armorm_training.png", caption="report/armorm/training.rst",
                            category="ArmoRM alignment", labels={"figure": "training curves", "format": "png"}),
        tables=report(f"{RESULTS}/tables/armorm_objectives.csv", caption="report/armorm/table.rst",
                      category="ArmoRM alignment", labels={"table": "objectives"}),
        tables_text=multiext(f"{RESULTS}/tables/armorm_objectives", ".md", ".tex"),
    localrule: True
    conda:
        "envs/plot.yaml"
    log:
        f"{LOGS}/report/armorm.log",
    benchmark:
        f"{BENCHMARKS}/report/armorm.tsv"
    params:
        flags=A.report_flags(),
        spider=subpath(output.spider_pdf, strip_suffix=".pdf"),
        sweep=subpath(output.sweep_pdf, strip_suffix=".pdf"),
        training=subpath(output.training_pdf, strip_suffix=".pdf"),
        table=output_stem("tables"),
    shell:
        "python -m workflow_scripts.armorm.report --inputs {input.evals:q} --histories {input.histories:q} "
        "--scores {input.scores:q} {params.flags} --spider {params.spider:q} "
        "--alpha-sweep {params.sweep:q} --training {params.training:q} --table {params.table:q} > {log:q} 2>&1"


# The selection the lm-eval leaderboard reads (per pair and variant, the report's choice on VALIDATION): its
# inputs are validation CSVs only, so what the benchmark evaluates cannot depend on the test split.
rule armorm_selection:
    input:
        evals=A.selection_evals(),
        scores=A.scale_scores(),
    output:
        f"{RESULTS}/lm_eval/armorm/selected.json",
    localrule: True
    conda:
        "envs/train.yaml"
    log:
        f"{LOGS}/lm_eval/select_armorm.log",
    benchmark:
        f"{BENCHMARKS}/lm_eval/select_armorm.tsv"
    params:
        flags=A.selection_flags(),
    shell:
        "python -m workflow_scripts.armorm.select --evals {input.evals:q} --scores {input.scores:q} "
        "{params.flags} --out {output:q} > {log:q} 2>&1"
