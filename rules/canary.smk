# The GPU canary: one short job, launched exactly like an alignment job (same launcher, same
# resources under the SLURM profile), that records the devices, SLURM allocation and world size
# each rank sees, and fails if they disagree. With `launch.canary: true` (set by
# profiles/slurm) every alignment job depends on it, so a misconfigured allocation stops the
# grid in minutes rather than after hours.


rule gpu_canary:
    output:
        canary_path(),
    conda:
        "envs/dro-rebel.yaml"
    log:
        f"{LOGS}/canary/gpu_job.log",
    benchmark:
        f"{BENCHMARKS}/canary/gpu_job.tsv"
    threads: 2
    resources:
        gpu=0,
        nproc=2,
    shell:
        LAUNCH + " workflow_scripts.canary --out {output:q} --expected-gpus {resources.gpu} > {log:q} 2>&1"
