"""H1-H5 and (S) checked one by one, and the annealed value with cross terms where H5 fails."""

from __future__ import annotations

import itertools
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from initstats.empirical.dagnet import DagEnsemble
from initstats.empirical.ensemble import ArchEnsemble
from initstats.errors import SpecError
from initstats.exact import analyse
from initstats.exact.analysis import to_backward_graph
from initstats.exact.archchecks import kernel_taps
from initstats.exact.crossterms import cross_term_pass
from initstats.exact.paths import linear_pass
from initstats.exact.results import HYPOTHESES, HypothesisCheck
from initstats.graph import build_graph
from initstats.spec import PADDINGS, Arch, AvgPool, Conv, Dense, axis_map
from initstats.testing import chain_specs, network_dags, specs

from .crossref import h5_holds, overlap_net, pair_brute_force

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                database=None)  # the same examples on every run


def per_net_grad_sq(ens, x: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error over networks of ``||d f_0 / dx||^2`` (one input per network).

    One thread: tiny networks in large batches run far faster so on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(ens(x)[..., 0].sum(), x)
    finally:
        torch.set_num_threads(threads)
    per_net = grad.pow(2).reshape(grad.shape[1], -1).sum(-1).numpy()
    return float(per_net.mean()), float(per_net.std(ddof=1) / np.sqrt(len(per_net)))


def holds(out) -> dict[str, bool]:
    return {c.name: c.holds for c in out.hypotheses}


# --------------------------------------------------------------------------------------------
# done when: the overlap net
# --------------------------------------------------------------------------------------------

def test_overlap_net_is_one_half_exactly_and_outside_h_prime():
    out = analyse(overlap_net()).outputs[0]
    # by hand: df/dx_k = v/8 * sum of the 3 weights w_jk of the z_j reading x_k (every z_j is in 3 pools
    # of weight 1/3, every pool in q with weight 1/8), so E(df/dx_k)^2 = 2/64 * 3 * 2/3 = 1/16
    assert out.grad_sq.to_dict() == {f"x{k}": Fraction(1, 16) for k in range(8)}
    assert out.grad_sq_total == Fraction(1, 2)
    # the path sum: 9 paths per input of 2/3 * 1/9 * 1/64 * 2 -> 1/48 each, 1/6 in all
    assert out.path_sum_total == Fraction(1, 6)
    assert out.hypothesis_set == "outside" and out.theorem_total is None
    assert holds(out) == {"H1": False, "H2": True, "H3": True, "H4": True, "H5": False, "S": True}
    h5 = out.check("H5")
    assert h5.nodes == ("z0", "p0", "p1")       # z0 is read by p7, p0, p1: the first two in node order
    assert "weight 1/3" in h5.witness and "E[w w'] = 1/9" in h5.witness
    assert out.check("H1").nodes == ("z0",)       # a hidden linear node: no ReLU
    assert "cross terms" in out.grad_sq_reason


def test_overlap_net_monte_carlo_agrees_with_one_half():
    """float64 Monte Carlo of the real network (no ReLU, so real = annealed): within 4 SE of 1/2."""
    n = 100_000
    ens = DagEnsemble(overlap_net(), n, dtype=torch.float64)
    ens.resample(torch.Generator().manual_seed(0))
    mean, se = per_net_grad_sq(ens, torch.randn(1, n, 8, dtype=torch.float64,
                                                generator=torch.Generator().manual_seed(1)))
    assert abs(mean - 0.5) < 4 * se, (mean, se)
    assert abs(mean - 1 / 6) > 50 * se            # the old path sum is far out: the check has power


# --------------------------------------------------------------------------------------------
# the cross-term recursion
# --------------------------------------------------------------------------------------------

@FAST
@given(network_dags())
def test_cross_terms_equal_the_path_sum_where_h5_holds(g):
    bg, _ = to_backward_graph(g)
    for o in bg.outputs:
        if not h5_holds(g, bg.names[o]):
            continue
        try:
            path = linear_pass(bg, o)
        except ValueError:
            continue
        assert cross_term_pass(bg, o) == path


@FAST
@given(network_dags(kinds=("avgpool", "sum", "linear", "relu"), max_hidden=6))
def test_cross_terms_equal_path_pair_enumeration(g):
    bg, _ = to_backward_graph(g)
    for o in bg.outputs:
        values = cross_term_pass(bg, o)
        expected = pair_brute_force(g, bg.names[o])
        assert {bg.names[x]: values[x] or 0 for x in bg.inputs} == expected


def merge_dag() -> nx.DiGraph:
    """x0, x1 -> a (relu) -> two average pools and a sum that merge again, plus a random skip."""
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], kind="input")
    g.add_node("a", kind="relu")
    g.add_node("b", kind="relu")
    g.add_nodes_from(["p", "q"], kind="avgpool")
    g.add_node("s", kind="sum")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "a"), ("x1", "a"), ("x1", "b"), ("a", "p"), ("a", "q"), ("b", "q"), ("x1", "p"),
                      ("p", "s"), ("q", "s"), ("a", "s"), ("s", "o"), ("b", "o")])
    g.edges["x1", "a"]["var"] = Fraction(3, 2)
    return g


