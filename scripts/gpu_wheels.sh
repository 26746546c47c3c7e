#!/usr/bin/env bash
# Download (or build) exactly the wheels scripts/gpu_check.sh needs on an offline GPU node: CPython 3.12,
# x86_64, torch / transformers / pandas / pyarrow / seaborn / tokenizers / safetensors preinstalled, but no
# deepspeed, snakemake, datasets, jsonschema or lm-eval, and no package index. Run it on a machine with PyPI:
#
#   scripts/gpu_wheels.sh [DEST=.whl]          # then carry DEST with the working tree (64 MiB in all)
#
# How: the sdist-only packages are built as pure-Python wheels (deepspeed with DS_BUILD_OPS=0: no CUDA ops
# compiled, torch's optimizers are used instead of FusedAdam); pip then resolves our needs for the node's
# platform against scripts/gpu_node_constraints.txt (what the node has) and downloads, without
# dependencies, every resolved package the node does not already have (NODE_HAS below). Fails if the
# total exceeds BUDGET_MIB (default 40: the working tree must fit too).
set -euo pipefail
DEST=${1:-.whl}
BUDGET_MIB=${BUDGET_MIB:-40}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
INDEX=(--index-url https://pypi.org/simple)
PLATFORM=(--python-version 3.12 --implementation cp --abi cp312 --platform manylinux_2_28_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --only-binary=:all:)
NEEDS=(deepspeed==0.19.8 snakemake==9.27.1 "jsonschema>=4.20" datasets "lm-eval[hf,ifeval,math]==0.4.13")
# sdist-only on PyPI: built here as pure-Python wheels
SDIST_ONLY=(deepspeed==0.19.8 connection_pool==0.0.3 sqlitedict==2.1.0 word2number==1.1 langdetect==1.0.9)
# installed on the node (KINDS.md's package list): never carried
NODE_HAS="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi
charset-normalizer click cloudpickle colorama contourpy cycler filelock fonttools frozenlist fsspec h11 hf-xet
httpcore httpx huggingface-hub idna jinja2 joblib kiwisolver lxml markdown-it-py markupsafe matplotlib mdurl
mpmath multidict networkx numpy nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx packaging pandas peft pillow pip
portalocker propcache protobuf psutil pyarrow pygments pyparsing python-dateutil pyyaml regex requests rich
sacrebleu safetensors scikit-learn scipy seaborn setuptools shellingham six sympy tabulate threadpoolctl
tokenizers torch tqdm transformers triton typer typing-extensions urllib3 wheel xxhash yarl einops msgpack
py-cpuinfo ninja pydantic pydantic-core annotated-types typing-inspection pytz tzdata"

mkdir -p "$DEST"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for pkg in "${SDIST_ONLY[@]}"; do
  DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-cache-dir "${INDEX[@]}" -w "$DEST" "$pkg"
done
# The node's torch (a CUDA 13 build) is not on PyPI's default index: a metadata-only stand-in of that
# version lets pip resolve everything that depends on torch without fetching a CUDA stack.
mkdir -p "$work/stub"
"$PY" - "$work/stub" "$(sed -n 's/^torch==//p' "${NODE_CONSTRAINTS:-$HERE/gpu_node_constraints.txt}")" <<'PY'
import sys, zipfile
out, version = sys.argv[1], sys.argv[2] + "+node"
info = f"torch-{version}.dist-info"
with zipfile.ZipFile(f"{out}/torch-{version}-py3-none-any.whl", "w") as z:
    z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
    z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: gpu_wheels.sh\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{info}/RECORD", "")
PY
"$PY" -m pip install -q --dry-run --ignore-installed --report "$work/report.json" --target "$work/t" "${INDEX[@]}" \
  "${PLATFORM[@]}" --find-links "$DEST" --find-links "$work/stub" -c "${NODE_CONSTRAINTS:-$HERE/gpu_node_constraints.txt}" \
  "${NEEDS[@]}"
"$PY" - "$work/report.json" "$NODE_HAS" > "$work/carry.txt" <<'PY'
import json, sys
has = set(sys.argv[2].split())
for item in json.load(open(sys.argv[1]))["install"]:
    name = item["metadata"]["name"].lower().replace("_", "-")
    if name not in has and not name.startswith("nvidia-"):
        print(f"{name}=={item['metadata']['version']}")
PY
echo "carrying $(wc -l < "$work/carry.txt") packages: $(tr '\n' ' ' < "$work/carry.txt")"
"$PY" -m pip download -q --no-deps "${INDEX[@]}" "${PLATFORM[@]}" --find-links "$DEST" -d "$DEST" -r "$work/carry.txt"
# pulp (a snakemake dependency) ships CBC binaries for six platforms: keep linux x86_64 only
for whl in "$DEST"/pulp-*.whl; do
  [ -e "$whl" ] || continue
  "$PY" - "$whl" <<'PY'
import os, sys, zipfile
src = sys.argv[1]; tmp = src + ".tmp"
drop = lambda n: n.startswith("pulp/solverdir/cbc/") and not n.startswith("pulp/solverdir/cbc/linux/i64/")
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zo:
    for info in zi.infolist():
        if drop(info.filename):
            continue
        data = zi.read(info.filename)
        if info.filename.endswith(".dist-info/RECORD"):
            data = "".join(l for l in data.decode().splitlines(True) if not drop(l.split(",")[0])).encode()
        zo.writestr(info, data)
os.replace(tmp, src)
PY
done
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $((total / 1048576)) MiB in $DEST"
if [ "$total" -gt $((BUDGET_MIB * 1048576)) ]; then
  echo "gpu_wheels.sh: $((total / 1048576)) MiB exceeds BUDGET_MIB=$BUDGET_MIB" >&2; exit 1
fi
