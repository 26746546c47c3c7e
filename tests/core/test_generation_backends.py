"""The generation backends (workflow_scripts/core/sampling/) and their benchmark.

hf: what the sampler guarantees -- rows in the caller's order, every completion seeded on its own
(the same rows whatever the batch size, the length sorting or the order of the call), stop handling,
the distribution of the draws, the tokens/s log line. vllm: the real engine, run in a separate
environment named by DRO_REBEL_VLLM_PYTHON (vLLM pins its own torch and transformers; see the
docs/generation.md), skipped with the reason when that variable is not set.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from workflow_scripts.core.sampling import (HFSampler, RowSeededSampling, VLLM_MISSING, add_generation_args,
                                            left_pad, make_sampler, sample_seed, sampler_from_args, stop_token_ids)

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = os.environ.get("DRO_REBEL_VLLM_PYTHON")
STOP, PAD = 3, 0


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=48, n_layer=1, n_embd=16, n_head=2, n_positions=64, bos_token_id=1,
                        eos_token_id=STOP, pad_token_id=PAD)
    return GPT2LMHeadModel(config).eval()


def _prompts(count=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, 48, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
            for _ in range(count)]


def _sampler(model, batch_size=3, stops=(STOP,)):
    return HFSampler(model, PAD, stops, device="cpu", batch_size=batch_size)


KW = dict(n=2, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=10, seed=11)


# ----------------------------------------------------------------------------- hf
def test_rows_keep_the_callers_order_and_do_not_depend_on_batching(tiny_model):
    prompts = _prompts()
    rows = _sampler(tiny_model, batch_size=3).sample(prompts, **KW)
    assert len(rows) == len(prompts) * KW["n"] and all(isinstance(t, int) for r in rows for t in r)
    assert rows == _sampler(tiny_model, batch_size=1).sample(prompts, **KW)
    assert rows == _sampler(tiny_model, batch_size=8).sample(prompts, **KW)
    # each prompt alone (its row id given) gives its own two rows: the call's order is the output's order
    alone = _sampler(tiny_model).sample([prompts[5]], row_ids=[5], **KW)
    assert alone == rows[10:12]


def test_a_permuted_call_gives_the_same_rows_permuted(tiny_model):
    prompts = _prompts()
    rows = _sampler(tiny_model).sample(prompts, **KW)
    perm = [3, 7, 0, 5, 1, 6, 2, 4]
    permuted = _sampler(tiny_model, batch_size=5).sample([prompts[i] for i in perm], row_ids=perm, **KW)
    assert permuted == [row for i in perm for row in rows[2 * i:2 * i + 2]]


def test_seed_decides_the_rows(tiny_model):
    prompts = _prompts()
    sampler = _sampler(tiny_model)
    first, again = sampler.sample(prompts, **KW), sampler.sample(prompts, **KW)
    other = sampler.sample(prompts, **{**KW, "seed": 12})
    assert first == again and first != other
    assert any(first[2 * i] != first[2 * i + 1] for i in range(len(prompts)))   # the n samples of a prompt differ


def test_completions_end_at_their_first_stop(tiny_model):
    stops = set(range(4, 30))                         # most of the vocabulary ends a completion
    rows = _sampler(tiny_model, stops=sorted(stops)).sample(_prompts(), **{**KW, "max_new_tokens": 12})
    for row in rows:
        assert row and not any(t in stops for t in row[:-1])
        assert row[-1] in stops or len(row) == 12
    assert any(len(r) < 12 for r in rows)
    # stop ids given to sample() replace the sampler's for that call
    wide = _sampler(tiny_model).sample(_prompts(), stop_ids=sorted(stops), **{**KW, "max_new_tokens": 12})
    assert wide == rows


def test_sampling_stops_at_any_of_several_stop_ids():
    """Llama-3 instruct models end a turn with any of several ids (their generation config lists them, the
    tokenizer adds its EOS): the sampler built for the model stops at each of them and cuts at the first."""
    from transformers import GPT2Config, GPT2LMHeadModel

    class Tok:
        eos_token_id, pad_token_id = 5, PAD

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=6, n_positions=64)).eval()
    model.generation_config.eos_token_id = [3, 4]
    assert stop_token_ids(model, Tok()) == [3, 4, 5]
    sampler = make_sampler("hf", model, Tok(), "cpu", batch_size=4)
    assert sampler.stop_ids == [3, 4, 5]
    rows = sampler.sample([[1, 2]] * 8, n=2, max_new_tokens=40, seed=0)
    for row in rows:
        stops = [i for i, t in enumerate(row) if t in (3, 4, 5)]
        assert not stops or stops[0] == len(row) - 1      # nothing after the first stop id
    assert {row[-1] for row in rows if row} >= {3, 4}      # more than one of them ends a row


def test_left_pad_ends_every_prompt_at_the_same_column():
    ids, mask = left_pad([[1, 2, 3], [4], []], pad_id=PAD)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]

def test_the_models_generation_config_does_not_change_the_sampling(tiny_model):
    prompts = _prompts(4)
    plain = _sampler(tiny_model).sample(prompts, **KW)
    own = tiny_model.generation_config
    try:
        tiny_model.generation_config = type(own)(repetition_penalty=1.5, min_new_tokens=6, do_sample=True, top_k=2)
        assert _sampler(tiny_model).sample(prompts, **KW) == plain
        assert tiny_model.generation_config.repetition_penalty == 1.5          # given back untouched
    finally:
        tiny_model.generation_config = own


def test_greedy_at_temperature_zero_and_empty_call(tiny_model):
    prompts = _prompts(4)
    a = _sampler(tiny_model).sample(prompts, **{**KW, "temperature": 0.0})
    b = _sampler(tiny_model).sample(prompts, **{**KW, "temperature": 0.0, "seed": 99})
    assert a == b and all(a[2 * i] == a[2 * i + 1] for i in range(4))
    assert _sampler(tiny_model).sample([], **KW) == []


def test_tokens_per_second_are_logged(tiny_model, caplog):
    sampler = _sampler(tiny_model)
    with caplog.at_level(logging.INFO, logger="sampling"):
        rows = sampler.sample(_prompts(), desc="unit", **KW)
        sampler.close()
    lines = [r.getMessage() for r in caplog.records if "tokens/s" in r.getMessage()]
    assert lines[0].startswith("hf unit") and f"{sum(map(len, rows))} tokens in" in lines[0]
    assert "job total over 1 call(s)" in lines[-1]


def test_draws_follow_the_warped_distribution():
    """Many rows with the same logits: the token frequencies match softmax(logits / T) after HF's warpers."""
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0, 0.7, 1.5]])
    rows = 40_000
    for top_k, top_p in ((0, 1.0), (3, 1.0), (0, 0.8)):
        warped = logits / 0.7
        if top_k:
            warped = TopKLogitsWarper(top_k)(None, warped)
        if top_p < 1:
            warped = TopPLogitsWarper(top_p)(None, warped)
        expected = torch.softmax(warped, dim=-1)[0]
        process = RowSeededSampling([sample_seed(5, i) for i in range(rows)], 2, temperature=0.7, top_k=top_k,
                                    top_p=top_p, device="cpu")
        scores = process(torch.zeros(rows, 3, dtype=torch.long), logits.expand(rows, -1).clone())
        chosen = scores.argmax(dim=-1)
        assert torch.isfinite(scores).sum() == rows                      # exactly one candidate per row
        freq = torch.bincount(chosen, minlength=8).double() / rows
        assert torch.all(freq[expected == 0] == 0), (top_k, top_p)      # filtered tokens are never drawn
        assert torch.allclose(freq, expected.double(), atol=0.01), (top_k, top_p, freq, expected)


