"""The benchmark scripts run (smoke test with --quick sizes; the figures come from full runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script,extra", [("bench_exact.py", []), ("bench_empirical.py", ["--max-wait", "5"])])
def test_benchmark_runs_quick(script, extra, tmp_path):
    doc = tmp_path / "benchmarks.md"
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--doc", str(doc), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = doc.read_text()
    assert "<!-- bench:" in text and "|---" in text
