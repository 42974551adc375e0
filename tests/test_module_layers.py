"""Grouped convolutions, channel concatenation and evaluation-mode BatchNorm, through the one spec.

Each construct is checked the same way: the spec validates it, the compressed exact engine equals
the neuron-level one on small cases (both channel-quotient paths: routes and the quotient), a
plain-torch model using it traces (the translation check compares the model with the spec under
the same weights), and the Monte Carlo of the spec agrees with the exact annealed value where that
value is exact for real networks (no deterministic merges, THEORY.md section 4c).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initstats.exact.compress as compress
from initstats.empirical.measure import MeasureOptions, measure
from initstats.empirical.trace import from_module
from initstats.errors import ModuleError, SpecError
from initstats.exact import analyse
from initstats.graph.build import build_graph, count_edges
from initstats.spec import Arch, Conv, Dense, Residual

from . import models


def _same(arch: Arch, monkeypatch=None) -> None:
    """Compressed == neuron level, output for output; with ``monkeypatch`` also through the channel quotient."""
    neuron = analyse(arch, method="neuron").to_dict()["outputs"]
    assert analyse(arch).to_dict()["outputs"] == neuron
    if monkeypatch is not None:
        monkeypatch.setattr(compress, "ROUTE_LIMIT", 0, raising=False)   # residual networks: the quotient
        assert analyse(arch).to_dict()["outputs"] == neuron


def _agrees(arch: Arch, nets: int = 2000, seed: int = 3) -> None:
    """The Monte Carlo mean of ||grad f_0||^2 within 4 standard errors of the exact annealed value."""
    exact = float(analyse(arch).outputs[0].grad_sq_total)
    mean, se = measure(arch, MeasureOptions(nets=nets, device="cpu", dtype="float64", seed=seed)).mean_se(
        "grad_logit_l2_sq")
    assert abs(mean - exact) < 4 * se, (mean, se, exact)


# -- grouped convolutions ---------------------------------------------------------------------------

def test_groups_are_validated_with_the_value_and_a_hint():
    with pytest.raises(SpecError, match="groups=4 does not divide out_channels=6"):
        Conv(6, groups=4)
    with pytest.raises(SpecError, match="groups=0 is invalid"):
        Conv(6, groups=0)
    with pytest.raises(SpecError, match=r"conv1: groups=2 does not divide its 3 input channels"):
        Arch((3, 8, 8), (Conv(4, groups=2), Dense(1, activation=None)))


def test_a_grouped_convolution_reads_its_groups_channels_only():
    arch = Arch((4, 5, 5), (Conv(6, 3, groups=2, padding="circular"), Dense(2, activation=None)))
    conv = arch.stages[1]
    assert (conv.groups, conv.fan_in) == (2, 18)                       # 4/2 input channels x 9 taps
    g = build_graph(arch)
    preds = {u.split("[")[1].split(",")[0] for u in g.pred["conv1[4,2,2]"]}   # channel 4 lies in group 1
    assert preds == {"2", "3"} and g.in_degree("conv1[4,2,2]") == 18
    assert count_edges(arch) == g.number_of_edges()


GROUPED = [
    Arch((4, 6, 6), (Conv(6, 3, groups=2, padding="circular"), Conv(4, 3, stride=2, groups=2),
                     Dense(3, activation=None))),
    Arch((4, 5), (Conv(4, 3, groups=4), Conv(8, 3, groups=2, padding="reflect"), Dense(2, activation=None))),
    Arch((4, 6, 6), (Conv(4, 3, groups=2), Residual((Conv(4, 3, groups=4), Conv(4, 3, activation=None, groups=2))),
                     Dense(3, activation=None))),
]


@pytest.mark.parametrize("arch", GROUPED, ids=["chain", "depthwise-1d", "residual"])
def test_grouped_convolutions_compressed_equal_neuron_level(arch, monkeypatch):
    _same(arch, monkeypatch)


class _Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="circular")  # depthwise
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv2(F.relu(self.conv1(x)))).mean((2, 3)))


def test_a_grouped_model_traces_and_its_monte_carlo_agrees_with_the_exact_value():
    arch = from_module(_Grouped(), px=6)                         # the translation check runs
    assert [s.groups for s in arch.stages[1:3]] == [2, 8]
    assert from_module(models.module_of(GROUPED[0]), GROUPED[0].input_shape).stages == GROUPED[0].stages
    _agrees(GROUPED[0])
