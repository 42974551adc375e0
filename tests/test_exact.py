"""Exact engine: Lemmas 8/9, (S) with witnesses, annealed prediction, compression."""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initstats.exact import analyse
from initstats.families import make_arch, with_avgpool
from initstats.graph import build_graph
from initstats.spec import Arch, AvgPool, Conv, Dense, MaxPool
from initstats.testing import chain_specs, network_dags, specs

from .crossref import h5_holds, pair_brute_force
from .reference import brute_force

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                database=None)  # the same examples on every run


def _check_against_brute(g: nx.DiGraph) -> None:
    result = analyse(g)
    for out in result.outputs:
        o = next(n for n in g.nodes if str(n) == out.name)
        ref = brute_force(g, o)
        assert out.walk.to_dict() == ref["walk"]
        assert out.lemma8_sum == sum(ref["walk"].values())
        d = len(ref["inputs"])
        assert out.lemma9_holds == all(v == Fraction(1, d) for v in ref["walk"].values())
        profiles = [ref["profile"][x] for x in ref["inputs"]]
        assert out.symmetric == all(p == profiles[0] for p in profiles)
        assert out.h5_holds == h5_holds(g, o)
        if ref["grad"] is None:
            assert out.grad_sq is None and out.path_sum_total is None
        else:
            assert out.path_sum_total == sum(ref["grad"].values())
            # the path sum is the annealed value exactly where H5 holds; elsewhere the path pairs decide
            expected = ref["grad"] if out.h5_holds else pair_brute_force(g, o)
            assert out.grad_sq.to_dict() == expected
        assert out.pool_degrees == (next(iter(ref["pools"])) if len(ref["pools"]) == 1 else None)
        if out.witness is not None:
            a, b = out.witness.inputs
            first = ref["inputs"][0]
            assert str(first) == a
            later = [x for x in ref["inputs"] if ref["profile"][x] != ref["profile"][first]]
            assert str(later[0]) == b  # the first input that differs
            pa, pb = ref["profile"][first], ref["profile"][later[0]]
            differing = sorted(k for k in set(pa) | set(pb) if pa[k] != pb[k])
            assert out.witness.path_degree == differing[0]
            assert out.witness.counts == (pa[differing[0]], pb[differing[0]])


@FAST
@given(network_dags())
def test_lemma8_sum_is_one_on_every_dag(g):
    for out in analyse(g).outputs:
        assert out.lemma8_sum == 1


@FAST
@given(network_dags(kinds=("relu", "linear", "avgpool", "sum", "maxpool", "batchnorm")))
def test_dynamic_programme_equals_path_enumeration(g):
    _check_against_brute(g)


def test_dynamic_programme_on_a_hand_checked_dag():
    # x0 -> a (relu), x1 -> a, a -> o (linear), x1 -> o
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], kind="input")
    g.add_node("a", kind="relu")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "a"), ("x1", "a"), ("a", "o"), ("x1", "o")])
    g.edges["x1", "o"]["var"] = Fraction(3)
    out = analyse(g).outputs[0]
    # walk: o has 2 preds: r(x0) = 1/2 * 1/2, r(x1) = 1/2 * 1/2 + 1/2
    assert out.walk.to_dict() == {"x0": Fraction(1, 4), "x1": Fraction(3, 4)}
    # grad: c(a->o) = 2/2 = 1, c(x->a) = (2/2)/2 = 1/2; c(x1->o) = 3
    assert out.grad_sq.to_dict() == {"x0": Fraction(1, 2), "x1": Fraction(7, 2)}
    assert not out.symmetric and out.witness.inputs == ("x0", "x1")
    assert out.witness.path_degree == (2,) and out.witness.counts == (0, 1)
    assert not out.h3_holds and out.hypothesis_set == "H"


@pytest.mark.parametrize("px", [2, 4])
def test_fc_satisfies_symmetry_and_lemma9(px):
    arch = make_arch("fc", px, width=5, depth=2)
    for method in ("neuron", "compressed"):
        out = analyse(arch, method=method).outputs[0]
        assert out.symmetric and out.lemma9_holds and out.lemma8_sum == 1
        assert out.grad_sq_total == 2 and out.grad_sq.uniform and out.grad_sq.min == Fraction(2, arch.d)
        assert out.theorem_holds and out.h3_holds and out.hypothesis_set == "H"