def test_cross_terms_on_a_hand_made_merge_differ_from_the_path_sum():
    """Guards the property tests above against passing vacuously: H5 fails and the values differ."""
    g = merge_dag()
    out = analyse(g).outputs[0]
    # node order x0, x1, a, ...: x1 has one deterministic out-edge (into p), a has three (p, q, s)
    assert not out.h5_holds and out.check("H5").nodes == ("a", "p", "q")
    assert out.grad_sq.to_dict() == pair_brute_force(g, "o")
    assert out.grad_sq_total != out.path_sum_total and out.grad_sq_total > out.path_sum_total


# --------------------------------------------------------------------------------------------
# H1-H4 and their witnesses
# --------------------------------------------------------------------------------------------

def test_h1_fails_at_a_max_pool_and_the_label_is_outside():
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], kind="input")
    g.add_node("h", kind="linear")
    g.add_node("m", kind="maxpool")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "m"), ("x0", "m"), ("m", "o")])
    out = analyse(g).outputs[0]
    h1 = out.check("H1")
    # the max pool is named before the earlier linear node: it is what puts the net outside (H')
    assert not h1.holds and h1.nodes == ("m",) and "max pool" in h1.witness
    assert out.hypothesis_set == "outside" and out.grad_sq is None and "maxpool" in out.grad_sq_reason


def test_hidden_linear_nodes_break_h1_but_not_the_label():
    g = nx.DiGraph()
    g.add_nodes_from(["x0", "x1"], kind="input")
    g.add_node("h", kind="linear")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "o")])
    out = analyse(g).outputs[0]
    assert holds(out) == {"H1": False, "H2": True, "H3": True, "H4": True, "H5": True, "S": True}
    assert out.check("H1").nodes == ("h",) and out.hypothesis_set == "H"
    # gate 1 at h: c(x->h) = var = 2/2 = 1, c(h->o) = 2/1 = 2, so 2 per input
    assert out.grad_sq_total == 4 and out.grad_sq_reason is None and out.theorem_total is None


def test_relu_and_pools_satisfy_h1_and_a_linear_logit_is_allowed():
    arch = Arch((1, 8), (Conv(2, 3, padding="circular"), AvgPool(2), Dense(2, activation=None)))
    for method in ("compressed", "neuron"):
        out = analyse(arch, method=method).outputs[0]
        assert all(holds(out).values()) and out.hypothesis_set == "H'"
        assert "(H') admits" in out.check("H1").detail
        assert out.grad_sq_total == out.theorem_total == 1      # 2 / a with a 1-D pool of a = 2


def test_h3_witness_is_the_first_edge_with_another_variance():
    g = merge_dag()
    h3 = analyse(g).outputs[0].check("H3")
    assert not h3.holds and h3.nodes == ("x1", "a")
    assert h3.witness == "edge 'x1' -> 'a' has variance 3/2, not 2/in-degree = 2/2"


def test_lecun_scaling_breaks_h3_and_witnesses_name_each_logit():
    arch = Arch((1, 3), (Dense(3, activation=None),))
    for method in ("compressed", "neuron"):
        outs = analyse(arch, method=method, var_scale=Fraction(1, 2)).outputs
        for k, out in enumerate(outs):
            h3 = out.check("H3")
            assert h3.nodes == ("x[0,0]", f"logits[{k}]")
            assert h3.witness == f"edge 'x[0,0]' -> 'logits[{k}]' has variance 1/3, not 2/in-degree = 2/3"


def test_h2_and_h4_hold_with_their_reason():
    out = analyse(overlap_net()).outputs[0]
    assert "longest-path depth" in out.check("H2").detail and "independently" in out.check("H4").detail
    arch_out = analyse(Arch((1, 4), (Conv(1, 3), Dense(1, activation=None)))).outputs[0]
    assert "stages" in arch_out.check("H2").detail and "own kernel" in arch_out.check("H4").detail


