"""PyTorch models as specs (``initstats.empirical.trace``): exact where the spec reaches, refused elsewhere.

Checked here: every built-in family, written as a plain torch model and traced back, gives the same
stages (resolved geometry included) and the same exact results; plain-torch user models give the
same exact answer compressed and at neuron level; the Monte Carlo of the traced spec agrees with an
independent per-network loop over the user's own model; and every unsupported construct is a
:class:`ModuleError` naming the fx node.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initstats.empirical.measure import MeasureOptions, measure
from initstats.empirical.modules import load_factory, module_archs
from initstats.empirical.trace import check_translation, from_module, input_shape_of
from initstats.errors import InitStatsError, ModuleError
from initstats.exact import analyse
from initstats.families import make_arch
from initstats.spec import Arch, AvgPool, Conv, Dense, Residual

from . import models

FAMILIES = [("fc", {"width": 16, "depth": 2}), ("cnn", {"channels": 2}),
            ("cnn", {"channels": 2, "padding": "circular", "downsample": "avg"}),
            ("cnn", {"channels": 2, "padding": "reflect", "downsample": "stride"}),
            ("cnn", {"channels": 2, "downsample": "max", "head": "maxpool"}),
            ("cnn-avgpool", {"channels": 2}), ("resnet", {"channels": 2, "blocks": 2})]


@pytest.mark.parametrize("family,options", FAMILIES, ids=[f"{f}-{'-'.join(map(str, o.values()))}" for f, o in FAMILIES])
def test_a_family_written_in_torch_traces_back_to_itself(family, options):
    arch = make_arch(family, 16, **options)
    traced = from_module(models.module_of(arch), arch.input_shape)
    assert traced.stages == arch.stages                  # names, kinds, shapes, kernels, strides, pads, padding
    a, b = analyse(traced).outputs[0], analyse(arch).outputs[0]
    assert (a.lemma8_sum, a.symmetric, a.grad_sq_total, a.theorem_total, a.hypothesis_set) == \
        (b.lemma8_sum, b.symmetric, b.grad_sq_total, b.theorem_total, b.hypothesis_set)


USER_MODELS = [(models.mlp, None, "H"), (models.conv1d_net, 16, "H'"), (models.residual_net, 8, "H'"),
               (lambda: models.vgg_like(8), 8, "outside"), (lambda: models.functional_net(8), 8, "outside"),
               (models.projection_block, 8, "H'"), (lambda: models.ResNet18Layout(width=2), 8, "H'")]


@pytest.mark.parametrize("factory,px,label", USER_MODELS,
                         ids=["mlp", "conv1d", "residual", "vgg", "functional", "projection", "resnet18"])
def test_user_models_compressed_equals_neuron_level(factory, px, label):
    arch = from_module(factory(), px=px)
    fast, slow = analyse(arch), analyse(arch, method="neuron")
    assert fast.method != "neuron" or arch.px is None
    for a, b in zip(fast.outputs, slow.outputs):
        assert (a.lemma8_sum, a.symmetric, a.grad_sq_total, a.hypothesis_set) == \
            (b.lemma8_sum, b.symmetric, b.grad_sq_total, b.hypothesis_set)
    assert fast.outputs[0].hypothesis_set == label


def test_a_spec_with_projection_shortcuts_and_relu_after_sums_traces_back_to_itself():
    block = Residual((Conv(4, 3, stride=2), Conv(4, 3, activation=None)),
                     shortcut=(Conv(4, 1, stride=2, activation=None),), activation="relu")
    arch = Arch((2, 8, 8), (Conv(2, 3), block, Residual((Conv(4, 3), Conv(4, 3, activation=None)), activation="relu"),
                            AvgPool(None), Dense(3, activation=None)))
    traced = from_module(models.module_of(arch), arch.input_shape)
    assert traced.stages == arch.stages
    assert [s.kind for s in arch.stages if s.kind.startswith("sum")] == ["sumrelu", "sumrelu"]
    assert analyse(traced).outputs[0].grad_sq_total == analyse(arch, method="neuron").outputs[0].grad_sq_total


def test_the_resnet18_layout_traces_with_its_projections():
    arch = from_module(models.ResNet18Layout(width=2), px=16)
    sums = [s for s in arch.stages if s.kind == "sumrelu"]
    shortcuts = [s for s in arch.stages if ".shortcut." in s.name]
    assert len(sums) == 8 and len(shortcuts) == 3                 # 8 BasicBlocks, 3 of them downsample
    assert [s.shape for s in shortcuts] == [(4, 8, 8), (8, 4, 4), (16, 2, 2)]


def test_exact_values_of_simple_user_models_by_hand():
    """A 1-D conv net with circular padding and a mean over 16 positions: every path crosses one
    average pool of degree 16, so E||grad f||^2 = 2/16 (Theorem 7); an MLP: 2 (Theorem 4)."""
    assert analyse(from_module(models.conv1d_net(), px=16)).outputs[0].grad_sq_total == 2 * 1 / 16
    assert analyse(from_module(models.mlp())).outputs[0].grad_sq_total == 2


def _independent_grad_sq(model: nn.Module, shape: tuple[int, ...], nets: int, seed: int) -> np.ndarray:
    """||grad_x f_0||^2 of ``nets`` copies of the user's model, each re-initialised (He, fan-in, zero
    bias) and evaluated on one Gaussian input, one network at a time with torch's autograd."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(nets):
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=g)
                    if m.bias is not None:
                        m.bias.zero_()
        x = torch.randn(1, *shape, generator=g, dtype=torch.float64, requires_grad=True)
        grad, = torch.autograd.grad(model(x)[0, 0], x)
        out.append(float(grad.square().sum()))
    return np.array(out)