def test_sample_seeds_are_spaced_and_do_not_collide_across_calls():
    seeds = {sample_seed(s, i, k) for s in range(3) for i in range(200) for k in range(10)}
    assert len(seeds) == 3 * 200 * 10                      # evaluation seeds 0, 1, 2 share no sample
    assert sample_seed(7, 3, 5) == sample_seed(7, 3, 0) + 5 and sample_seed(7, 3, 0) % 1024 == 0
    assert 0 <= min(seeds) and max(seeds) < 2**62
    with pytest.raises(ValueError):
        sample_seed(0, 0, 1024)


def test_gpu_batches_follow_the_memory_budget(tiny_model, monkeypatch):
    sampler = _sampler(tiny_model)
    sampler.auto_batch, sampler.max_batch = True, 3
    lengths = [5, 1, 9, 2, 2, 7, 3]
    monkeypatch.setattr(sampler, "_budget", lambda: 10**12)
    batches = sampler.batches(lengths, 2, 10)
    assert [i for b in batches for i in b] == sorted(range(7), key=lambda i: lengths[i])   # sorted, stable
    assert [len(b) for b in batches] == [3, 3, 1]                                         # capped by max_batch
    from workflow_scripts.core.sampling import row_bytes

    cost = lambda batch: len(batch) * 2 * row_bytes(tiny_model.config, torch.float32,  # noqa: E731
                                                    max(lengths[i] for i in batch), 10, 48)
    budget = cost([2, 2])                                  # two of the longest prompt
    monkeypatch.setattr(sampler, "_budget", lambda: budget)
    batches = sampler.batches(lengths, 2, 10)
    assert all(cost(b) <= budget for b in batches)
    assert [len(b) for b in batches] == [3, 2, 2] and batches[-1] == [5, 2]              # the longest two share one