@pytest.mark.parametrize("kernel,side", [(3, 5), (3, 6), (5, 6), (1, 3)])
def test_stride1_circular_convolutions_are_symmetric(kernel, side):
    arch = Arch((2, side, side), (Conv(3, kernel, padding="circular"), Conv(2, kernel, padding="circular"),
                                  Dense(3, activation=None)))
    out = analyse(arch, method="neuron").outputs[0]
    assert out.symmetric and out.lemma9_holds and out.grad_sq_total == 2
    assert analyse(arch).to_dict()["outputs"] == analyse(arch, method="neuron").to_dict()["outputs"]


def test_zero_padding_breaks_symmetry_with_a_correct_witness():
    arch = Arch((1, 5), (Conv(2, 3, padding="zero"), Dense(2, activation=None)))
    g = build_graph(arch)
    out = analyse(arch, method="neuron").outputs[0]
    assert not out.symmetric and not out.lemma9_holds
    ref = brute_force(g, "logits[0]")
    a, b = out.witness.inputs
    assert (a, b) == ("x[0,0]", "x[0,1]")
    pa, pb = ref["profile"][a], ref["profile"][b]
    assert pa[out.witness.path_degree] != pb[out.witness.path_degree]
    assert out.witness.counts == (pa[out.witness.path_degree], pb[out.witness.path_degree])
    # zero padding keeps var 2/fan_in at the border: below 2, H3 fails
    assert not out.h3_holds and out.grad_sq_total < 2 and out.theorem_total == 2
    assert analyse(arch).outputs[0].witness == out.witness


@pytest.mark.parametrize("kernel,pad,symmetric", [(3, 1, False), (2, 0, True), (4, 1, True), (5, 2, False)])
def test_stride2_symmetry_needs_stride_dividing_kernel(kernel, pad, symmetric):
    # 8 -> 4 positions: each input is covered by kernel/2 windows when 2 divides the kernel
    arch = Arch((1, 8, 8), (Conv(2, kernel, stride=2, padding="circular", pad=pad), Dense(2, activation=None)))
    assert arch.stages[1].spatial == (4, 4)
    for method in ("neuron", "compressed"):
        out = analyse(arch, method=method).outputs[0]
        assert out.symmetric == symmetric
        assert out.lemma9_holds == symmetric


@pytest.mark.parametrize("pools", [(2,), (4,), (2, 2), (2, 4)])
def test_average_pooling_total_is_two_over_product(pools):
    layers = [Conv(2, 3, padding="circular")]
    for a in pools:
        layers += [AvgPool(a), Conv(2, 3, padding="circular")]
    arch = Arch((1, 16, 16), (*layers, Dense(2, activation=None)))
    expected = Fraction(2, 1)
    for a in pools:
        expected /= a * a
    for method in ("neuron", "compressed"):
        out = analyse(arch, method=method).outputs[0]
        assert out.grad_sq_total == expected == out.theorem_total
        assert out.pool_degrees == tuple(sorted(a * a for a in pools))
        assert out.hypothesis_set == "H'" and out.symmetric


def test_literal_h1_relu_logits_give_one():
    arch = Arch((1, 6), (Conv(2, 3, padding="circular"), Dense(2, activation="relu")))
    out = analyse(arch).outputs[0]
    assert out.grad_sq_total == 1 == out.theorem_total


def test_nonuniform_pooling_is_flagged():
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], kind="input")
    g.add_node("p", kind="avgpool")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "p"), ("x1", "p"), ("p", "o"), ("x1", "o")])
    out = analyse(g).outputs[0]
    assert out.pool_degrees is None and not out.pooling_uniform and out.theorem_total is None


def test_max_pool_and_batchnorm_are_outside_h():
    arch = make_arch("cnn", 16, channels=2, downsample="max", head="maxpool", batchnorm=True)
    out = analyse(arch).outputs[0]
    assert out.hypothesis_set == "outside" and out.grad_sq is None and out.theorem_total is None
    assert out.lemma8_sum == 1  # Lemma 8 is a graph identity: it holds anyway
    assert analyse(arch, method="neuron").to_dict()["outputs"] == analyse(arch).to_dict()["outputs"]