def test_checks_are_validated():
    with pytest.raises(ValueError, match="witness"):
        HypothesisCheck("H5", False)
    with pytest.raises(ValueError, match="witness"):
        HypothesisCheck("H5", True, "node 'a'")
    with pytest.raises(ValueError, match="unknown"):
        HypothesisCheck("H6", True)
    assert tuple(c.name for c in analyse(overlap_net()).outputs[0].hypotheses) == HYPOTHESES


# --------------------------------------------------------------------------------------------
# Archs: shared kernels
# --------------------------------------------------------------------------------------------

def test_overlapping_pools_in_an_arch_give_no_value_in_both_methods():
    arch = Arch((1, 8), (Conv(2, 3, padding="circular"), AvgPool(3, 1), Dense(2, activation=None)))
    outs = [analyse(arch, method=m).outputs[0] for m in ("compressed", "neuron")]
    assert outs[0].to_dict() == outs[1].to_dict()
    for out in outs:
        assert out.grad_sq is None and out.theorem_total is None and out.hypothesis_set == "outside"
        assert out.check("H5").nodes == ("conv1[0,1]", "avgpool2[0,0]", "avgpool2[0,1]")
        assert "shared" in out.grad_sq_reason
    # the same graph without the spec has independent weights: it gets the cross-term value, which
    # here equals the path sum (the pools feed a dense logit whose weights are independent, so
    # E[D_s D_t] = 0 for two pools s != t); with a global pool on top the cross terms survive
    bare = analyse(build_graph(arch)).outputs[0]
    assert (bare.check("H5").witness, bare.check("H5").nodes) == (outs[0].check("H5").witness,
                                                                  outs[0].check("H5").nodes)
    assert bare.grad_sq_total == bare.path_sum_total and "cross terms" in bare.grad_sq_reason
    arch = Arch((1, 8), (Conv(2, 3, padding="circular"), AvgPool(3, 1), AvgPool(None), Dense(2, activation=None)))
    bare = analyse(build_graph(arch)).outputs[0]
    assert bare.grad_sq_total > bare.path_sum_total and analyse(arch).outputs[0].grad_sq is None


def test_reflect_padding_shares_a_kernel_entry_and_the_path_sum_is_wrong_with_a_pool():
    """x1 -> y0 and x1 -> y2 both carry w0 + w2: H5 fails.  With a global average pool the true
    annealed value (no ReLU: the real one) is 52/27, not the path sum 4/3, so no value is given."""
    arch = Arch((1, 3), (Conv(1, 3, padding="reflect", activation=None), AvgPool(None), Dense(1, activation=None)))
    for method in ("compressed", "neuron"):
        out = analyse(arch, method=method).outputs[0]
        assert out.check("H5").nodes == ("x[0,1]", "conv1[0,0]", "conv1[0,2]")
        assert "share 2 entries" in out.check("H5").witness and "E[w w'] = 4/3" in out.check("H5").witness
        assert out.grad_sq is None and out.path_sum_total == Fraction(4, 3)
    n = 200_000
    ens = ArchEnsemble(arch, n, dtype=torch.float64)
    ens.resample(torch.Generator().manual_seed(0))
    mean, se = per_net_grad_sq(ens, torch.randn(1, n, 1, 3, dtype=torch.float64,
                                                generator=torch.Generator().manual_seed(1)))
    assert abs(mean - 52 / 27) < 4 * se and abs(mean - 4 / 3) > 20 * se, (mean, se)


def test_reflect_padding_without_merges_keeps_the_path_sum():
    arch = Arch((1, 5), (Conv(2, 3, padding="reflect"), Conv(2, 3, padding="reflect"), Dense(2, activation=None)))
    for method in ("compressed", "neuron"):
        out = analyse(arch, method=method).outputs[0]
        assert not out.h5_holds and out.hypothesis_set == "outside" and out.theorem_total is None
        assert out.grad_sq_total == out.path_sum_total and "E[D_s D_t] = 0" in out.grad_sq_reason


