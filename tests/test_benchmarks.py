"""Every benchmark script runs in its --quick mode (so none can rot) and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_listed_here():
    assert set(BENCHMARKS) <= set(EXPECTED_KEYS), sorted(set(BENCHMARKS) - set(EXPECTED_KEYS))


EXPECTED_KEYS = {
    "bench_biggan.py": {"machine", "awareness", "images", "biggan", "quick"},
    "bench_awareness_kernel.py": {"target", "machine", "accuracy", "timings"},
    "bench_toyworld.py": {"benchmark", "rows", "machine"},
    "bench_metrics.py": None,  # its own test runs it (tests/test_bench_metrics.py)
    "bench_response.py": {"machine", "exact", "torch", "first_order", "spearman", "quick"},
    "bench_parallel.py": {"machine", "awareness", "sweep", "identical", "overhead_one_device",
                          "quick"},
    "bench_train_step.py": {"machine", "quick", "steps", "configs"},
}
QUICK_ARGS = {"bench_awareness_kernel.py": ["--latents", "64", "--reps", "1", "--chunks", "64"]}


@pytest.mark.parametrize("script", [b for b in BENCHMARKS if EXPECTED_KEYS.get(b)])
def test_quick_mode_runs(script, tmp_path):
    if script == "bench_biggan.py":
        pytest.importorskip("torch")
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out),
           *QUICK_ARGS.get(script, [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert EXPECTED_KEYS[script] <= set(result)