def test_vllm_missing_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(ValueError, match="pip install -e"):
        make_sampler("vllm", str(tmp_path), None, "cpu")
    import argparse

    parser = argparse.ArgumentParser()
    add_generation_args(parser)
    args = parser.parse_args(["--generation-backend", "vllm"])
    with pytest.raises(SystemExit) as stopped:
        sampler_from_args(args, str(tmp_path), None, "cpu", batch_size=4)
    assert stopped.value.code == VLLM_MISSING
    with pytest.raises(ValueError, match="backend must be one of"):
        make_sampler("sglang", str(tmp_path), None, "cpu")


def test_generation_flags_round_trip_through_the_parser():
    import argparse

    import yaml

    from workflow_scripts.core.workflow import Workflow

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["generation"]["vllm"]["max_model_len"] = 4096
    parser = argparse.ArgumentParser()
    add_generation_args(parser)
    args = parser.parse_args(Workflow(config).generation_flags().split())
    g = config["generation"]
    assert args.generation_backend == g["backend"] and args.hf_compile is g["hf"]["compile"]
    assert (args.hf_auto_batch, args.hf_max_batch, args.hf_memory_fraction) == (
        g["hf"]["auto_batch"], g["hf"]["max_batch"], g["hf"]["memory_fraction"])
    assert (args.vllm_gpu_memory_utilization, args.vllm_enforce_eager, args.vllm_max_model_len) == (
        g["vllm"]["gpu_memory_utilization"], g["vllm"]["enforce_eager"], 4096)


# ----------------------------------------------------------------------------- the benchmark's output
def test_bench_prints_one_row_per_backend_with_ratios(monkeypatch, capsys):
    from workflow_scripts.tools import bench_generate

    monkeypatch.delenv(bench_generate.VLLM_PYTHON_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "vllm", None)                     # vLLM absent, whatever is installed
    rows = bench_generate.main(["--shape", "tiny", "--prompts", "4", "--max-new-tokens", "4", "--batch-size", "2",
                                "--device", "cpu", "--backends", "hf-old", "hf", "vllm"])
    out = capsys.readouterr().out
    lines = out[out.index("bench_generate:"):].strip().splitlines()      # (libraries may print before)
    assert lines[0].startswith("bench_generate: tiny (2 layers, hidden 64, vocab 384) on cpu; 4 prompts of")
    assert lines[1].split() == ["backend", "attention", "batch", "start_s", "gen_s", "completions", "tokens",
                                "tokens/s", "vs", "hf-old"]
    assert [line.split()[0] for line in lines[2:4]] == ["hf-old", "hf"]
    assert lines[2].split()[-1] == "1.00x" and lines[3].split()[-1].endswith("x")
    assert lines[4].startswith("vllm: skipped (vLLM not installed here and DRO_REBEL_VLLM_PYTHON not set)")
    assert [r["completions"] for r in rows] == [8, 8]