@pytest.mark.parametrize("factory,px", [(models.residual_net, 6), (models.conv1d_net, 12), (models.projection_block, 6)],
                         ids=["residual", "conv1d", "projection"])
def test_the_monte_carlo_of_the_spec_agrees_with_a_loop_over_the_users_model(factory, px):
    """Same law, independent draws: the means agree within 4 combined standard errors (a false
    alarm has probability 6e-5 under normality).  The comparison can fail: the same spec with its
    residual sums dropped (a plausible wrong translation) is rejected by the same rule."""
    model = factory().double()
    arch = from_module(model, px=px)
    m = measure(arch, MeasureOptions(nets=3000, device="cpu", dtype="float64", seed=1))
    mean, se = m.mean_se("grad_logit_l2_sq")
    ref = _independent_grad_sq(model, arch.input_shape, 1500, seed=2)
    ref_se = ref.std(ddof=1) / math.sqrt(len(ref))
    assert abs(mean - ref.mean()) < 4 * math.hypot(se, ref_se), (mean, se, ref.mean(), ref_se)
    if any(isinstance(layer, Residual) for layer in arch.layers):
        flat = Arch(arch.input_shape, tuple(x for layer in arch.layers
                                            for x in (layer.body if isinstance(layer, Residual) else (layer,))))
        wrong, wrong_se = measure(flat, MeasureOptions(nets=3000, device="cpu", dtype="float64", seed=1)).mean_se(
            "grad_logit_l2_sq")
        assert abs(wrong - ref.mean()) > 4 * math.hypot(wrong_se, ref_se), (wrong, wrong_se, ref.mean(), ref_se)


def test_training_mode_batchnorm_joins_its_layer_and_relu():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 2))
    arch = from_module(model, px=8)
    assert [s.kind for s in arch.stages] == ["input", "batchnorm", "linear"] and arch.hypothesis_set() == "outside"


def test_functional_pooling_and_view_are_read_like_their_modules():
    arch = from_module(models.functional_net(16), px=16)
    assert [(s.kind, s.shape, s.kernel, s.stride) for s in arch.stages if s.is_pool] == \
        [("avgpool", (4, 8, 8), (2, 2), (2, 2)), ("maxpool", (4, 4, 4), (2, 2), (2, 2))]


def test_the_input_shape_comes_from_the_first_layer():
    assert input_shape_of(models.residual_net()) == (3, -1, -1)
    assert input_shape_of(models.conv1d_net()) == (2, -1)
    assert input_shape_of(models.mlp()) == (20,)
    assert from_module(models.residual_net(), px=12).input_shape == (3, 12, 12)
    assert from_module(models.residual_net(), (3, 10, 10)).input_shape == (3, 10, 10)


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv(F.relu(self.conv(x)))), 1))


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x), x


BAD = [
    (nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), None, ["fx node '_1'", "Tanh"]),
    (_Twice(), 8, ["'conv'", "more than once"]),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.BatchNorm2d(4).eval(), nn.Flatten(),
                   nn.Linear(4 * 3 * 3, 2)), 8, ["evaluation mode"]),
    (nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.ReLU(), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), 8,
     ["already has one"]),
    (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="replicate"), nn.Flatten(), nn.Linear(256, 2)), 8,
     ["replicate"]),
    (_DataDependent(), None, ["cannot trace", "_DataDependent"]),
    (_Pair(), None, ["several values"]),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2)), 8, ["(batch, 3, 8, 8)"]),
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU()), None, ["Linear layer without activation"]),
    # BatchNorm must be followed by its ReLU: the spec applies one, so anything else would be silently wrong
    (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(256, 2)), 8,
     ["follows BatchNorm '_1'"]),
    (nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4)), None, ["fx node 'output'", "BatchNorm"]),
]


@pytest.mark.parametrize("model,px,needles", BAD, ids=[str(i) for i in range(len(BAD))])
def test_unsupported_models_are_refused_naming_the_node(model, px, needles):
    with pytest.raises(ModuleError) as info:
        from_module(model, px=px)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert isinstance(info.value, InitStatsError)


def test_a_convolutional_model_needs_a_size_and_shapes_are_checked():
    with pytest.raises(ModuleError, match="give px"):
        from_module(models.residual_net())
    with pytest.raises(ModuleError, match="input_shape"):
        from_module(models.mlp(), (0,))
    with pytest.raises(ModuleError, match="expected a torch.nn.Module"):
        from_module(models.mlp)  # the factory, not the model


