"""The grid planner: GPU-hours, wall time and memory fit of any config's grid, before anything runs.

    python -m workflow_scripts.tools.plan --configfile presets/mini.yaml --gpu cpu --gpus-available 2
    python -m workflow_scripts.tools.plan --gpu h100 --gpus-available 64            # the paper preset
    python -m workflow_scripts.tools.plan --gpu cpu --configfile presets/mini.yaml extra.yaml \\
        --calibrate /tmp/pilot --calibrate-config presets/mini.yaml                  # calibrated on a pilot run

``snakemake -n`` counts jobs; a researcher budgeting a grid needs hours. The planner builds Snakemake's
own DAG for the config and targets (:mod:`.dag`), gives every job its rule family's work model in tokens
per phase (:mod:`.work`), fed by the job's experiment (``workflow_scripts/<experiment>/plan.py``,
:mod:`.inputs`, :mod:`.sizes`), prices the tokens with the versioned throughput
table (:mod:`.throughput`, ``workflow_scripts/tools/throughput.yaml``) on the GPUs each job asks the cluster for
(:mod:`.resources`), checks each job's peak memory against the GPU (:mod:`.memory`), schedules the DAG
on the cluster size (:mod:`.schedule`), and optionally recalibrates every rule on the benchmark files of
a finished pilot run (:mod:`.calibrate`). docs/planning.md.
"""
