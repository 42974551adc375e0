"""The Monte Carlo engine: the torch models are the networks the specs describe, and they agree
statistically with the exact engine.

Model tests compare, in float64, the batched ensembles with hand-written references: a per-network
forward built from ``torch.nn`` modules, the neuron-level graph of the same spec run by
:class:`DagEnsemble` with weights copied from the shared convolution kernels, and a node-by-node
evaluation of a hand-made DAG.  Statistical tests draw seeded networks on the CPU and compare
``E||grad f||^2`` (and its per-coordinate map) with the exact annealed prediction.
"""

from __future__ import annotations

import itertools
import math
import os
import platform
import re
import subprocess
import sys
from collections import defaultdict
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.stats import f_oneway, norm
from torch import nn

from initstats.empirical.common import chunk_generator, init_gain, resolve_device, strict_numerics
from initstats.empirical.dagnet import DagEnsemble
from initstats.empirical.ensemble import ArchEnsemble
from initstats.empirical.measure import LOGIT_STATISTICS, STATISTICS, MeasureOptions, measure
from initstats.inference import effective_rel_se, icc, precision_reached
from initstats.errors import DeviceError, OptionError, SpecFileError
from initstats.exact import analyse
from initstats.families import make_arch, with_logit_relu
from initstats.graph import build_graph
from initstats.spec import Arch, AvgPool, Conv, Dense, MaxPool, Residual, node_id
from initstats.verify import border_rings

from .measured import FC_NETS, fc_measurement

F64 = torch.float64


# ============================================================================================
# independent references
# ============================================================================================

def _tup(v, rank: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, tuple) else (v,) * rank