def _np_kernel_taps(n: int, k: int, stride: int, dil: int, pad: int, mode: str) -> list[dict[int, set[int]]]:
    """Independent geometry: numpy's padding of the positions, window by window."""
    np_mode = {"zero": "constant", "circular": "wrap", "reflect": "reflect"}[mode]
    padded = np.pad(np.arange(n), pad, mode=np_mode, **({"constant_values": -1} if mode == "zero" else {}))
    out = []
    for i in range((n + 2 * pad - dil * (k - 1) - 1) // stride + 1):
        taps: dict[int, set[int]] = {}
        for a, j in enumerate(padded[i * stride: i * stride + dil * (k - 1) + 1: dil].tolist()):
            if j >= 0:
                taps.setdefault(j, set()).add(a)
        out.append(taps)
    return out


@pytest.mark.parametrize("mode", ["zero", "circular", "reflect"])
@pytest.mark.parametrize("n,k,stride,dil,pad", [(5, 3, 1, 1, 1), (6, 3, 2, 2, 2), (4, 1, 1, 1, 2), (3, 3, 1, 1, 2)])
def test_kernel_taps_match_numpy_padding_and_axis_map(mode, n, k, stride, dil, pad):
    try:
        m = axis_map(n, k, stride, dil, pad, mode)
    except SpecError:      # reflect padding too large, or a window entirely in zero padding
        return
    ours = kernel_taps(n, k, stride, dil, pad, mode)
    assert [{j: set(s) for j, s in t.items()} for t in ours] == _np_kernel_taps(n, k, stride, dil, pad, mode)
    assert [dict(t) for t in m.taps] == \
        [{j: len(s) for j, s in t.items()} for t in ours]


def _brute_h5(arch: Arch) -> tuple[bool, bool]:
    """(deterministic part holds, shared part holds) from the neuron-level graph and numpy padding."""
    g = build_graph(arch)
    reach = nx.ancestors(g, "logits[0]") | {"logits[0]"}
    det_ok = True
    for u in reach:
        dets = [v for v in g.successors(u) if v in reach and g.nodes[v]["kind"] in ("avgpool", "sum")]
        det_ok &= len(dets) < 2
    shared_ok = True
    for s in arch.stages[1:]:
        if not s.is_conv:
            continue
        src, layer = arch.stages[s.sources[0]], s.layer
        rank = len(src.spatial)
        tup = (lambda v: (v,) * rank if isinstance(v, int) else tuple(v))
        ks, ss, ds = tup(layer.kernel), tup(layer.stride), tup(layer.dilation)
        ps = tuple(d * (kk - 1) // 2 for d, kk in zip(ds, ks)) if layer.pad is None else tup(layer.pad)
        axes = [_np_kernel_taps(src.spatial[a], ks[a], ss[a], ds[a], ps[a], layer.padding) for a in range(rank)]
        seen: dict[tuple, list] = {}
        for out_pos in itertools.product(*(range(len(ax)) for ax in axes)):
            name = f"{s.name}[0,{','.join(map(str, out_pos))}]"
            if name not in reach:
                continue
            per_axis = [axes[a][i].items() for a, i in enumerate(out_pos)]
            for combo in itertools.product(*per_axis):
                p = tuple(j for j, _ in combo)
                for kidx in itertools.product(*(sorted(idx) for _, idx in combo)):
                    seen.setdefault((p, kidx), []).append(out_pos)
        shared_ok &= all(len(v) < 2 for v in seen.values())
    return det_ok, shared_ok


@st.composite
def pooled_specs(draw):
    """Convolutions with overlapping or disjoint average pools (stride <= kernel), 1-D or 2-D."""
    rank = draw(st.integers(1, 2))
    shape = (draw(st.integers(1, 2)), *draw(st.lists(st.integers(3, 7), min_size=rank, max_size=rank)))
    layers = [Conv(draw(st.integers(1, 2)), draw(st.integers(1, 3)), padding=draw(st.sampled_from(PADDINGS)))]
    for _ in range(draw(st.integers(1, 2))):
        k = draw(st.integers(1, 3))
        layers.append(AvgPool(k, draw(st.integers(1, k))))
        if draw(st.booleans()):
            layers.append(Conv(1, draw(st.integers(1, 2)), padding="circular"))
    if draw(st.booleans()):
        layers.append(AvgPool(None))
    try:
        return Arch(shape, (*layers, Dense(2, activation=None)))
    except SpecError:
        assume(False)


@FAST
@given(chain_specs(max_side=7) | specs() | pooled_specs())
def test_arch_h5_agrees_with_neuron_level_and_brute_force(arch):
    compressed = analyse(arch).outputs[0]
    neuron = analyse(arch, method="neuron").outputs[0]
    assert compressed.to_dict() == neuron.to_dict()
    det_ok, shared_ok = _brute_h5(arch)
    h5 = compressed.check("H5")
    assert h5.holds == (det_ok and shared_ok)
    if not det_ok:
        assert "deterministic" in h5.witness
    elif not shared_ok:
        assert "kernel" in h5.witness
    # the bare graph (independent weights) sees exactly the deterministic part
    assert analyse(build_graph(arch)).output("logits[0]").h5_holds == det_ok
    if not h5.holds:
        assert compressed.theorem_total is None and compressed.hypothesis_set == "outside"
        kinds = {s.kind for s in arch.stages}
        assert (compressed.grad_sq is None) == bool(kinds & {"avgpool", "sum", "sumrelu", "maxpool", "batchnorm"})
