"""The metrics benchmark runs (--quick, tiny sizes) and writes its JSON: the script cannot
rot unnoticed. The full-size run is for a quiet machine."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_json(tmp_path):
    pytest.importorskip("prdc")
    out = tmp_path / "metrics.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_metrics.py"),
                           "--quick", "--out", str(out)], check=False, capture_output=True,
                          text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "precision/recall, k=3" in proc.stdout and "Frechet distance" in proc.stdout
    result = json.loads(out.read_text())
    assert result["quick"] is True
    assert result["precision_recall"]["equal"] is True
    assert result["frechet_distance"]["relative_difference"] < 1e-9
    for key in ("cpu", "cores", "load_avg_1m_start", "load_avg_1m_end", "other_load_at_start"):
        assert key in result["machine"]
    for part in ("jax", "prdc"):
        assert result["precision_recall"][part]["seconds"] > 0
    assert not (ROOT / "benchmarks" / "results" / "metrics.json.tmp").exists()
