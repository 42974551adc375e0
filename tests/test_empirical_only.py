"""``verify --module ... --empirical-only``: the user's module measured as it is (torch.func over fresh
parameters), checked against the spec engine on models both can run, and refused where it cannot apply."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn
from typer.testing import CliRunner

from initstats import from_module
from initstats.cli import app
from initstats.empirical.direct import measure_module
from initstats.empirical.measure import MeasureOptions, measure

from .console import assert_bad_input
from .models import projection_block

TANH = """from torch import nn
def tanh_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))
def not_logits():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
"""


def _agree(a, b, stat="grad_logit_l2_sq", z=4.0):
    (ma, sa), (mb, sb) = a.mean_se(stat), b.mean_se(stat)
    return abs(ma - mb) <= z * float(np.hypot(sa, sb)), (ma, sa, mb, sb)


def test_direct_measurement_agrees_with_the_spec_engine():
    """Two independent implementations of the same networks: the traced spec's grouped convolutions and
    torch.func over the user's module (projection shortcut, ReLU after the sum; then train-mode BatchNorm)."""
    model = projection_block()
    opt = MeasureOptions(nets=2000, seed=1, device="cpu")
    ok, numbers = _agree(measure_module(model, (3, 8, 8), opt), measure(from_module(model, px=8), opt))
    assert ok, numbers
    bn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5))
    opt = MeasureOptions(nets=1000, seed=2, device="cpu", inputs_per_net=8)
    ok, numbers = _agree(measure_module(bn, (3, 6, 6), opt), measure(from_module(bn, px=6), opt))
    assert ok, numbers


def test_a_wrong_initialisation_is_detected():
    """The same comparison fails when the direct path draws LeCun weights instead of He: the check can fail."""
    model = projection_block()
    he = measure(from_module(model, px=8), MeasureOptions(nets=500, seed=1, device="cpu"))
    lecun = measure_module(model, (3, 8, 8), MeasureOptions(nets=500, seed=1, device="cpu", init="lecun"))
    assert not _agree(he, lecun)[0]


def test_same_seed_same_numbers():
    model = nn.Sequential(nn.Linear(5, 16), nn.GELU(), nn.Linear(16, 3))
    a, b = (measure_module(model, (5,), MeasureOptions(nets=40, seed=7, device="cpu")) for _ in range(2))
    assert np.array_equal(a.per_net["grad_logit_l2_sq"], b.per_net["grad_logit_l2_sq"])
    assert model[0].weight.requires_grad and torch.isfinite(model[0].weight).all()   # the user's model untouched


def test_cli_measures_what_the_tracer_refuses(tmp_path):
    src = tmp_path / "user_models.py"
    src.write_text(TANH)
    runner = CliRunner()
    refused = runner.invoke(app, ["verify", "--module", f"{src}:tanh_net", "--dims", "8", "--nets", "50"])
    assert refused.exit_code == 2 and "Tanh" in refused.output and "--empirical-only" in refused.output
    res = runner.invoke(app, ["verify", "--module", f"{src}:tanh_net", "--dims", "8,16", "--nets", "100",
                              "--empirical-only", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {c["verdict"] for c in data["claims"]} == {"not-covered"}
    assert {r["px"] for r in data["rows"]} == {8, 16} and all("predicted" not in r for r in data["rows"])
    out = tmp_path / "out"
    assert_bad_input(runner.invoke(app, ["verify", "--module", f"{src}:not_logits", "--dims", "8", "--nets", "10",
                                         "--empirical-only", "--out", str(out)]), "expected logits of shape")
    assert not out.exists()
    assert_bad_input(runner.invoke(app, ["verify", "--arch", "fc", "--dims", "4", "--empirical-only"]),
                     "--empirical-only is for --module")
    assert_bad_input(runner.invoke(app, ["verify", "--module", f"{src}:tanh_net", "--dims", "8", "--empirical-only",
                                         "--infinite-width", "2"]), "--infinite-width needs a spec")