def test_residual_sums_are_h_prime_and_exceed_two():
    arch = make_arch("resnet", 6, channels=2, padding="circular")
    out = analyse(arch).outputs[0]
    assert analyse(arch).method == "routes"
    assert out.hypothesis_set == "H'" and out.theorem_total is None and out.grad_sq_total > 2


def test_with_avgpool_sweeps_theorem7():
    base = make_arch("cnn", 16, channels=2, padding="circular", downsample="avg")
    for a in (1, 2):
        out = analyse(with_avgpool(base, a)).outputs[0]
        assert out.grad_sq_total == Fraction(2, 4 ** 3 * a * a)


def _same(arch: Arch) -> None:
    neuron = analyse(arch, method="neuron")
    compressed = analyse(arch)
    assert compressed.method in ("factorized", "routes")
    assert neuron.to_dict()["outputs"] == compressed.to_dict()["outputs"]
    n0, c0 = neuron.outputs[0], compressed.outputs[0]
    assert list(n0.walk.items()) == list(c0.walk.items())
    if n0.grad_sq is not None:
        assert list(n0.grad_sq.items()) == list(c0.grad_sq.items())


@FAST
@given(chain_specs())
def test_compressed_equals_neuron_level_on_chains(arch):
    _same(arch)


@FAST
@given(specs())
def test_compressed_equals_neuron_level_with_residuals(arch):
    _same(arch)


@pytest.mark.parametrize("padding", ["zero", "circular", "reflect"])
@pytest.mark.parametrize("downsample", ["stride", "avg", "max"])
def test_compressed_equals_neuron_level_on_cnn_family(padding, downsample):
    _same(make_arch("cnn", 16, channels=2, padding=padding, downsample=downsample))


@pytest.mark.parametrize("family", ["cnn-avgpool", "resnet"])
@pytest.mark.parametrize("padding", ["zero", "reflect"])
def test_compressed_equals_neuron_level_on_other_families(family, padding):
    _same(make_arch(family, 8, channels=2, padding=padding))


def test_frames_are_tidy():
    a = analyse(make_arch("cnn", 8, channels=2, classes=3))
    frame = a.to_frame()
    assert set(frame.columns) == {"arch", "d", "px", "output", "quantity", "value"}
    assert len(frame) == 3 * frame["quantity"].nunique()
    inputs = a.inputs_frame()
    assert len(inputs) == a.d and inputs["r"].sum() == 1


@st.composite
def _symmetric_specs(draw):
    side = draw(st.integers(2, 6))
    k = draw(st.integers(1, 3))
    return Arch((draw(st.integers(1, 2)), side), (Conv(draw(st.integers(1, 2)), k, padding="circular"),
                                                  MaxPool(1), Dense(2, activation=None)))


@FAST
@given(_symmetric_specs())
def test_lemma9_holds_under_symmetry(arch):
    out = analyse(arch).outputs[0]
    if out.symmetric:
        assert out.lemma9_holds


@pytest.mark.parametrize("mode,np_mode", [("zero", "constant"), ("circular", "wrap"), ("reflect", "reflect")])
@pytest.mark.parametrize("n,kernel,stride,dilation,pad", [(5, 3, 1, 1, 1), (6, 3, 2, 2, 2), (4, 2, 2, 1, 1),
                                                          (3, 3, 1, 1, 2), (7, 5, 3, 1, 2)])
def test_axis_map_matches_numpy_padding(mode, np_mode, n, kernel, stride, dilation, pad):
    """The graph's padding semantics are numpy's (= torch's): zero, wrap, reflect without edge repeat."""
    from initstats.errors import SpecError
    from initstats.spec import axis_map

    try:
        m = axis_map(n, kernel, stride, dilation, pad, mode)
    except SpecError:
        assert mode == "reflect" and pad >= n
        return
    marker = -1
    padded = np.pad(np.arange(n), pad, mode=np_mode, **({"constant_values": marker} if np_mode == "constant" else {}))
    for i, taps in enumerate(m.taps):
        window = padded[i * stride: i * stride + dilation * (kernel - 1) + 1: dilation]
        expected: dict[int, int] = {}
        for j in window.tolist():
            if j != marker:
                expected[j] = expected.get(j, 0) + 1
        assert dict(taps) == expected
    assert m.n_out == (n + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
