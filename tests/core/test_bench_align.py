"""bench_align's output format on CPU at a tiny shape (its speed is not tested: it prints figures)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_align_prints_one_row_per_variant_with_mfu_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "workflow_scripts.tools.bench_align", "--variants", "dpo", "wdpo", "--steps", "1",
           "--warmup", "0", "--seq-len", "16", "--prompt-len", "8", "--global-batch", "4", "--micro-batch", "2",
           "--peak-tflops", "0.5", "--json", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out_lines = result.stdout.strip().splitlines()          # DeepSpeed logs to stdout too: find the table
    lines = out_lines[next(i for i, line in enumerate(out_lines) if line.startswith("bench_align: ")):]
    assert lines[0].startswith("bench_align: cpu; shape tiny") and "128 tokens/step" in lines[0]
    assert lines[1].split() == ["variant", "attention", "step_s", "tokens/s", "MFU", "peak_GiB", "vs_base"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"dpo", "wdpo"}
    assert rows["dpo"][1] == "sdpa" and rows["wdpo"][1] == "eager"          # the production kernels
    assert rows["dpo"][6] == "1.00x" and re.fullmatch(r"\d+\.\d\dx", rows["wdpo"][6])
    data = json.loads(out.read_text())
    for r in data["results"]:
        step = r["step_s"]
        assert float(rows[r["variant"]][2]) == round(step, 4)
        assert float(rows[r["variant"]][3]) == round(data["counts"]["tokens_per_step"] / step, 1)
        mfu = data["counts"]["model_flops_per_step"] / step / 0.5e12
        assert rows[r["variant"]][4] == f"{mfu:.1%}"
    # model FLOPs of the tiny Llama: 2 x 4 sequences of 16 tokens, 8 of them scored by the head
    c = data["counts"]
    expected = 8 * (6 * c["trunk_parameters"] * 16 + 6 * c["hidden"] * c["vocab"] * 8 + 12 * c["layers"] * c["hidden"] * 16 ** 2)
    assert c["model_flops_per_step"] == expected
