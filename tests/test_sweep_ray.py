"""The Ray backend of ``initstats sweep``: chunks as Ray tasks on a local Ray (2 CPUs), the same rows.

Skipped when Ray is not installed (``pip install -e ".[ray]"``; the README's test command installs it).
"""

from __future__ import annotations

import pandas as pd
import pytest

from initstats.sweep import parse_sweep, run_sweep

from .test_sweep import ADAPTIVE, FIXED

ray = pytest.importorskip("ray")


def test_ray_gives_the_rows_of_the_local_backend(tmp_path):
    sweep = parse_sweep({"seed": 5, "case": [FIXED, ADAPTIVE]})
    local = run_sweep(sweep, tmp_path / "local")
    on_ray = run_sweep(sweep, tmp_path / "ray", backend="ray", workers=2)
    assert not ray.is_initialized()  # the Ray it started is shut down
    pd.testing.assert_frame_equal(on_ray.rows(), local.rows(), check_exact=True)
    pd.testing.assert_frame_equal(on_ray.claims_frame(), local.claims_frame(), check_exact=True)
    # a sweep started on one backend resumes on the other: the store does not care who measured
    half = parse_sweep({"seed": 5, "case": [FIXED]})
    run_sweep(half, tmp_path / "mixed", backend="ray", workers=2)
    mixed = run_sweep(sweep, tmp_path / "mixed")
    pd.testing.assert_frame_equal(mixed.rows(), local.rows(), check_exact=True)
    assert 0 < mixed.chunks_run < local.chunks_run
