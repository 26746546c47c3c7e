# DRO-REBEL reproduction: SFT -> reward models -> alignment (variant x radius x eta/beta x seed) -> evaluation ->
# figures and tables, for each experiment. This file only includes the rule files and declares the targets;
# shared helpers live in rules/common.smk, the alignment / evaluation templates in rules/core.smk.
#   snakemake --cores 2 --configfile presets/mini.yaml all     # mini preset, offline, CPU
#   snakemake --profile slurm all                              # paper preset on a cluster (see README)
from snakemake.utils import min_version

min_version("9.0")


# The paper preset, found next to this Snakefile (also under --directory); presets given with
# --configfile are merged on top of it.
configfile: f"{workflow.basedir}/config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/core.smk"
include: "rules/emotion.smk"
include: "rules/armorm.smk"
include: "rules/hh.smk"
include: "rules/radius_coverage.smk"
include: "rules/lm_eval.smk"
include: "rules/plan.smk"


rule all:
    default_target: True
    input:
        E.outputs(),
        A.outputs(),
        H.outputs(),
        RC.outputs(),
        L.outputs(),


# One target per experiment (each empty when the experiment is disabled).
rule emotion:
    input:
        E.outputs(),


rule armorm:
    input:
        A.outputs(),


rule hh:
    input:
        H.outputs(),


rule radius_coverage:
    input:
        RC.outputs(),


rule lm_eval_leaderboard:
    input:
        L.outputs(),
