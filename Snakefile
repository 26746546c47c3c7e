# DRO-REBEL reproduction: SFT -> reward model -> alignment (variant x radius x seed) -> evaluation -> figures.
# This file only includes the rule files and declares the targets; helpers live in rules/common.smk.
#   snakemake --cores 2 --configfile presets/mini.yaml all     # mini preset, offline, CPU
#   snakemake --profile slurm all                              # paper preset on a cluster (see README)
from snakemake.utils import min_version

min_version("9.0")


# The paper preset, found next to this Snakefile (also under --directory); presets given with
# --configfile are merged on top of it.
configfile: f"{workflow.basedir}/config.yaml"


include: "rules/common.smk"
include: "rules/canary.smk"
include: "rules/data.smk"
include: "rules/sft.smk"
include: "rules/reward_model.smk"
include: "rules/pairs.smk"
include: "rules/align.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/armorm.smk"
include: "rules/radius_coverage.smk"


rule all:
    default_target: True
    input:
        emotion_report_outputs(),
        armorm_report_outputs(),
        radius_coverage_outputs(),


# One target per experiment (each empty when the experiment is disabled).
rule emotion:
    input:
        emotion_report_outputs(),


rule armorm:
    input:
        armorm_report_outputs(),


rule radius_coverage:
    input:
        radius_coverage_outputs(),