def test_the_translation_check_catches_swapped_weights():
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    arch = from_module(model)
    check_translation(model, arch, ["0", "2", "4"])
    with pytest.raises(ModuleError, match="disagrees"):
        check_translation(model, arch, ["2", "0", "4"])
    with pytest.raises(ModuleError, match="36 weights"):
        check_translation(model, arch, ["0", "2", "2"])


def test_factories_load_from_a_file_or_a_module(tmp_path):
    assert load_factory("tests/models.py:residual_net")().__class__.__name__ == "ResidualNet"
    assert load_factory("tests.models:mlp")().__class__.__name__ == "Sequential"
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    for source, needle in [("tests/models.py", "SRC:FACTORY"), ("nosuch/file.py:f", "no file"),
                           ("tests/models.py:nothing", "no callable 'nothing'"), (f"{broken}:f", "boom"),
                           ("no_such_package_xyz:f", "cannot import")]:
        with pytest.raises(ModuleError, match=needle):
            load_factory(source)


# -- the command line ---------------------------------------------------------------------------------

def _cli(*args: str):
    from typer.testing import CliRunner

    from initstats.cli import app

    return CliRunner().invoke(app, list(args))


def test_graph_module_answers_exactly_per_size():
    import json

    result = _cli("graph", "--module", "tests/models.py:residual_net", "--dims", "8,32", "--format", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    runs = json.loads(result.stdout)
    by_px = {r["px"]: r["outputs"]["logits[0]"] for r in runs}
    # the same values as the spec written by hand with the family-like layers (tested above against the
    # neuron level); two residual blocks of a 4-channel circular net with a global pool of px^2 positions
    for px in (8, 32):
        arch = from_module(models.residual_net(), px=px)
        assert by_px[px]["grad_sq_total"] == str(analyse(arch).outputs[0].grad_sq_total)
        assert by_px[px]["hypothesis_set"] == "H'"


def test_verify_module_gives_each_claim_its_kind():
    import json

    result = _cli("verify", "--module", "tests.models:vgg_like", "--dims", "8,16", "--nets", "200", "--device", "cpu",
                  "--format", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    claims = json.loads(result.stdout)["claims"]
    assert {c["kind"] for c in claims} == {"not-covered"} and len(claims) == 7  # max pooling: measured only
    result = _cli("verify", "--module", "tests/models.py:mlp", "--nets", "300", "--device", "cpu", "--format", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    obj = json.loads(result.stdout)
    total = next(c for c in obj["claims"] if c["claim"].startswith("grad_sq_total"))
    assert total["kind"] == "exact" and total["predicted"] == 2.0 and total["claim"] == "grad_sq_total[d=20]"


@pytest.mark.parametrize("args,needles", [
    (["--module", "tests/models.py:residual_net", "--arch", "fc", "--dims", "8"], ["--arch 'fc'"]),
    (["--module", "tests/models.py:residual_net"], ["needs input sizes"]),
    (["--module", "tests/models.py:mlp", "--dims", "8"], ["fixed number of features"]),
    (["--module", "tests/models.py:nothing", "--dims", "8"], ["no callable 'nothing'"]),
    (["--module", "tests/models.py", "--dims", "8"], ["SRC:FACTORY"]),
    (["--module", "tests/models.py:residual_net", "--input-shape", "3,8", "--dims", "8"], ["not both"]),
    (["--module", "tests/models.py:mlp", "--input-shape", "7"], ["(batch, 7)"]),
    (["--arch", "fc", "--dims", "8", "--input-shape", "3,8,8"], ["--input-shape is for --module"]),
])
def test_bad_module_input_exits_2(args, needles, tmp_path):
    from .console import assert_bad_input

    out = tmp_path / "out"
    assert_bad_input(_cli("graph", *args, "--out", str(out)), *needles)
    assert not out.exists()                                  # nothing partially written


def test_an_exact_analysis_beyond_its_budget_is_refused_not_a_crash(monkeypatch):
    """Path-degree profiles of (S) can exceed memory; past the budget a chain's analysis exits 2 with
    the sizes instead of exhausting memory, while a residual network falls back to a walk-probability
    witness (routes, tests/test_routes.py) and still answers."""
    import initstats.exact.paths as paths
    from .console import assert_bad_input

    import initstats.exact.compress as compress

    monkeypatch.setattr(paths, "PROFILE_BUDGET", 5)
    monkeypatch.setattr(compress, "ROUTE_PROFILE_BUDGET", 5)
    assert_bad_input(_cli("graph", "--module", "tests/models.py:conv1d_net", "--dims", "16"),
                     "symmetry check (S) needs more than 5", "smaller input size")
    res = _cli("graph", "--module", "tests/models.py:projection_block", "--dims", "8")
    assert res.exit_code == 0, res.output
    assert "walk probabilities" in res.output
