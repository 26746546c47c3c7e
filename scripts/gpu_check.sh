#!/usr/bin/env bash
# One command for a machine with one NVIDIA GPU: the paper's shapes end to end, and the step's speed.
#
#   scripts/gpu_check.sh REPORT_DIR [WHEELS_DIR=.whl]
#
# 1. environment: the GPU must be visible to torch (else exit 2 at once); deepspeed, snakemake, jsonschema,
#    datasets and lm-eval are installed OFFLINE from WHEELS_DIR when missing (scripts/gpu_wheels.sh makes it);
# 2. bench_align at Llama-3.2-1B, 2048 tokens (1024 prompt + 1024 response), micro-batch 4 as the paper
#    preset, every variant: tokens/s, step time, MFU, peak memory, ratio to the base;
# 3. bench_generate at Llama-3.2-1B, 1024 new tokens: the hf path before (hf-old) and after (hf);
# 4. the paper-shapes preset (presets/paper-shapes.yaml) end to end through Snakemake, through figures;
# 5. REPORT_DIR/report.md: versions, GPU, each stage's wall time, per-job wall time and peak memory, the
#    benchmark tables, the step-0 log-ratio of every alignment job, and every job that failed.
#
# Every stage runs under a deadline (DEADLINE_S, default 540 s = 9 minutes, all stages together): the
# script never hangs; it exits non-zero if any stage failed or ran out of time, and says which.
set -uo pipefail
REPORT=${1:?usage: scripts/gpu_check.sh REPORT_DIR [WHEELS_DIR]}
WHEELS=${2:-.whl}
DEADLINE_S=${DEADLINE_S:-540}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
START=$(date +%s)
mkdir -p "$REPORT"
REPORT=$(cd "$REPORT" && pwd)
WORK=${WORK:-/tmp/gpu_check_work}
rm -rf "$WORK" && mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
FAILED=()

left() { echo $(( DEADLINE_S - ($(date +%s) - START) )); }
stage() {  # stage NAME BUDGET_S COMMAND...: runs under min(BUDGET_S, time left), logs to REPORT/NAME.log
  local name=$1 budget=$2; shift 2
  local limit; limit=$(left); (( budget < limit )) && limit=$budget
  if (( limit < 10 )); then echo "| $name | skipped: out of time |" >> "$WORK/stages.md"; FAILED+=("$name (no time left)"); return 1; fi
  local t0; t0=$(date +%s)
  timeout --kill-after=15 "$limit" "$@" > "$REPORT/$name.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - t0 ))
  if (( rc == 0 )); then echo "| $name | ok | ${took}s |" >> "$WORK/stages.md"
  else
    (( rc == 124 || rc == 137 )) && FAILED+=("$name (timed out after ${limit}s)") || FAILED+=("$name (exit $rc)")
    echo "| $name | FAILED (exit $rc) | ${took}s |" >> "$WORK/stages.md"
  fi
  return $rc
}

# ------------------------------------------------------------------ 1. environment
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check.sh: torch sees no CUDA GPU here; this check needs one (nvidia-smi: $(nvidia-smi -L 2>&1 | head -1))" >&2
  exit 2
fi
echo "| stage | result | wall |" > "$WORK/stages.md"; echo "|---|---|---|" >> "$WORK/stages.md"
install_missing() {
  local need=(deepspeed==0.19.8 snakemake==9.27.1 "jsonschema>=4.20" datasets "lm-eval[hf,ifeval,math]==0.4.13")
  if "$PY" -c "import deepspeed, snakemake, jsonschema, datasets, lm_eval" 2>/dev/null; then echo "all present"; return 0; fi
  [ -d "$WHEELS" ] || { echo "missing packages and no wheels in $WHEELS (run scripts/gpu_wheels.sh where PyPI is reachable)"; return 1; }
  # resolve against what the node has: a version conflict is reported here, by name ...
  "$PY" -m pip install --no-index --find-links "$WHEELS" "${need[@]}" && return 0
  # ... then everything carried is installed anyway, so the rest of the check still runs
  echo "WARNING: pip could not satisfy every requirement offline (above); installing the carried wheels without deps"
  "$PY" -m pip install --no-index --no-deps "$WHEELS"/*.whl
}
stage install 120 install_missing
"$PY" - > "$WORK/versions.md" 2>&1 <<'PY'
import importlib.metadata as md, platform, torch
print(f"- Python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"GPU {torch.cuda.get_device_name(0)} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB), "
      f"bf16 {torch.cuda.is_bf16_supported()}")
for name in ("transformers", "deepspeed", "snakemake", "datasets", "lm_eval", "tokenizers", "pandas", "pyarrow"):
    try:
        print(f"- {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"- {name}: NOT INSTALLED")
PY
"$PY" -m pip freeze > "$REPORT/pip_freeze.txt" 2>/dev/null
nvidia-smi > "$REPORT/nvidia-smi.txt" 2>&1
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$WORK/gpu_mem.csv" 2>/dev/null &
SMI=$!
trap 'kill $SMI 2>/dev/null' EXIT

# ------------------------------------------------------------------ 2-3. the benchmarks
stage bench_align 200 "$PY" -m workflow_scripts.tools.bench_align --shape llama-3.2-1b --seq-len 2048 --prompt-len 1024 \
  --micro-batch 4 --global-batch 8 --steps 2 --warmup 1 --json "$REPORT/bench_align.json"
stage bench_generate 90 "$PY" -m workflow_scripts.tools.bench_generate --shape llama-1b --prompts 32 --prompt-len 256 \
  --max-new-tokens 1024 --backends hf-old hf --repeats 1

# ------------------------------------------------------------------ 4. the paper shapes through Snakemake
# Jobs share the one GPU: a `gpu_mem` resource (GiB, estimates of each rule's peak) keeps them within it.
MEM=(armorm_align=45 armorm_evaluate=25 armorm_evaluate_base=25 armorm_scores=25 armorm_completions=15
     armorm_reward_model=30 hh_sft=40 hh_align=35 hh_reward_model=20 hh_completions=15 hh_evaluate=15
     hh_evaluate_sft=15 emotion_sft=8 emotion_reward_model=8 emotion_align=8 emotion_pairs=6 emotion_evaluate=6
     emotion_evaluate_sft=6 lm_eval_armorm=10 lm_eval_armorm_base=10 lm_eval_hh=10 lm_eval_hh_sft=10)
SET=(); for m in "${MEM[@]}"; do SET+=("${m%%=*}:gpu_mem=${m##*=}"); done
stage paper_shapes 480 "$PY" -m snakemake all --configfile presets/paper-shapes.yaml --directory "$WORK/run" \
  --snakefile "$REPO/Snakefile" --cores 16 --jobs 6 --resources gpu_mem=125 --set-resources "${SET[@]}" \
  --keep-going --latency-wait 5
kill $SMI 2>/dev/null

# ------------------------------------------------------------------ 5. the report
"$PY" -m workflow_scripts.tools.gpu_report --work "$WORK" --report "$REPORT" --preset paper-shapes \
  --failed "${FAILED[@]+"${FAILED[@]}"}" > "$REPORT/report.md"
cat "$REPORT/report.md"
if (( ${#FAILED[@]} )); then echo "gpu_check.sh: FAILED: ${FAILED[*]}" >&2; exit 1; fi
echo "gpu_check.sh: all stages passed in $(( $(date +%s) - START ))s"