def _conv_geometry(layer: Conv, rank: int):
    k, stride, dil = _tup(layer.kernel, rank), _tup(layer.stride, rank), _tup(layer.dilation, rank)
    pads = tuple(d * (kk - 1) // 2 for d, kk in zip(dil, k)) if layer.pad is None else _tup(layer.pad, rank)
    return k, stride, dil, pads


_TORCH_PADDING = {"zero": "zeros", "circular": "circular", "reflect": "reflect"}


def net_weights(ens: ArchEnsemble, i: int) -> dict[int, torch.Tensor]:
    """The weights of network ``i`` of an ensemble: ``(C_out, C_in, *k)`` kernels, ``(fan_in, out)`` matrices."""
    out = {}
    for s in ens.arch.stages[1:]:
        if s.is_conv:
            out[s.index] = ens.weights[s.index][i * s.channels:(i + 1) * s.channels]
        elif s.is_dense:
            out[s.index] = ens.weights[s.index][i]
    return out


def reference_forward(arch: Arch, weights: dict[int, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """One network, layer by layer with ``torch.nn`` modules; ``x`` of shape ``(batch, *input_shape)``."""
    stages = iter(arch.stages[1:])

    def run(layers, h):
        for layer in layers:
            if isinstance(layer, Residual):
                y = run(layer.body, h)
                s = next(stages)
                assert s.kind == "sum"
                h = h + y                                   # a sum node: no activation
                continue
            s = next(stages)
            rank = h.dim() - 2
            if isinstance(layer, Conv):
                k, stride, dil, pads = _conv_geometry(layer, rank)
                cls = nn.Conv1d if rank == 1 else nn.Conv2d
                conv = cls(h.shape[1], layer.out_channels, k, stride=stride, padding=pads, dilation=dil, bias=False,
                           padding_mode=_TORCH_PADDING[layer.padding]).to(F64)
                with torch.no_grad():
                    conv.weight.copy_(weights[s.index])
                h = conv(h)
                if layer.batchnorm:
                    bn = (nn.BatchNorm1d if rank == 1 else nn.BatchNorm2d)(layer.out_channels, affine=False,
                                                                            track_running_stats=False)
                    h = bn.to(F64)(h)
            elif isinstance(layer, Dense):
                w = weights[s.index]
                lin = nn.Linear(w.shape[0], w.shape[1], bias=False).to(F64)
                with torch.no_grad():
                    lin.weight.copy_(w.T)
                h = lin(h.flatten(1))
                if layer.batchnorm:
                    h = nn.BatchNorm1d(layer.out_features, affine=False, track_running_stats=False).to(F64)(h)
            elif isinstance(layer, (AvgPool, MaxPool)):
                avg = isinstance(layer, AvgPool)
                if layer.kernel is None:
                    pool = {(True, 1): nn.AdaptiveAvgPool1d, (True, 2): nn.AdaptiveAvgPool2d,
                            (False, 1): nn.AdaptiveMaxPool1d, (False, 2): nn.AdaptiveMaxPool2d}[avg, rank](1)
                else:
                    stride = layer.stride if layer.stride is not None else layer.kernel
                    pool = {(True, 1): nn.AvgPool1d, (True, 2): nn.AvgPool2d, (False, 1): nn.MaxPool1d,
                            (False, 2): nn.MaxPool2d}[avg, rank](layer.kernel, stride)
                h = pool(h)
            else:
                raise AssertionError(layer)
            if getattr(layer, "activation", None) == "relu":
                h = torch.relu(h)
            assert tuple(h.shape[1:]) == s.shape, (s.name, h.shape, s.shape)
        return h

    out = run(arch.layers, x)
    assert next(stages, None) is None
    return out


def _mapped(t: int, n: int, mode: str) -> int | None:
    """Where kernel tap ``t`` (a position of the padded axis, origin at the first real entry) reads."""
    if 0 <= t < n:
        return t
    if mode == "zero":
        return None
    if mode == "circular":
        return t % n
    r = -t if t < 0 else 2 * (n - 1) - t                   # one reflection, without repeating the edge
    assert 0 <= r < n
    return r


def shared_edge_weights(arch: Arch, weights: dict[int, torch.Tensor]) -> tuple[dict, dict]:
    """Per (input neuron, output neuron) pair: the sum of the shared kernel entries that map onto it,
    and how many entries do.  Computed from the padding semantics, independently of ``axis_map``."""
    weight: dict[tuple[str, str], float] = defaultdict(float)
    mult: dict[tuple[str, str], int] = defaultdict(int)
    for s in arch.stages[1:]:
        if not s.mixes_channels:
            continue
        src = arch.stages[s.sources[0]]
        w = weights[s.index].detach().cpu().numpy()
        if s.is_dense:
            for i, idx in enumerate(itertools.product(*(range(n) for n in src.shape))):
                for o in range(s.channels):
                    key = (node_id(src.name, idx), node_id(s.name, (o,)))
                    weight[key] += float(w[i, o])
                    mult[key] += 1
            continue
        rank = len(s.spatial)
        k, stride, dil, pads = _conv_geometry(s.layer, rank)
        for pos in itertools.product(*(range(n) for n in s.spatial)):
            for off in itertools.product(*(range(kk) for kk in k)):
                src_pos = [_mapped(pos[a] * stride[a] - pads[a] + off[a] * dil[a], src.spatial[a], s.layer.padding)
                           for a in range(rank)]
                if None in src_pos:
                    continue
                for co in range(s.channels):
                    for ci in range(src.channels):
                        key = (node_id(src.name, (ci, *src_pos)), node_id(s.name, (co, *pos)))
                        weight[key] += float(w[(co, ci, *off)])
                        mult[key] += 1
    return dict(weight), dict(mult)


def dag_generations(g: nx.DiGraph) -> list[list]:
    """The node order of :class:`DagEnsemble`: topological generations, inputs first (in graph order)."""
    gens = [list(gen) for gen in nx.topological_generations(g)]
    kinds = dict(g.nodes(data="kind"))
    gens[0] = [n for n in g.nodes if kinds[n] == "input"] + [n for n in gens[0] if kinds[n] != "input"]
    return gens


def set_dag_weights(dag: DagEnsemble, g: nx.DiGraph, net: int, weight_of) -> int:
    """Set network ``net``'s random edge weights to ``weight_of(u, v)``; returns how many were set."""
    gens = dag_generations(g)
    assert dag.sizes == [len(gen) for gen in gens] and list(dag.inputs) == gens[0][:len(dag.inputs)]
    count = 0
    for gi, (blocks, ws) in enumerate(zip(dag.blocks, dag.weights)):
        for b, w in zip(blocks, ws):
            for e, (si, di) in enumerate(zip(b.src_idx.tolist(), b.dst_idx.tolist())):
                if bool(b.is_random[e]):
                    w[net, e] = weight_of(gens[b.src_gen][si], gens[gi][di])
                    count += 1
    return count


def input_grads(out: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    """``d (sum over the batch of out[..., k]) / dx`` for every output ``k``."""
    return [torch.autograd.grad(out[..., k].sum(), x, retain_graph=True)[0] for k in range(out.shape[-1])]


# ============================================================================================
# ArchEnsemble against a per-network torch.nn reference
# ============================================================================================

ARCHS = {
    "2d zero k3": Arch((2, 5, 6), (Conv(3, 3), Dense(4, activation=None))),
    "2d circular k3 s2": Arch((2, 6, 5), (Conv(3, 3, stride=2, padding="circular"), Dense(3, activation=None))),
    "2d reflect k3 d2": Arch((1, 7, 6), (Conv(2, 3, dilation=2, padding="reflect"), Dense(2, activation=None))),
    "2d circular k2 d2": Arch((2, 5, 5), (Conv(2, 2, dilation=2, padding="circular"), Conv(2, 2), Dense(2, activation=None))),
    "2d reflect k2 s2": Arch((2, 6, 6), (Conv(3, 2, stride=2, padding="reflect"), Dense(2, activation=None))),
    "2d zero big pad, linear": Arch((1, 4, 4), (Conv(2, 3, pad=2, activation=None), Conv(2, 3), Dense(2, activation=None))),
    "2d circular wraps twice": Arch((1, 2, 3), (Conv(2, 3, padding="circular"), Dense(2, activation=None))),
    "2d tuples": Arch((2, 5, 7), (Conv(2, (3, 1), stride=(1, 2), dilation=(2, 1), padding="reflect"),
                                  Conv(2, (1, 3), padding="circular"), Dense(3, activation=None))),
    "2d pools": Arch((2, 8, 8), (Conv(2, 3), AvgPool(2), Conv(3, 3, padding="circular"), MaxPool(3, 2),
                                 Dense(3, activation=None))),
    "2d global avg": Arch((2, 5, 5), (Conv(3, 3), AvgPool(None), Dense(2, activation=None))),
    "2d global max": Arch((2, 5, 5), (Conv(3, 3, padding="reflect"), MaxPool(None), Dense(2, activation=None))),
    "2d residual": Arch((2, 5, 5), (Conv(2, 3, padding="circular"),
                                    Residual((Conv(2, 3, padding="reflect"), Conv(2, 3, activation=None))),
                                    AvgPool(None), Dense(3, activation=None))),
    "2d batchnorm": Arch((2, 6, 6), (Conv(3, 3, batchnorm=True), MaxPool(2), Conv(3, 2, stride=2, batchnorm=True),
                                     Dense(4, batchnorm=True), Dense(2, activation=None))),
    "1d zero s2": Arch((2, 9), (Conv(3, 3, stride=2), Conv(2, 2, dilation=2, padding="circular"),
                                Dense(2, activation=None))),
    "1d reflect pools": Arch((1, 10), (Conv(2, 3, padding="reflect"), AvgPool(3, 2), Conv(2, 3), MaxPool(2),
                                       Dense(2, activation=None))),
    "1d residual batchnorm": Arch((2, 6), (Residual((Conv(2, 3, padding="circular", batchnorm=True),
                                                     Conv(2, 1, activation=None))),
                                           AvgPool(None), Dense(2, activation=None))),
    "no spatial axes": Arch((5,), (Dense(4), Dense(3, activation=None), Dense(2, activation=None))),
    "fc family": make_arch("fc", 3, width=6, depth=2),
    "cnn family": make_arch("cnn", 8, channels=2, padding="circular", downsample="avg", head="avgpool"),
    "cnn family, paper's literal network": make_arch("cnn", 8, channels=2, downsample="max", head="maxpool",
                                                     batchnorm=True),
    "resnet family": make_arch("resnet", 4, channels=2, blocks=2, padding="reflect"),
}


@pytest.mark.parametrize("n_nets", [1, 3])
@pytest.mark.parametrize("name", list(ARCHS))
def test_ensemble_equals_a_torch_nn_reference(name, n_nets):
    arch = ARCHS[name]
    batch = 5
    ens = ArchEnsemble(arch, n_nets, dtype=F64)
    ens.resample(torch.Generator().manual_seed(list(ARCHS).index(name)))
    x = torch.randn(batch, n_nets, *arch.input_shape, dtype=F64, generator=torch.Generator().manual_seed(1),
                    requires_grad=True)
    out = ens(x)
    assert out.shape == (batch, n_nets, arch.num_classes) and out.dtype == F64
    grad_mass = 0.0
    for i in range(n_nets):
        ref = reference_forward(arch, net_weights(ens, i), x[:, i])
        torch.testing.assert_close(out[:, i], ref, rtol=1e-10, atol=1e-10)
        # input gradients too: autograd through the ensemble's grouped functional convolutions
        # against autograd through the reference's nn modules
        for got, want in zip(input_grads(out[:, i], x), input_grads(ref, x)):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
            grad_mass += float(want[:, i].abs().sum())
    assert grad_mass > 0  # some network is alive: the gradients compared are not all zero
    # the networks differ from each other (each has its own weights and inputs)
    if n_nets > 1:
        assert not torch.allclose(out[:, 0], out[:, 1])


def test_reference_itself_sees_padding_modes():
    """The reference is not blind to padding: the three modes give three different networks."""
    x = torch.randn(2, 1, 2, 5, 5, dtype=F64)
    outs = []
    for mode in ("zero", "circular", "reflect"):
        arch = Arch((2, 5, 5), (Conv(2, 3, padding=mode), Dense(2, activation=None)))
        ens = ArchEnsemble(arch, 1, dtype=F64)
        ens.resample(torch.Generator().manual_seed(0))       # same weights for every mode
        outs.append(ens(x)[:, 0])
        torch.testing.assert_close(outs[-1], reference_forward(arch, net_weights(ens, 0), x[:, 0]))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


@pytest.mark.parametrize("init", ["he", "lecun"])
def test_ensemble_weight_variance_is_gain_over_fan_in(init):
    arch = Arch((3, 6, 6), (Conv(8, 3), Conv(4, 2, stride=2, padding="circular"), Dense(5, activation=None)))
    ens = ArchEnsemble(arch, 64, init=init)
    ens.resample(torch.Generator().manual_seed(0))
    gain = 2.0 if init == "he" else 1.0
    for s in arch.stages[1:]:
        w = ens.weights[s.index]
        assert s.fan_in == {"conv1": 27, "conv2": 32, "logits": 4 * 3 * 3}[s.name]
        n = w.numel()
        # sample variance of n Gaussians: relative SE sqrt(2/n); 5 SE
        assert abs(w.double().var().item() / (gain / s.fan_in) - 1) < 5 * math.sqrt(2 / n)
        assert abs(w.double().mean().item()) < 5 * math.sqrt(gain / s.fan_in / n)
        # every network draws its own weights
        per_net = w.reshape(64, -1)
        assert not torch.equal(per_net[0], per_net[1])


# ============================================================================================
# one spec drives both: ArchEnsemble == DagEnsemble on the neuron-level graph
# ============================================================================================

GRAPH_ARCHS = {
    "2d zero k3": ARCHS["2d zero k3"],
    "2d circular k3 s2": ARCHS["2d circular k3 s2"],
    "2d reflect k3 d2": ARCHS["2d reflect k3 d2"],
    "2d circular k2 d2": ARCHS["2d circular k2 d2"],
    "2d reflect k2 s2": ARCHS["2d reflect k2 s2"],
    "2d zero big pad, linear": ARCHS["2d zero big pad, linear"],
    "2d circular wraps twice": ARCHS["2d circular wraps twice"],
    "2d tuples": ARCHS["2d tuples"],
    "2d avgpool": Arch((2, 6, 6), (Conv(2, 3, padding="reflect"), AvgPool(2), Conv(2, 3, stride=2), AvgPool(None),
                                   Dense(3, activation=None))),
    "2d avgpool s1, unused rows": Arch((1, 7, 7), (Conv(2, 3), AvgPool(3, 2), Conv(2, 2, stride=2, padding="circular"),
                                                   Dense(2, activation=None))),
    "2d maxpool": Arch((1, 6, 6), (Conv(2, 3), MaxPool(2), Dense(2, activation=None))),
    "2d residual": ARCHS["2d residual"],
    "1d zero s2": ARCHS["1d zero s2"],
    "1d avgpool": Arch((2, 10), (Conv(2, 3, padding="reflect"), AvgPool(3, 2), Conv(2, 3), Dense(2, activation=None))),
    "1d residual": Arch((1, 6), (Conv(2, 3), Residual((Conv(2, 3, padding="circular"), Conv(2, 1, activation=None))),
                                 Dense(2, activation=None))),
    "no spatial axes": ARCHS["no spatial axes"],
    "fc family": ARCHS["fc family"],
    "cnn family": ARCHS["cnn family"],
    "resnet family": make_arch("resnet", 4, channels=2, blocks=1, padding="reflect"),
}


@pytest.mark.parametrize("name", list(GRAPH_ARCHS))
def test_arch_and_its_graph_are_the_same_network(name):
    arch = GRAPH_ARCHS[name]
    g = build_graph(arch)
    ens = ArchEnsemble(arch, 1, dtype=F64)
    ens.resample(torch.Generator().manual_seed(3))
    weights, mult = shared_edge_weights(arch, net_weights(ens, 0))

    # the graph has exactly the (input, output) pairs that some kernel entry maps onto, and the
    # variance of each edge is that of the sum of those entries: multiplicity * 2 / fan_in
    stage_of = {s.name: s for s in arch.stages}
    random_edges = {(u, v) for u, v in g.edges if g.nodes[v]["kind"] in ("relu", "linear", "batchnorm")}
    assert random_edges == set(weights)
    for (u, v), m in mult.items():
        fan_in = stage_of[g.nodes[v]["layer"]].fan_in
        var = g.edges[u, v].get("var", Fraction(2, g.in_degree(v)))
        assert var == Fraction(2 * m, fan_in), (u, v, var, m, fan_in)

    dag = DagEnsemble(g, 1, dtype=F64)
    assert set_dag_weights(dag, g, 0, lambda u, v: weights[u, v]) == len(weights)
    logits = [dag.outputs.index(node_id("logits", (k,))) for k in range(arch.num_classes)]

    x = torch.randn(4, 1, *arch.input_shape, dtype=F64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    xf = x.detach().reshape(4, 1, arch.d).clone().requires_grad_(True)
    out_arch = ens(x)
    out_dag = dag(xf)[..., logits]
    torch.testing.assert_close(out_dag, out_arch, rtol=1e-10, atol=1e-10)
    for ga, gd in zip(input_grads(out_arch, x), input_grads(out_dag, xf)):
        torch.testing.assert_close(gd, ga.reshape(4, 1, arch.d), rtol=1e-10, atol=1e-10)
        assert ga.abs().sum() > 0


def test_graph_consistency_check_detects_a_wrong_weight():
    """The comparison above is sensitive: one misplaced weight changes logits and gradients."""
    arch = GRAPH_ARCHS["2d circular k2 d2"]
    g = build_graph(arch)
    ens = ArchEnsemble(arch, 1, dtype=F64)
    ens.resample(torch.Generator().manual_seed(3))
    weights, _ = shared_edge_weights(arch, net_weights(ens, 0))
    victim = next(iter(weights))
    dag = DagEnsemble(g, 1, dtype=F64)
    set_dag_weights(dag, g, 0, lambda u, v: weights[u, v] * (1.5 if (u, v) == victim else 1.0))
    logits = [dag.outputs.index(node_id("logits", (k,))) for k in range(arch.num_classes)]
    x = torch.randn(4, 1, *arch.input_shape, dtype=F64, generator=torch.Generator().manual_seed(5))
    assert not torch.allclose(dag(x.reshape(4, 1, -1))[..., logits], ens(x))


# ============================================================================================
# DagEnsemble semantics on a hand-made DAG, node by node
# ============================================================================================

def hand_dag() -> nx.DiGraph:
    g = nx.DiGraph(name="hand")
    g.add_nodes_from(["x0", "x1", "x2", "x3"], kind="input")
    kinds = {"a": "relu", "b": "linear", "c": "avgpool", "s": "sum", "m": "maxpool", "n": "batchnorm",
             "o1": "linear", "o2": "relu", "o3": "avgpool"}
    for v, k in kinds.items():
        g.add_node(v, kind=k)
    g.add_edges_from([("x0", "a"), ("x1", "a"), ("x3", "a"), ("x1", "b"), ("x2", "b"),
                      ("a", "c"), ("b", "c"), ("x2", "c"),
                      ("a", "s"), ("c", "s"),
                      ("b", "m"), ("s", "m"), ("x0", "m"),
                      ("a", "n"), ("m", "n"),
                      ("n", "o1"), ("c", "o1"), ("x3", "o1"),
                      ("s", "o2"), ("m", "o2"),
                      ("n", "o3"), ("b", "o3")])
    g.edges["x0", "a"]["var"] = Fraction(1, 3)
    g.edges["c", "o1"]["var"] = Fraction(5, 2)
    return g


def node_by_node(g: nx.DiGraph, w: dict, x: torch.Tensor) -> torch.Tensor:
    """``x`` of shape ``(batch, n_inputs)``; returns ``(batch, n_outputs)`` for one network."""
    kinds = dict(g.nodes(data="kind"))
    inputs = [n for n in g.nodes if kinds[n] == "input"]
    val = {n: x[:, i] for i, n in enumerate(inputs)}
    for v in nx.topological_sort(g):
        if v in val:
            continue
        preds = list(g.pred[v])
        k = kinds[v]
        if k == "avgpool":
            z = sum(val[u] for u in preds) / len(preds)
        elif k in ("sum", "sumrelu"):
            z = sum(val[u] for u in preds)
            z = torch.relu(z) if k == "sumrelu" else z
        elif k == "maxpool":
            z = torch.stack([val[u] for u in preds]).amax(0)
        else:
            z = sum(w[u, v] * val[u] for u in preds)
            if k == "batchnorm":
                z = (z - z.mean()) / torch.sqrt(z.var(unbiased=False) + 1e-5)
            if k in ("relu", "batchnorm"):
                z = torch.relu(z)
        val[v] = z
    outputs = [n for n in g.nodes if kinds[n] != "input" and g.out_degree(n) == 0]
    return torch.stack([val[o] for o in outputs], dim=1)


def test_dag_ensemble_computes_every_node_kind():
    g = hand_dag()
    n_nets, batch = 2, 6
    dag = DagEnsemble(g, n_nets, dtype=F64)
    assert dag.outputs == ["o1", "o2", "o3"] and dag.inputs == ["x0", "x1", "x2", "x3"]
    rng = np.random.default_rng(0)
    w = [{e: float(rng.normal()) for e in g.edges} for _ in range(n_nets)]
    for i in range(n_nets):
        set_dag_weights(dag, g, i, lambda u, v, i=i: w[i][u, v])
    x = torch.randn(batch, n_nets, 4, dtype=F64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = dag(x)
    assert out.shape == (batch, n_nets, 3)
    for i in range(n_nets):
        xi = x.detach()[:, i].clone().requires_grad_(True)
        ref = node_by_node(g, w[i], xi)
        torch.testing.assert_close(out[:, i], ref, rtol=1e-10, atol=1e-10)
        for k in range(3):
            gd, = torch.autograd.grad(out[:, i, k].sum(), x, retain_graph=True)
            gr, = torch.autograd.grad(ref[:, k].sum(), xi, retain_graph=True)
            torch.testing.assert_close(gd[:, i], gr, rtol=1e-10, atol=1e-10)
            assert gd[:, 1 - i].abs().max() == 0          # networks do not see each other's inputs


def test_dag_ensemble_applies_the_relu_after_a_sum():
    """A ``sumrelu`` node: the sum of its inputs (weights 1), then a ReLU, in value and gradient."""
    g = nx.DiGraph(name="sumrelu")
    g.add_nodes_from(["x0", "x1", "x2"], kind="input")
    g.add_nodes_from(["a", "b"], kind="relu")
    g.add_node("s", kind="sumrelu")
    g.add_node("o", kind="linear")
    g.add_edges_from([("x0", "a"), ("x1", "a"), ("x1", "b"), ("x2", "b"), ("a", "s"), ("b", "s"), ("x0", "s"),
                      ("s", "o"), ("a", "o")])
    dag = DagEnsemble(g, 1, dtype=F64)
    w = {e: float(v) for e, v in zip(g.edges, np.random.default_rng(3).normal(size=g.number_of_edges()))}
    set_dag_weights(dag, g, 0, lambda u, v: w[u, v])
    x = torch.randn(64, 1, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    ref = node_by_node(g, w, x[:, 0])
    torch.testing.assert_close(dag(x)[:, 0], ref, rtol=1e-12, atol=1e-12)
    # the ReLU acts: some inputs switch the sum off (a plain sum would differ there)
    plain = g.copy()
    plain.nodes["s"]["kind"] = "sum"
    assert not torch.allclose(node_by_node(plain, w, x[:, 0]), ref)


@pytest.mark.parametrize("init", ["he", "lecun"])
def test_dag_weights_have_the_edge_variances(init):
    g = hand_dag()
    n = 20000
    dag = DagEnsemble(g, n, init=init)
    dag.resample(torch.Generator().manual_seed(0))
    gens = dag_generations(g)
    scale = 1.0 if init == "he" else 0.5
    seen = 0
    for gi, (blocks, ws) in enumerate(zip(dag.blocks, dag.weights)):
        for b, w in zip(blocks, ws):
            for e, (si, di) in enumerate(zip(b.src_idx.tolist(), b.dst_idx.tolist())):
                u, v = gens[b.src_gen][si], gens[gi][di]
                if not bool(b.is_random[e]):
                    assert g.nodes[v]["kind"] in ("avgpool", "sum", "maxpool")
                    continue
                var = float(g.edges[u, v].get("var", Fraction(2, g.in_degree(v)))) * scale
                sample = w[:, e].double()
                assert abs(sample.var().item() / var - 1) < 5 * math.sqrt(2 / n), (u, v)
                seen += 1
    assert seen == sum(1 for _, v in g.edges if g.nodes[v]["kind"] in ("relu", "linear", "batchnorm"))


# ============================================================================================
# what measure() reports
# ============================================================================================

def test_measure_reports_the_statistics_it_names():
    """Rebuild one chunk by hand (same generator stream: weights, then inputs, then labels) and
    recompute every statistic from per-sample gradients."""
    arch = Arch((2, 4, 4), (Conv(3, 3, padding="circular"), AvgPool(2), Dense(5, activation=None)))
    n, batch, logits, eps, seed = 6, 3, 2, 0.25, 11
    opt = MeasureOptions(nets=n, chunk=n, inputs_per_net=batch, logits=logits, eps=eps, seed=seed, device="cpu",
                         dtype="float64", implicit_dense=False)  # explicit weights: the stream can be replayed
    m = measure(arch, opt, coord_groups=np.arange(arch.d))
    assert m.n_nets == n and m.d == arch.d == 32 and m.px == 4 and m.inputs_per_net == batch
    assert m.outputs == ("mean over logits[0]..logits[1]",)

    g = chunk_generator(seed, (0,), torch.device("cpu"))
    ens = ArchEnsemble(arch, n, dtype=F64)
    ens.resample(g)
    x = torch.empty(batch, n, *arch.input_shape, dtype=F64).normal_(generator=g)
    labels = torch.randint(0, 5, (batch, n), generator=g)
    expect = {s: np.zeros(n) for s in STATISTICS}
    coord = np.zeros((n, arch.d))
    per_input = np.zeros((batch, n))                    # ||grad f||^2 per input, mean over the logits
    for i in range(n):
        w = net_weights(ens, i)
        for b in range(batch):
            xb = x[b:b + 1, i].clone().requires_grad_(True)
            f = reference_forward(arch, w, xb)[0]
            for k in range(logits):
                gk, = torch.autograd.grad(f[k], xb, retain_graph=True)
                gk = gk.reshape(-1).numpy()
                norms = {"grad_logit_l1": np.abs(gk).sum(), "grad_logit_l2_sq": (gk ** 2).sum(),
                         "grad_logit_l2": np.sqrt((gk ** 2).sum()), "grad_logit_linf": np.abs(gk).max()}
                for s, v in norms.items():
                    expect[s][i] += v / (batch * logits)
                coord[i] += gk ** 2 / (batch * logits)
                per_input[b, i] += (gk ** 2).sum() / logits
            loss = torch.nn.functional.cross_entropy(f[None], labels[b, i][None])
            gl, = torch.autograd.grad(loss, xb, retain_graph=True)
            gl = gl.reshape(-1).numpy()
            # dL/dx = sum_k (q_k - [k = c]) df_k/dx (eq. 9)
            q = torch.softmax(f.detach(), 0).numpy()
            jac = np.stack([torch.autograd.grad(f[k], xb, retain_graph=True)[0].reshape(-1).numpy() for k in range(5)])
            np.testing.assert_allclose(gl, (q - np.eye(5)[labels[b, i]]) @ jac, rtol=1e-9, atol=1e-12)
            for s, v in {"grad_loss_l1": np.abs(gl).sum(), "grad_loss_l2": np.sqrt((gl ** 2).sum()),
                         "grad_loss_linf": np.abs(gl).max(), "damage_l1": eps * np.abs(gl).sum()}.items():
                expect[s][i] += v / batch
    for s in STATISTICS:
        assert m.per_net[s].shape == (n, 1)
        np.testing.assert_allclose(m.per_net[s][:, 0], expect[s], rtol=1e-9, err_msg=s)
    np.testing.assert_allclose(m.group_sums[:, 0, :], coord, rtol=1e-9)
    np.testing.assert_allclose(m.coord_mean[0], coord.mean(0), rtol=1e-9)
    np.testing.assert_allclose(m.coord_se[0], coord.std(0, ddof=1) / math.sqrt(n), rtol=1e-6)
    mean, se = m.mean_se("grad_logit_l2_sq")
    assert mean == pytest.approx(expect["grad_logit_l2_sq"].mean(), rel=1e-12)
    assert se == pytest.approx(expect["grad_logit_l2_sq"].std(ddof=1) / math.sqrt(n), rel=1e-9)
    # the per-coordinate map adds up to ||grad f||^2
    assert m.coord_mean.sum() == pytest.approx(mean, rel=1e-9)
    # the intraclass correlation of ||grad f||^2 between the inputs of one network, against the
    # F-statistic reference on the replayed per-input values (not a range: the value itself)
    np.testing.assert_allclose(per_input.mean(0), expect["grad_logit_l2_sq"], rtol=1e-9)
    assert m.icc == pytest.approx(_icc_from_f(per_input), rel=1e-9)

    frame = m.to_frame()
    assert list(frame["statistic"]) == list(STATISTICS)
    assert set(frame.columns) >= {"arch", "d", "px", "statistic", "output", "mean", "stderr", "n_nets"}
    assert (frame["n_nets"] == n).all()


def test_measure_on_a_dag_keeps_outputs_apart():
    """Every output of a DAG gets its own column, computed from its own gradient.

    Replays the chunks (same generator stream as ``measure()``: weights, then inputs, then labels)
    through :class:`DagEnsemble` in float64 and recomputes every per-network statistic and the
    per-coordinate map output by output.  Catches: columns permuted or all taken from output 0,
    outputs averaged together as an architecture's exchangeable logits are, gradients of the sum of
    the outputs, a coordinate map of the wrong output, the loss statistics of one output only.
    (Every output of ``hand_dag`` depends on every input, so "non-zero" checks could not tell
    these apart.)
    """
    g = hand_dag()
    n, chunk, batch, seed = 10, 6, 4, 3
    m = measure(g, MeasureOptions(nets=n, chunk=chunk, inputs_per_net=batch, device="cpu", dtype="float64",
                                  seed=seed))
    assert m.outputs == ("o1", "o2", "o3") and m.input_names == ("x0", "x1", "x2", "x3") and m.px is None
    for s in STATISTICS:
        assert m.per_net[s].shape == (n, 3 if s in LOGIT_STATISTICS else 1)
    assert m.coord_mean.shape == (3, 4)

    want = {s: [] for s in STATISTICS}
    coord = []
    for j, size in enumerate((chunk, n - chunk)):          # two chunks: 6 networks, then 4
        gen = chunk_generator(seed, (j,), torch.device("cpu"))
        dag = DagEnsemble(g, size, dtype=F64)
        dag.resample(gen)
        x = torch.empty(batch, size, 4, dtype=F64).normal_(generator=gen).requires_grad_(True)
        labels = torch.randint(0, 3, (batch, size), generator=gen)
        out = dag(x)
        grads = torch.stack([gk for gk in input_grads(out, x)], 2)        # (batch, nets, output, input)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, 3), labels.reshape(-1), reduction="sum")
        gl, = torch.autograd.grad(loss, x)
        for key, v in {"grad_logit_l1": grads.abs().sum(-1), "grad_logit_l2_sq": grads.square().sum(-1),
                       "grad_logit_l2": grads.square().sum(-1).sqrt(), "grad_logit_linf": grads.abs().amax(-1),
                       "grad_loss_l1": gl.abs().sum(-1, keepdim=True),
                       "grad_loss_l2": gl.square().sum(-1, keepdim=True).sqrt(),
                       "grad_loss_linf": gl.abs().amax(-1, keepdim=True),
                       "damage_l1": gl.abs().sum(-1, keepdim=True)}.items():  # eps = 1
            want[key].append(v.mean(0).detach().numpy())
        coord.append(grads.square().mean(0).detach().numpy())
    for s in STATISTICS:
        np.testing.assert_allclose(m.per_net[s], np.concatenate(want[s]), rtol=1e-9, err_msg=s)
    np.testing.assert_allclose(m.coord_mean, np.concatenate(coord).mean(0), rtol=1e-9)
    # the three outputs really differ, so a permutation or a copy of one column would be caught
    cols = np.concatenate(want["grad_logit_l2_sq"])
    assert min(np.abs(cols[:, a] - cols[:, b]).max() for a, b in ((0, 1), (0, 2), (1, 2))) > 1e-3 * cols.max()


# --------------------------------------------------------------------------------------------
# intraclass correlation between the inputs of one network
# --------------------------------------------------------------------------------------------

def _icc_of(per_input: np.ndarray, chunks: int = 1) -> float | None:
    """``icc`` on a ``(inputs, networks)`` table, reduced chunk by chunk to per-network means and
    within sums of squares as ``measure()`` does, the chunks' statistics concatenated."""
    parts = np.array_split(per_input, chunks, axis=1)
    means = [p.mean(0) for p in parts]
    ss = [((p - m) ** 2).sum(0) for p, m in zip(parts, means)]
    return icc(np.concatenate(means), np.concatenate(ss), per_input.shape[0])


def _icc_from_f(per_input: np.ndarray) -> float:
    """Independent reference: ICC(1) = (F - 1) / (F + k - 1) with F the one-way ANOVA F statistic of
    ``scipy.stats.f_oneway`` (networks as groups of ``k`` inputs)."""
    k = per_input.shape[0]
    f = f_oneway(*per_input.T).statistic
    return float((f - 1) / (f + k - 1))


def test_icc_on_hand_computed_tables():
    """One-way ANOVA ICC(1) = (MSB - MSW) / (MSB + (k-1) MSW), by hand.

    Networks (columns) with k = 2 inputs each: (1, 3), (2, 2), (5, 7).  Means 2, 2, 6, grand mean
    10/3; MSB = 2 * (16/9 + 16/9 + 64/9) / 2 = 32/3; MSW = (1 + 1 + 0 + 0 + 1 + 1) / 3 = 4/3;
    ICC = (28/3) / (36/3) = 7/9.  Split over two chunks it must not change (chunks are concatenated
    along the network axis).  (1, 3), (3, 1): MSB = 0, MSW = 2, ICC = -1 = -1/(k-1), the lower
    bound: an implementation clamping to [0, 1] fails here.
    """
    table = np.array([[1.0, 2.0, 5.0], [3.0, 2.0, 7.0]])
    assert _icc_of(table) == pytest.approx(7 / 9, rel=1e-12)
    assert _icc_of(table, chunks=2) == pytest.approx(7 / 9, rel=1e-12)
    # transposed (3 inputs to each of 2 networks): MSB = 8/3, MSW = 17/3, ICC = -3 / (8/3 + 34/3) = -3/14;
    # an implementation reading the axes the other way round gives 7/9 here and -3/14 above
    assert _icc_of(table.T.copy()) == pytest.approx(-3 / 14, rel=1e-12)
    assert _icc_of(np.array([[1.0, 3.0], [3.0, 1.0]])) == pytest.approx(-1.0, rel=1e-12)
    # k = 3: networks (1, 2, 3), (4, 4, 4): means 2 and 4, grand mean 3; MSB = 3 * (1 + 1) / 1 = 6,
    # MSW = (1 + 0 + 1) / (2 * 2) = 1/2, ICC = (11/2) / (6 + 2 * 1/2) = 11/14
    assert _icc_of(np.array([[1.0, 4.0], [2.0, 4.0], [3.0, 4.0]])) == pytest.approx(11 / 14, rel=1e-12)
    # nothing to estimate
    assert icc(np.zeros(0), np.zeros(0), 2) is None
    assert _icc_of(np.array([[1.0], [2.0]])) is None                 # one network
    assert _icc_of(np.full((3, 4), 2.5)) is None                     # no variance at all


@pytest.mark.parametrize("k,var_b,var_w", [(2, 1.0, 1.0), (4, 3.0, 1.0), (4, 0.25, 1.0), (8, 0.0, 1.0)])
def test_icc_recovers_the_icc_of_a_random_effects_model(k, var_b, var_w):
    """y = b_net + e_input with b ~ N(0, var_b), e ~ N(0, var_w): ICC = var_b / (var_b + var_w).

    20,000 networks; tolerance 5 asymptotic standard errors of ICC(1),
    sqrt(2 (1-r)^2 (1+(k-1) r)^2 / (k (k-1) (n-1))) (0.0013 to 0.0053 here).  Measured biases of
    plausible wrong estimators on these tables, all beyond the tolerance for some case: MSW divided
    by n k instead of n (k-1): +0.02 to +0.21; the k = 2 formula (MSB - MSW) / (MSB + MSW) for
    every k: +0.11 and +0.14 at k = 4; Var(network means) / Var(all values): +0.06 to +0.25.  On
    the same data it equals the F-statistic reference to 1e-10.
    """
    n = 20_000
    rng = np.random.default_rng(k * 100 + int(var_b * 4))
    table = rng.normal(0, math.sqrt(var_b), n) + rng.normal(0, math.sqrt(var_w), (k, n))
    r = var_b / (var_b + var_w)
    se = math.sqrt(2 * (1 - r) ** 2 * (1 + (k - 1) * r) ** 2 / (k * (k - 1) * (n - 1)))
    got = _icc_of(table, chunks=3)
    assert abs(got - r) < 5 * se, (got, r, se)
    assert got == pytest.approx(_icc_from_f(table), rel=1e-10, abs=1e-12)


def test_intraclass_correlation_is_reported_with_several_inputs():
    """``measure()`` reports ICC(1) of the per-input ``||grad f||^2`` only with several inputs per
    network; its value is checked against a replay in test_measure_reports_the_statistics_it_names."""
    arch = Arch((1, 6, 6), (Conv(4, 3, padding="circular"), Dense(3, activation=None)))
    assert measure(arch, MeasureOptions(nets=30, device="cpu")).icc is None


@pytest.mark.parametrize("layout", ["flat", "shaped"])
def test_inputs_from_an_npy_file(tmp_path, layout):
    arch = make_arch("fc", 2, width=8, depth=1)            # d = 12
    table = np.random.default_rng(0).uniform(-1, 1, size=(7, 3, 2, 2))
    path = tmp_path / "x.npy"
    np.save(path, table.reshape(7, 12) if layout == "flat" else table)
    m = measure(arch, MeasureOptions(nets=20, inputs=path, device="cpu"))
    m2 = measure(arch, MeasureOptions(nets=20, inputs=str(path), device="cpu"))
    np.testing.assert_array_equal(m.per_net["grad_loss_l1"], m2.per_net["grad_loss_l1"])
    normal = measure(arch, MeasureOptions(nets=20, device="cpu"))
    assert not np.array_equal(m.per_net["grad_loss_l1"], normal.per_net["grad_loss_l1"])


def test_bad_measure_inputs(tmp_path):
    arch = make_arch("fc", 2, width=8, depth=1)
    np.save(tmp_path / "wrong.npy", np.zeros((5, 13)))
    with pytest.raises(OptionError, match=r"\(5, 13\)"):
        measure(arch, MeasureOptions(nets=2, inputs=tmp_path / "wrong.npy", device="cpu"))
    with pytest.raises(SpecFileError, match="nosuch.npy"):
        measure(arch, MeasureOptions(nets=2, inputs=tmp_path / "nosuch.npy", device="cpu"))
    for kwargs, needle in [({"nets": 0}, "nets=0"), ({"rel_se": 2}, "rel_se=2"), ({"rel_se": 0}, "rel_se=0"),
                           ({"seed": -1}, "seed=-1"), ({"eps": 0.0}, "eps=0.0"), ({"chunk": 0}, "chunk=0"),
                           ({"inputs": "poisson"}, "poisson"), ({"min_nets": 100, "max_nets": 10}, "min_nets"),
                           ({"nets": True}, "nets=True")]:
        with pytest.raises(OptionError, match=needle):
            MeasureOptions(**kwargs)
    # init, dtype and device are checked when the options are made, naming the value and the choices
    for kwargs, needle in [({"dtype": "float16"}, "dtype='float16' is unknown; expected one of 'float32', 'float64'"),
                           ({"init": "xavier"}, "init='xavier' is unknown; expected one of 'he', 'lecun'"),
                           ({"device": "tpu"}, "device='tpu' is unknown; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
                           ({"device": "cuda:x"}, "device='cuda:x'"), ({"first_chunk": -1}, "first_chunk=-1"),
                           ({"implicit_dense": "yes"}, "implicit_dense='yes'")]:
        with pytest.raises(OptionError, match=re.escape(needle)):
            MeasureOptions(nets=2, **kwargs)
    with pytest.raises(OptionError, match="logits=11"):
        measure(arch, MeasureOptions(nets=2, logits=11))
    bn = make_arch("cnn", 8, channels=2, batchnorm=True)
    with pytest.raises(OptionError, match="BatchNorm"):
        measure(bn, MeasureOptions(nets=2, inputs_per_net=1, device="cpu"))
    with pytest.raises(OptionError, match="coord_groups"):
        measure(arch, MeasureOptions(nets=2, device="cpu"), coord_groups=np.zeros(5, dtype=int))
    with pytest.raises(OptionError, match="list"):
        measure([1, 2], MeasureOptions(nets=2, device="cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        measure(make_arch("fc", 2, width=4, depth=1), MeasureOptions(nets=2, device="cuda:0"))
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("opt_out", [False, True])
def test_keep_freed_memory_sets_glibc_thresholds_unless_opted_out(opt_out):
    """measure() raises glibc's mmap/trim thresholds once; INITSTATS_NO_MALLOPT=1 leaves them alone."""
    env = {k: v for k, v in os.environ.items() if k != "INITSTATS_NO_MALLOPT"}
    if opt_out:
        env["INITSTATS_NO_MALLOPT"] = "1"
    code = ("from initstats.empirical.common import keep_freed_memory as k; "
            "print(k(), k())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    expected = not opt_out and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert done.stdout.split() == [str(expected)] * 2


def _numerics_flags():
    return (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled())


def test_strict_numerics_on_cuda_sets_and_restores_the_flags():
    """The flags are process-wide, so no GPU is needed to check them; the CPU context changes nothing."""
    before = _numerics_flags()
    with strict_numerics(torch.device("cpu")):
        assert _numerics_flags() == before
    with pytest.raises(KeyError):  # restored on errors too
        with strict_numerics(torch.device("cuda")):
            assert _numerics_flags() == (False, False, True, False, True)
            assert torch.is_deterministic_algorithms_warn_only_enabled()
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
            raise KeyError
    assert _numerics_flags() == before


def test_strict_numerics_restores_the_cublas_variable(monkeypatch):
    """An unset CUBLAS_WORKSPACE_CONFIG is set inside the context and unset again after it; a
    value the user set is kept."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with strict_numerics(torch.device("cuda")):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with strict_numerics(torch.device("cuda")):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_measure_keeps_freed_memory_only_while_it_runs(monkeypatch):
    """measure() raises glibc's thresholds for its run and sets glibc's defaults again afterwards
    (recorded through a stand-in for mallopt), also when it fails; not on CUDA."""
    import initstats.empirical.common as common

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(common, "_mallopt", lambda param, value: calls.append((param, value)) or True)
    monkeypatch.setattr(common.platform, "libc_ver", lambda: ("glibc", "2.35"))
    monkeypatch.delenv("INITSTATS_NO_MALLOPT", raising=False)
    monkeypatch.setattr(common, "_kept_for_process", False)
    measure(make_arch("fc", 2, width=4, depth=1), MeasureOptions(nets=2, device="cpu"))
    kept, default = [(-3, 32 << 20), (-1, 256 << 20)], [(-3, 128 * 1024), (-1, 128 * 1024)]
    assert calls == kept + default
    calls.clear()
    with pytest.raises(KeyError):
        with common.freed_memory_kept(torch.device("cpu")):
            raise KeyError
    assert calls == kept + default
    calls.clear()
    with common.freed_memory_kept(torch.device("cuda")):
        pass
    assert calls == []


def test_init_gain():
    assert init_gain("he") == 2.0 and init_gain("lecun") == 1.0
    with pytest.raises(OptionError, match="'orthogonal'"):
        init_gain("orthogonal")


# ============================================================================================
# reproducibility
# ============================================================================================

def _same(a, b) -> bool:
    return all(np.array_equal(a.per_net[s], b.per_net[s]) for s in STATISTICS) and np.array_equal(a.coord_mean,
                                                                                                 b.coord_mean)


@pytest.mark.parametrize("which", ["arch", "dag"])
def test_same_seed_same_numbers_different_seed_different_numbers(which):
    net = make_arch("cnn", 8, channels=2, padding="circular") if which == "arch" else hand_dag()
    opt = MeasureOptions(nets=37, chunk=16, inputs_per_net=2, device="cpu", seed=5)
    a, b = measure(net, opt), measure(net, opt)
    assert a.n_nets == 37 and _same(a, b)
    c = measure(net, MeasureOptions(nets=37, chunk=16, inputs_per_net=2, device="cpu", seed=6))
    assert not any(np.array_equal(a.per_net[s], c.per_net[s]) for s in STATISTICS)


def test_more_networks_extend_the_sample_and_adaptive_sampling_is_a_prefix():
    arch = make_arch("fc", 2, width=16, depth=2)
    small = measure(arch, MeasureOptions(nets=48, chunk=16, device="cpu"))
    large = measure(arch, MeasureOptions(nets=100, chunk=16, device="cpu"))  # last chunk of 4
    for s in STATISTICS:
        np.testing.assert_array_equal(large.per_net[s][:48], small.per_net[s])
        # every chunk draws its own networks
        chunks = [tuple(large.per_net[s][i:i + 4, 0]) for i in range(0, 100, 16)]
        assert len(set(chunks)) == len(chunks), s
    # adaptive sampling draws the same chunks as a fixed run, and stops at the same count every time
    adaptive = [measure(arch, MeasureOptions(rel_se=0.05, min_nets=32, max_nets=4000, chunk=16, device="cpu"))
                for _ in range(2)]
    assert _same(*adaptive)
    n = adaptive[0].n_nets
    # well above min_nets (measured: 368), so the stopping rule below is really exercised; a rule
    # that stopped at min_nets or ran to max_nets fails here
    assert 32 < n < 4000 and n % 16 == 0
    fixed = measure(arch, MeasureOptions(nets=n, chunk=16, device="cpu"))
    assert _same(adaptive[0], fixed)
    mean, se = fixed.mean_se("grad_logit_l2_sq")
    assert se / mean <= 0.05
    assert fixed.rel_se_reached <= 0.05
    # one chunk fewer would not have reached the target
    assert not precision_reached(fixed.per_net["grad_logit_l2_sq"][: n - 16], 0.05)


@pytest.mark.parametrize("network", ["arch", "dag"])
def test_measurements_of_consecutive_chunks_merge_into_the_whole_run(network):
    """Sufficient statistics that add: chunks 0-2 and chunks 3-5 (``first_chunk=3``) merge into the
    run of chunks 0-5, per-network values bit for bit and per-coordinate sums up to rounding."""
    net = make_arch("fc", 2, width=16, depth=2) if network == "arch" else hand_dag()
    kw = dict(chunk=16, device="cpu", inputs_per_net=3, seed=4)
    groups = np.arange(net.d if network == "arch" else 4) % 2
    whole = measure(net, MeasureOptions(nets=96, **kw), coord_groups=groups)
    first = measure(net, MeasureOptions(nets=48, **kw), coord_groups=groups)
    second = measure(net, MeasureOptions(nets=48, first_chunk=3, **kw), coord_groups=groups)
    both = first.merge(second)
    assert both.n_nets == 96
    for s in STATISTICS:
        np.testing.assert_array_equal(both.per_net[s], whole.per_net[s])
        # the second part really drew other networks than the first
        assert not np.array_equal(first.per_net[s], second.per_net[s])
    np.testing.assert_array_equal(both.group_sums, whole.group_sums)
    np.testing.assert_allclose(both.coord_mean, whole.coord_mean, rtol=1e-12)
    np.testing.assert_allclose(both.coord_se, whole.coord_se, rtol=1e-9)
    assert both.icc == pytest.approx(whole.icc, rel=1e-12)
    # parts of different networks or sizes do not merge
    other = measure(make_arch("fc", 3, width=16, depth=2), MeasureOptions(nets=16, chunk=16, device="cpu"))
    with pytest.raises(OptionError, match="different"):
        first.merge(other)


def test_adaptive_sampling_waits_for_the_noisiest_output():
    g = hand_dag()
    m = measure(g, MeasureOptions(rel_se=0.08, min_nets=32, chunk=32, device="cpu", inputs_per_net=4))
    rel = [m.mean_se("grad_logit_l2_sq", k)[1] / m.mean_se("grad_logit_l2_sq", k)[0] for k in range(3)]
    assert max(rel) <= 0.08
    # one chunk fewer: some output had not reached the target yet
    n = m.n_nets
    col = m.per_net["grad_logit_l2_sq"]
    assert n > 32                                       # measured: 2048
    assert not precision_reached(col[: n - 32], 0.08)

    # and it is not output 0 that decided: output 0 alone would have stopped earlier (measured: 320),
    # so a rule watching only the first output fails the checks above
    def first_stop(k: int) -> int:
        return next(i for i in range(32, n + 1, 32) if precision_reached(col[:i, k:k + 1], 0.08))

    assert first_stop(0) < n and max(first_stop(k) for k in range(3)) == n


def test_a_heavy_tail_keeps_adaptive_sampling_going_until_the_calibrated_interval_is_narrow():
    # Pareto(1.8) values: the plain relative SE understates the uncertainty of the mean, and the
    # verdict's calibrated interval is wider; stopping on the plain SE would leave the claim
    # inconclusive, so the stopping rule also asks for the calibrated width
    rng = np.random.default_rng(5)
    heavy = (rng.pareto(1.8, size=(3000, 1)) + 1.0)
    plain = heavy[:, 0].std(ddof=1) / math.sqrt(len(heavy)) / heavy[:, 0].mean()
    effective = effective_rel_se(heavy)
    assert effective > 1.2 * plain                     # measured: 1.71x
    target = (plain + effective) / 2
    assert not precision_reached(heavy, target) and precision_reached(heavy, effective * 1.001)
    # a light tail: the calibrated width is the normal one up to bootstrap noise
    light = rng.normal(10.0, 1.0, size=(3000, 2))
    plain_light = max(light.std(0, ddof=1) / math.sqrt(len(light)) / light.mean(0))
    assert plain_light <= effective_rel_se(light) <= 1.1 * plain_light


def test_adaptive_sampling_stops_at_max_nets():
    arch = make_arch("fc", 2, width=8, depth=1)
    m = measure(arch, MeasureOptions(rel_se=0.001, min_nets=10, max_nets=100, chunk=64, device="cpu"))
    assert m.n_nets == 100                              # 64 + 36, not 128
    fixed = measure(arch, MeasureOptions(nets=100, chunk=64, device="cpu"))
    assert _same(m, fixed)


def test_default_chunk_does_not_depend_on_the_call():
    arch = make_arch("fc", 4, width=32, depth=2)
    runs = [measure(arch, MeasureOptions(nets=300, device="cpu", seed=2)) for _ in range(2)]
    assert _same(*runs)
    adaptive = [measure(arch, MeasureOptions(rel_se=0.1, device="cpu", seed=2)) for _ in range(2)]
    assert _same(*adaptive)
    # nor on the mode: the adaptive run (one default chunk, 256 networks) is a prefix of the fixed
    # run; a chunk chosen from nets, max_nets or the mode would draw other networks, as chunk=64 does
    n = adaptive[0].n_nets
    assert n < 300 and all(np.array_equal(runs[0].per_net[s][:n], adaptive[0].per_net[s]) for s in STATISTICS)
    other = measure(arch, MeasureOptions(nets=n, chunk=64, device="cpu", seed=2))
    assert not np.array_equal(other.per_net["grad_logit_l2_sq"], adaptive[0].per_net["grad_logit_l2_sq"])


# ============================================================================================
# statistical agreement with the exact engine (seeded, CPU)
# ============================================================================================

def _verdict(mean: float, se: float, predicted: float, confidence: float = 0.99, detectable: float = 0.05,
             power: float = 0.8) -> str:
    """Two-sided z-test of ``E = predicted``: 'fail' when ``|mean - predicted| > z se``; 'pass' only when
    the standard error is also small enough to detect a relative error ``detectable`` with ``power``
    (else 'inconclusive').

    Local to these tests, so that the engine's tests do not move with the calibration of
    ``initstats.claims`` (tested there).  Every test below checks both directions: the exact value
    passes and values 5 % too high *and* 5 % too low fail (measured at these fixed seeds: |z| < 1 for
    the exact values, |z| > 3.8 for the 5 % errors, against the threshold 2.58), so a measurement biased by a few per cent, or
    a verdict that always says 'pass', fails them.
    """
    z = float(norm.ppf(0.5 + confidence / 2))
    if abs(mean - predicted) > z * se:
        return "fail"
    if (z + float(norm.ppf(power))) * se > detectable * abs(predicted):
        return "inconclusive"
    return "pass"


def _passes(m, predicted: float, output: int = 0) -> str:
    mean, se = m.mean_se("grad_logit_l2_sq", output)
    return _verdict(mean, se, predicted)


def _pins(m, predicted: float, output: int = 0) -> None:
    """The exact value passes; 5 % above and 5 % below fail."""
    got = m.mean_se("grad_logit_l2_sq", output)
    assert _passes(m, predicted, output) == "pass", (got, predicted)
    assert _passes(m, 1.05 * predicted, output) == "fail", (got, predicted)
    assert _passes(m, 0.95 * predicted, output) == "fail", (got, predicted)


def test_fc_matches_two():
    m = fc_measurement()
    assert m.n_nets == FC_NETS
    assert float(analyse(make_arch("fc", 8, width=64, depth=3)).outputs[0].grad_sq_total) == 2
    _pins(m, 2.0)


CIRCULAR = Arch((2, 8, 8), (Conv(8, 3, padding="circular"), Conv(8, 3, padding="circular"), Dense(4, activation=None)),
                name="circular")


def test_stride_one_circular_cnn_matches_two():
    exact = analyse(CIRCULAR).outputs[0]
    assert exact.symmetric and exact.grad_sq_total == 2
    m = measure(CIRCULAR, MeasureOptions(nets=2000, device="cpu"))
    _pins(m, 2.0)


def _zero_cnn(px: int) -> Arch:
    return Arch((2, px, px), (Conv(8, 3), Conv(8, 3), Dense(4, activation=None)), name="zero")


def test_zero_padding_matches_the_exact_per_edge_prediction():
    preds, ms = {}, {}
    for px in (6, 8):
        arch = _zero_cnn(px)
        preds[px] = float(analyse(arch).outputs[0].grad_sq_total)
        ms[px] = measure(arch, MeasureOptions(nets=2000, device="cpu", seed=px))
        _pins(ms[px], preds[px])
        assert _passes(ms[px], 2.0) == "fail"                       # Theorem 4's 2 does not hold here
    assert preds[6] < preds[8] < 2
    # the measurements themselves tell the two sizes apart
    (m6, s6), (m8, s8) = ms[6].mean_se("grad_logit_l2_sq"), ms[8].mean_se("grad_logit_l2_sq")
    assert (m8 - m6) / math.hypot(s6, s8) > 5


def test_per_coordinate_map_matches_the_exact_map_on_border_rings():
    arch = _zero_cnn(8)
    exact = analyse(arch).outputs[0]
    groups, labels = border_rings(arch.input_shape)
    assert labels == ["border", "ring 1", "rings 2-3"]
    m = measure(arch, MeasureOptions(nets=2000, device="cpu", seed=1), coord_groups=groups)
    pred = np.bincount(groups, weights=exact.grad_sq.to_numpy())
    mean, se = m.group_mean_se()
    conf = 1 - 0.01 / len(labels)
    verdicts = [_verdict(mean[i], se[i], pred[i], confidence=conf, detectable=0.1) for i in range(len(labels))]
    assert verdicts == ["pass"] * len(labels), (mean, se, pred)
    # every ring is pinned: 10 % off in either direction fails
    for f in (0.9, 1.1):
        assert [_verdict(mean[i], se[i], f * pred[i], confidence=conf) for i in range(len(labels))] == \
            ["fail"] * len(labels), (f, mean, se, pred)
    # a map spread uniformly over the coordinates (what (S) would give) is rejected at the border
    uniform = np.bincount(groups) * float(exact.grad_sq_total) / arch.d
    assert _verdict(mean[0], se[0], uniform[0], confidence=conf) == "fail"
    np.testing.assert_allclose(mean.sum(), m.mean_se("grad_logit_l2_sq")[0], rtol=1e-9)


def random_dag(seed: int, n_in: int = 5, n_hidden: int = 8, kinds=("relu", "relu", "linear")) -> nx.DiGraph:
    """A random DAG of ReLU and linear nodes with some explicit variances (no deterministic merges)."""
    rng = np.random.default_rng(seed)
    g = nx.DiGraph(name=f"random{seed}")
    names = [f"x{i}" for i in range(n_in)]
    g.add_nodes_from(names, kind="input")
    for j in range(n_hidden):
        v = f"h{j}"
        g.add_node(v, kind=str(rng.choice(kinds)))
        for u in rng.choice(names, size=int(rng.integers(1, min(4, len(names)) + 1)), replace=False):
            attrs = {"var": Fraction(int(rng.integers(1, 6)), int(rng.integers(1, 6)))} if rng.random() < 0.5 else {}
            g.add_edge(str(u), v, **attrs)
        names.append(v)
    return g


@pytest.mark.parametrize("seed", [0, 1])
def test_dag_without_deterministic_merges_matches_the_exact_prediction(seed):
    g = random_dag(seed)
    exact = analyse(g)
    assert all(o.hypothesis_set == "H" for o in exact.outputs)
    m = measure(g, MeasureOptions(nets=200_000, chunk=50_000, device="cpu", seed=seed))
    by_name = {o.name: float(o.grad_sq_total) for o in exact.outputs}
    assert set(m.outputs) == set(by_name) and len(m.outputs) >= 2
    for k, name in enumerate(m.outputs):
        _pins(m, by_name[name], k)


@pytest.mark.parametrize("k", [2, 3])
def test_deterministic_merge_breaks_h1_by_the_computed_amount(k):
    """x -> k ReLU branches -> sum -> linear output: the branches share the sign of x, so
    E(do/dx)^2 = 2 (k + k(k-1)/pi), above the annealed 2k (THEORY.md section 4b)."""
    g = nx.DiGraph(name="merge")
    g.add_node("x", kind="input")
    g.add_node("s", kind="sum")
    g.add_node("o", kind="linear")
    for i in range(k):
        g.add_node(f"a{i}", kind="relu")
        g.add_edges_from([("x", f"a{i}"), (f"a{i}", "s")])
    g.add_edge("s", "o")
    exact = analyse(g).outputs[0]
    assert exact.hypothesis_set == "H'" and exact.grad_sq_total == 2 * k
    m = measure(g, MeasureOptions(nets=100_000, chunk=50_000, device="cpu"))
    _pins(m, 2 * (k + k * (k - 1) / math.pi))
    assert _passes(m, 2 * k) == "fail"


def test_lecun_init_matches_the_halved_variances():
    arch = make_arch("fc", 4, width=64, depth=2)
    lecun = float(analyse(arch, var_scale=Fraction(1, 2)).outputs[0].grad_sq_total)
    assert lecun == 2 * 0.5 ** 3
    m = measure(arch, MeasureOptions(nets=2000, init="lecun", device="cpu"))
    _pins(m, lecun)                                 # He's 2 (8x) would not even be close


def test_literal_h1_matches_one():
    arch = with_logit_relu(make_arch("fc", 4, width=128, depth=1))
    assert analyse(arch).outputs[0].grad_sq_total == 1
    m = measure(arch, MeasureOptions(nets=3000, inputs_per_net=16, device="cpu"))
    _pins(m, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("px", [16, 32])
def test_cnn_family_matches_the_exact_prediction_slow(px):
    """The paper's topology (stride-2 downsampling, dilations) with zero and circular padding."""
    for padding in ("circular", "zero"):
        arch = make_arch("cnn", px, channels=8, padding=padding)
        pred = float(analyse(arch).outputs[0].grad_sq_total)
        assert (pred == 2) == (padding == "circular")
        m = measure(arch, MeasureOptions(rel_se=0.01, device="cpu", seed=px))
        assert _passes(m, pred) == "pass", (padding, m.mean_se("grad_logit_l2_sq"), pred)


@pytest.mark.slow
def test_correct_prediction_passes_at_the_stated_rate_on_real_networks_slow():
    """100 independent seeded FC measurements: the true value 2 passes about 99 % of the time."""
    arch = make_arch("fc", 4, width=64, depth=2)
    verdicts = []
    for seed in range(100):
        m = measure(arch, MeasureOptions(nets=3000, device="cpu", seed=seed))
        verdicts.append(_passes(m, 2.0))
    assert verdicts.count("fail") <= 4, verdicts      # P(Binomial(100, 0.01) > 4) < 0.004
    assert verdicts.count("pass") >= 90


# ============================================================================================
# GPU (skipped without one)
# ============================================================================================

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("network", ["fc", "zero cnn", "dag"])
def test_measure_on_cuda_agrees_with_the_exact_prediction(network):
    net = {"fc": make_arch("fc", 8, width=64, depth=3), "zero cnn": _zero_cnn(8), "dag": random_dag(0)}[network]
    exact = analyse(net)
    opt = MeasureOptions(nets=200_000, chunk=50_000, device="cuda") if network == "dag" else \
        MeasureOptions(nets=4000, device="cuda")
    m = measure(net, opt)
    assert m.device.startswith("cuda")
    by_name = {o.name: float(o.grad_sq_total) for o in exact.outputs}
    for k, name in enumerate(m.outputs):
        pred = by_name[name] if network == "dag" else float(exact.outputs[0].grad_sq_total)
        assert _passes(m, pred, k) == "pass"


@pytest.mark.gpu
@cuda
def test_cuda_ensemble_equals_the_cpu_ensemble():
    arch = ARCHS["2d residual"]
    cpu = ArchEnsemble(arch, 3, dtype=F64)
    gpu = ArchEnsemble(arch, 3, dtype=F64, device="cuda")
    cpu.resample(torch.Generator().manual_seed(0))
    for i, w in cpu.weights.items():
        gpu.weights[i].copy_(w)
    x = torch.randn(4, 3, *arch.input_shape, dtype=F64)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-9, atol=1e-9)
    # same seed, same numbers on the GPU, bit for bit (deterministic algorithms, see strict_numerics)
    for net in (arch, random_dag(1)):
        opt = MeasureOptions(nets=64, device="cuda", seed=3)
        a, b = measure(net, opt), measure(net, opt)
        for s in STATISTICS:
            np.testing.assert_array_equal(a.per_net[s], b.per_net[s])
        np.testing.assert_array_equal(a.coord_mean, b.coord_mean)
