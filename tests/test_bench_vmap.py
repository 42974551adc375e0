"""``benchmarks/bench_vmap.py --quick`` runs, and what it writes is the table it describes.

The timings cannot be checked, but what is derived from them can: the rows are the promised cases,
the ratios are the arithmetic of the printed rates, the vmap path and the engine timed the same
networks, the vmap path gives autograd's gradients for the same weights and samples the engine's
law.  The vmap ensemble itself is checked to draw He weights and zero biases, the same-weights check
to catch a wrong gradient, and the *engine NCHW* diagnostic to still switch the engine's layout.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from . import models
from .markdown import tables
from .test_benchmarks import agrees, num, run_quick, section, table_with

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _vmap import VmapEnsemble, check_same_weights, engine_layout_switch, nchw_engine  # noqa: E402

CASES = (("`mlp`", 20), ("`conv1d_net` 16 px", 2 * 16), ("`resnet18_layout` 8 px", 3 * 8 * 8),
         ("`vgg_like` 8 px", 3 * 8 * 8))
COLUMNS = ("case", "traced layers", "d", "N (nets per round)", "chunk", "engine nets/s", "vmap nets/s",
           "naive nets/s", "vmap / engine", "engine / naive", "vmap / naive", "engine NCHW nets/s",
           "vmap / engine NCHW", "background (cores)")


@pytest.fixture(scope="module")
def vmap_run(tmp_path_factory):
    return run_quick("bench_vmap.py", tmp_path_factory.mktemp("bench"), "--threads", "1")


def test_bench_vmap_quick_writes_a_consistent_table(vmap_run):
    doc, stdout = vmap_run
    md = section(doc, "module-vmap")
    assert md == stdout.strip(), "the file holds something else than the table printed"
    assert "`python benchmarks/bench_vmap.py --threads 1 --quick`" in md
    assert "1 torch thread." in md

    main = table_with(md, "vmap nets/s")
    assert tuple(main[0]) == COLUMNS
    assert [(r["case"], num(r["d"])) for r in main] == list(CASES)
    for r in main:
        assert num(r["N (nets per round)"]) == 16 and 0 < num(r["chunk"]) <= 16, r
        e, e2, v, n = (num(r[f"{m} nets/s"]) for m in ("engine", "engine NCHW", "vmap", "naive"))
        assert min(e, e2, v, n) > 0, r
        for column, ratio in (("vmap / engine", v / e), ("engine / naive", e / n), ("vmap / naive", v / n),
                              ("vmap / engine NCHW", v / e2)):
            assert agrees(num(r[column]), ratio, abs_=0.006), (column, r)

    check = table_with(md, "vmap / engine per round")
    assert [r["case"] for r in check] == [c for c, _ in CASES]
    for r, m in zip(check, main):
        assert r["vmap / engine per round"] == m["vmap / engine"], r          # one round at --quick
        assert num(r["engine nets timed"]) == num(r["engine NCHW nets timed"]) == num(r["vmap nets timed"]) == 16, r
        assert num(r["naive nets timed"]) >= 2, r
        assert float(r["vmap vs autograd, same weights (max rel. diff.)"]) < 1e-4, r
        for column in ("vmap − engine / SE", "naive − engine / SE", "∇L: vmap − engine / SE"):
            assert 0 <= num(r[column]) < 5, (column, r)
        for column in ("E‖∇f₀‖² engine", "E‖∇f₀‖² vmap", "E‖∇L‖² vmap"):
            mean, se = (num(x) for x in r[column].split(" ± "))
            assert mean > 0 and se > 0, (column, r)
    assert "**Choice.** Not assessed at `--quick` sizes." in md
    assert "`torch.channels_last` aliased to `torch.contiguous_format`" in md
    assert len(tables(md)) == 2


def test_vmap_ensemble_draws_he_weights_and_zero_biases():
    model = models.conv1d_net()                     # conv1 with a bias, conv2 without, a dense head
    ens = VmapEnsemble(model, (2, 16), 3, torch.device("cpu"), seed=0)
    params, x, labels = ens.draw(4000)
    assert set(params) == {n for n, _ in model.named_parameters()}
    for name, p in params.items():
        assert p.shape == (4000, *dict(model.named_parameters())[name].shape)
        if name.endswith("bias"):
            assert not p.any(), name
        else:
            fan_in = p[0, 0].numel()
            assert p.var().item() == pytest.approx(2 / fan_in, rel=0.05), name
    assert x.shape == (4000, 2, 16) and labels.min() >= 0 and labels.max() < 3


def test_same_weights_check_catches_a_wrong_gradient():
    ens = VmapEnsemble(models.vgg_like(8), (3, 8, 8), 10, torch.device("cpu"), seed=1)
    drawn = ens.draw(3)
    result = ens(*drawn)
    assert check_same_weights(ens, *drawn, result) < 1e-4
    wrong = result.clone()
    wrong[1, 0] *= 1.01
    assert check_same_weights(ens, *drawn, wrong) == pytest.approx(0.01, rel=1e-3)
    assert math.isfinite(check_same_weights(ens, *drawn, result, nets=3))


def test_the_nchw_diagnostic_still_reaches_the_engine():
    """*engine NCHW* is the engine without its channels-last conversion only while ``ArchEnsemble`` makes one."""
    assert engine_layout_switch()
    saved = torch.channels_last
    with nchw_engine():
        assert torch.channels_last is torch.contiguous_format
    assert torch.channels_last is saved
