"""Grouped convolutions, channel concatenation and evaluation-mode BatchNorm, through the one spec.

Each construct is checked the same way: the spec validates it, the compressed exact engine equals
the neuron-level one on small cases (both channel-quotient paths: routes and the quotient), a
plain-torch model using it traces (the translation check compares the model with the spec under
the same weights), and the Monte Carlo of the spec agrees with the exact annealed value where that
value is exact for real networks (no deterministic merges, THEORY.md section 4c).
"""

from __future__ import annotations

from fractions import Fraction

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
from initstats.spec import Arch, AvgPool, Concat, Conv, Dense, Residual, dense_block

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


# -- channel concatenation ----------------------------------------------------------------------

CONCAT = [
    Arch((2, 6, 6), (Conv(3), *dense_block(2, growth=2), Conv(3, 1), Dense(3, activation=None))),
    Arch((2, 6, 6), (Conv(3, padding="circular"), *dense_block(2, growth=2, padding="circular"), AvgPool(2),
                     Dense(3, activation=None))),
    Arch((2, 6), (Conv(4), Concat(((Conv(2, 3, padding="reflect"),), (Conv(2, 1),), ())), Conv(4, 3, groups=2),
                  Dense(2, activation=None))),
    Arch((2, 6, 6), (Conv(4), *dense_block(1, growth=2, bottleneck=3),
                     Residual((Conv(4, 3), Conv(4, 3, activation=None)), shortcut=(Conv(4, 1, activation=None),)),
                     Dense(3, activation=None))),
]


@pytest.mark.parametrize("arch", CONCAT, ids=["dense-block", "pooled-circular", "three-branches-1d", "residual"])
def test_concatenations_compressed_equal_neuron_level(arch, monkeypatch):
    _same(arch, monkeypatch)


def test_a_concatenation_adds_no_node_and_its_reader_has_the_summed_in_degree():
    arch = CONCAT[0]                       # conv1 (3 ch), two dense layers (2 ch each), a 1x1 transition
    names = [s.name for s in arch.stages]
    assert names == ["x", "conv1", "cat2.1.conv1", "cat3.1.conv1", "conv4", "logits"]
    trans = arch.stages[4]
    assert trans.sources == (1, 2, 3) and trans.fan_in == 3 + 2 + 2
    g = build_graph(arch)
    assert g.in_degree("conv4[0,0,0]") == 7 and g.in_degree("cat3.1.conv1[0,2,2]") == (3 + 2) * 9
    assert {u.split("[")[0] for u in g.pred["conv4[0,0,0]"]} == {"conv1", "cat2.1.conv1", "cat3.1.conv1"}
    pooled = CONCAT[1].stages                                  # a pool of a concatenation: one per branch
    assert [(s.name, s.shape) for s in pooled if s.is_pool] == [("avgpool4.0", (3, 3, 3)), ("avgpool4.1", (2, 3, 3)),
                                                                 ("avgpool4.2", (2, 3, 3))]


def test_bad_concatenations_are_refused_with_the_value():
    with pytest.raises(SpecError, match="at least two tuples"):
        Concat(((Conv(2),),))
    with pytest.raises(SpecError, match=r"cat1: its branches end in shapes \[\(2, 4, 4\), \(2, 2, 2\)\]"):
        Arch((2, 4, 4), (Concat(((), (Conv(2, stride=2),))), Dense(1, activation=None)))
    with pytest.raises(SpecError, match="concatenates x more than once"):
        Arch((2, 4, 4), (Concat(((), ())), Dense(1, activation=None)))
    with pytest.raises(SpecError, match="res2: an identity shortcut reads a concatenation of x, cat1.1.conv1"):
        Arch((2, 4, 4), (Concat(((), (Conv(2),))), Residual((Conv(4),)), Dense(1, activation=None)))


def test_the_densenet_block_traces_and_equals_its_spec():
    model = models.densenet_block()
    arch = from_module(model, px=8)                          # the translation check runs
    assert sum(len(s.sources) > 1 for s in arch.stages) == 3 and arch.stages[5].fan_in == 8 + 3 * 4
    spec = Arch((3, 8, 8), (Conv(8, 3), *dense_block(3, growth=4), Conv(8, 1), AvgPool(2), AvgPool(None),
                            Dense(10, activation=None)))
    assert [(s.kind, s.shape, s.sources, s.fan_in) for s in arch.stages] == \
        [(s.kind, s.shape, s.sources, s.fan_in) for s in spec.stages]
    assert from_module(models.module_of(CONCAT[2]), CONCAT[2].input_shape).stages == CONCAT[2].stages
    fast, slow = analyse(arch), analyse(arch, method="neuron")
    assert fast.to_dict()["outputs"] == slow.to_dict()["outputs"]


def test_a_concatenation_measures_its_exact_value():
    """No deterministic merge (a concatenation adds no node): the annealed value is the real one."""
    _agrees(CONCAT[0])
    arch = from_module(models.branchy(), px=6)               # cat of two convolutions, then a mean
    assert [s.name for s in arch.stages if s.is_pool] == ["avgpool2.0", "avgpool2.1"]


class _CatSpatial(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 8, 2)

    def forward(self, x):
        return self.fc(torch.flatten(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 2), 1))


def test_a_cat_along_another_dim_is_refused_naming_the_node():
    with pytest.raises(ModuleError, match=r"fx node 'cat'.*cat along dim 2.*dim=1"):
        from_module(_CatSpatial(), px=8)


def _cli(*args: str):
    from typer.testing import CliRunner

    from initstats.cli import app

    return CliRunner().invoke(app, list(args))