# ----------------------------------------------------------------------------- vllm, the real engine
VLLM_SCRIPT = textwrap.dedent("""
    import json, logging, sys
    from transformers import AutoTokenizer
    from workflow_scripts.core.sampling import make_sampler

    def main():
        logging.basicConfig(level=logging.INFO)
        model_dir, out = sys.argv[1], sys.argv[2]
        tok = AutoTokenizer.from_pretrained(model_dir)
        sampler = make_sampler("vllm", model_dir, tok, "cpu", enforce_eager=True, max_model_len=128,
                               gpu_memory_utilization=0.3)
        prompts = json.loads(sys.argv[3])
        kw = dict(n=2, temperature=1.0, top_p=0.95, top_k=0, max_new_tokens=12, seed=11)
        full = sampler.sample(prompts, **kw)
        alone = sampler.sample([prompts[5]], row_ids=[5], **kw)
        perm = [3, 7, 0, 5, 1, 6, 2, 4]
        permuted = sampler.sample([prompts[i] for i in perm], row_ids=perm, **kw)
        again = sampler.sample(prompts, **kw)
        other_seed = sampler.sample(prompts, **{**kw, "seed": 12})
        stop = full[0][2]
        stopped = sampler.sample(prompts[:1], stop_ids=[stop], **kw)
        json.dump({"stop_ids": sampler.stop_ids, "full": full, "alone": alone, "permuted": permuted, "again": again,
                   "other_seed": other_seed, "stop": stop, "stopped": stopped}, open(out, "w"))
        sampler.close()

    if __name__ == "__main__":
        main()
""")


@pytest.mark.skipif(not VLLM_PYTHON, reason="vLLM environment absent: set DRO_REBEL_VLLM_PYTHON to the python of "
                                            "an environment with vLLM (docs/generation.md)")
def test_vllm_engine_rows_are_seeded_per_prompt(tmp_path):
    from workflow_scripts.tools.bench_generate import build_model_dir

    model_dir = build_model_dir("tiny", tmp_path / "tiny-llama")
    prompts = [[(7 * i + 3 * k) % 250 + 10 for k in range(2 + i % 5)] for i in range(8)]
    script = tmp_path / "run_vllm.py"
    script.write_text(VLLM_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    done = subprocess.run([VLLM_PYTHON, str(script), str(model_dir), str(tmp_path / "out.json"), json.dumps(prompts)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads((tmp_path / "out.json").read_text())
    full = r["full"]
    assert r["stop_ids"] == [2]                                           # the tokenizer's </s>
    assert len(full) == 16 and all(isinstance(t, int) for row in full for t in row)
    assert all(0 < len(row) <= 12 and not any(t in r["stop_ids"] for t in row[:-1]) for row in full)
    assert r["alone"] == full[10:12]                                       # batch of 1 = its rows in a batch of 8
    perm = [3, 7, 0, 5, 1, 6, 2, 4]
    assert r["permuted"] == [row for i in perm for row in full[2 * i:2 * i + 2]]   # another order, same rows
    assert r["again"] == full and r["other_seed"] != full
    assert any(full[2 * i] != full[2 * i + 1] for i in range(8))          # n samples of a prompt differ
    stop_at = full[0].index(r["stop"])
    assert r["stopped"][0] == full[0][:stop_at + 1]                        # cut after the first stop id, kept
    assert "vllm" in done.stderr and "tokens/s" in done.stderr