def test_verify_the_densenet_block_from_the_command_line(tmp_path):
    result = _cli("verify", "--module", "tests/models.py:densenet_block", "--dims", "8,16", "--nets", "200",
                  "--device", "cpu")
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    assert "grad_sq_total[px=8]" in result.stdout and "claims" in result.stdout
    bad = tmp_path / "bad.py"
    bad.write_text("import torch, torch.nn.functional as F\nfrom torch import nn\n"
                   "class M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)\n"
                   "        self.fc = nn.Linear(4 * 16 * 8, 2)\n    def forward(self, x):\n"
                   "        return self.fc(torch.flatten(torch.cat([F.relu(self.a(x)), self.b(x)], 2), 1))\n")
    from .console import assert_bad_input

    assert_bad_input(_cli("graph", "--module", f"{bad}:M", "--dims", "8"), "fx node 'cat'", "cat along dim 2")


# -- evaluation-mode BatchNorm ------------------------------------------------------------------

EPS = 0.5          # a large eps, so that the folded factor 1/(1 + eps) = 2/3 is plain in the Monte Carlo


class _EvalBN(nn.Module):
    """conv -> BN -> ReLU, conv -> ReLU -> BN, linear head: every path crosses two BatchNorms."""

    def __init__(self, eps: float = EPS) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4, eps=eps)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4, eps=eps)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.bn2(F.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


def _train_bn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))


def _without_bn(arch: Arch) -> Arch:
    from dataclasses import replace

    return Arch(arch.input_shape, tuple(replace(x, var_factor=1) if isinstance(x, (Conv, Dense)) else x
                                        for x in arch.layers))


def test_an_evaluation_mode_batchnorm_folds_into_the_layer_before_it():
    arch = from_module(_EvalBN().eval(), px=6)                  # the translation check runs in eval mode
    assert [s.var_factor for s in arch.stages[1:]] == [Fraction(2, 3), Fraction(2, 3), 1]
    assert [s.kind for s in arch.stages] == ["input", "relu", "relu", "linear"]
    default = from_module(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).eval())
    assert default.stages[1].var_factor == 1 / (1 + Fraction(1e-5)) != Fraction(100000, 100001)   # eps exactly
    train = from_module(_train_bn(), px=6)                   # training mode stays as it was: measured only
    assert train.hypothesis_set() == "outside" and train.stages[1].var_factor == 1


def test_folded_exact_values_are_the_plain_ones_times_the_factor_per_batchnorm_on_each_path(monkeypatch):
    f = 1 / (1 + Fraction(EPS))
    bn = from_module(_EvalBN().eval(), px=6)
    out, plain = analyse(bn).outputs[0], analyse(_without_bn(bn)).outputs[0]
    assert list(out.grad_sq.values()) == [v * f ** 2 for v in plain.grad_sq.values()]
    assert list(out.walk.values()) == list(plain.walk.values())
    h3 = out.check("H3")
    assert not h3.holds and "conv1[0,0,0]" in h3.nodes and plain.check("H3").holds is False   # zero padding too
    _same(bn)
    # a residual network whose every path crosses the stem's BatchNorm once: the routes/quotient engines
    res = Arch((2, 6, 6), (Conv(4, 3, padding="circular", var_factor=f), Residual((Conv(4, 3, padding="circular"),
                           Conv(4, 3, padding="circular", activation=None))), Dense(2, activation=None)))
    r_out, r_plain = analyse(res).outputs[0], analyse(_without_bn(res)).outputs[0]
    assert r_out.grad_sq_total == r_plain.grad_sq_total * f and r_plain.check("H3").holds
    assert not r_out.check("H3").holds and r_out.check("H3").nodes[1] == "conv1[0,0,0]"
    _same(res, monkeypatch)


def test_the_monte_carlo_of_a_folded_batchnorm_agrees_with_the_exact_value():
    arch = from_module(_EvalBN().eval(), px=6)
    _agrees(arch, nets=3000)
    plain = float(analyse(_without_bn(arch)).outputs[0].grad_sq_total)
    assert float(analyse(arch).outputs[0].grad_sq_total) < 0.5 * plain      # (2/3)^2 of it: far apart


def test_batchnorm_with_trained_statistics_or_parameters_is_refused():
    model = _EvalBN().eval()
    with torch.no_grad():
        model.bn2.running_var.fill_(2.0)
    with pytest.raises(ModuleError, match=r"fx node 'bn2'.*running_var is not the default 1.*reset_running_stats"):
        from_module(model, px=6)
    model = _train_bn()
    with torch.no_grad():
        model[1].weight.fill_(0.5)
    with pytest.raises(ModuleError, match=r"fx node '_1'.*weight is not the default 1"):
        from_module(model, px=6)
    with pytest.raises(SpecError, match="var_factor=-1 is invalid"):
        Conv(2, var_factor=-1)


def test_the_infinite_width_recursion_refuses_what_it_does_not_model():
    """A grouped convolution reading the input or a concatenation: its groups' channels are not
    exchangeable, so one kernel per stage cannot hold them; rather no value than a wrong one
    (grouped convolutions, concatenations and var_factor it models: tests/test_infinite_width.py)."""
    from initstats.empirical.infinite_width import infinite_width
    from initstats.errors import UnsupportedLayerError

    for arch, needle in [(GROUPED[0], "grouped convolution reading the input"),
                         (CONCAT[2], "grouped convolution reading a concatenation")]:
        with pytest.raises(UnsupportedLayerError, match=needle):
            infinite_width(arch, n_inputs=1)
