"""Neuron-level networkx graphs of architecture specifications.

:func:`build_graph` expands an :class:`~initstats.spec.Arch` into one node per input
coordinate and per neuron.  Node attributes: ``kind`` (``input | relu | linear | avgpool |
sum | maxpool | batchnorm``) and ``layer`` (the stage name).  Edge attribute ``var``: the
variance of the edge's weight, as a :class:`fractions.Fraction`, present only where it differs
from the default ``2 / in-degree`` of hypothesis H3 -- at zero-padded borders (``2 / fan_in``),
where a wrapped kernel lands twice on the same input (the variances add up), and on layers with
a ``var_factor`` (an evaluation-mode BatchNorm folded in).  Edges into
deterministic nodes (``avgpool``, ``sum``, ``maxpool``) carry no ``var``.

Node ids are strings ``'<stage>[<channel>,<position...>]'``, e.g. ``'x[0,3,4]'`` for an input
coordinate and ``'logits[7]'`` for a logit; nodes are added in topological order, and inside a
stage in C order of ``(channel, *position)``.

The graph has ``sum(in-degree)`` edges, which is large for real convolutional networks; the
exact engine answers those from the specification by compression instead
(:func:`initstats.exact.analyse`).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import networkx as nx

from ..spec import SUM_KINDS, Arch, AxisMap, Stage, node_id

__all__ = ["build_graph", "spatial_taps", "count_edges"]


def spatial_taps(axes: tuple[AxisMap, ...], pos: tuple[int, ...]) -> list[tuple[tuple[int, ...], int]]:
    """The input positions read by output position ``pos`` and their kernel multiplicities.

    Examples
    --------
    >>> from initstats.spec import Arch, Conv, Dense
    >>> conv = Arch((1, 8, 8), (Conv(2, 3, padding="circular"), Dense(1, activation=None))).stages[1]
    >>> spatial_taps(conv.axes, (0, 0))[:4]        # the corner's 3x3 window wraps around to row and column 7
    [((0, 0), 1), ((0, 1), 1), ((0, 7), 1), ((1, 0), 1)]
    >>> len(spatial_taps(conv.axes, (0, 0)))
    9
    """
    per_axis = [axes[a].taps[p] for a, p in enumerate(pos)]
    return [(tuple(t[0] for t in combo), math.prod(t[1] for t in combo))
            for combo in itertools.product(*per_axis)]


def _positions(spatial: tuple[int, ...]):
    return itertools.product(*(range(n) for n in spatial))


def _stage_names(stage: Stage) -> list[str]:
    return [node_id(stage.name, idx) for idx in itertools.product(*(range(n) for n in stage.shape))]


def _flat(pos: tuple[int, ...], spatial: tuple[int, ...]) -> int:
    flat = 0
    for p, n in zip(pos, spatial):
        flat = flat * n + p
    return flat


def count_edges(arch: Arch) -> int:
    """Number of edges of the neuron-level graph of ``arch``, without building it.

    Examples
    --------
    >>> from initstats.spec import Arch, Conv, Dense
    >>> small = Arch((1, 4), (Conv(2, 3), Dense(1, activation=None)))
    >>> count_edges(small) == build_graph(small).number_of_edges() == 28
    True
    >>> count_edges(Arch((16, 32, 32), (Conv(16, 3),) * 3 + (Dense(10, activation=None),)))   # too many to build
    6949888
    """
    total = 0
    for stage in arch.stages[1:]:
        if stage.kind in SUM_KINDS:
            total += 2 * stage.size
            continue
        c_in = sum(arch.stages[k].channels for k in stage.sources)
        per_pos = sum(math.prod(len(stage.axes[a].taps[p]) for a, p in enumerate(pos))
                      for pos in _positions(tuple(m.n_out for m in stage.axes)))
        per_pos = per_pos if stage.axes else 1
        total += per_pos * (stage.channels * c_in // stage.groups if stage.mixes_channels else stage.channels)
    return total


def build_graph(arch: Arch) -> nx.DiGraph:
    """The neuron-level DAG of ``arch``.

    Examples
    --------
    >>> from initstats.spec import Arch, Conv, Dense
    >>> g = build_graph(Arch((1, 4), (Conv(2, 3), Dense(1, activation=None))))
    >>> g.number_of_nodes(), g.number_of_edges(), g.nodes['x[0,0]']['kind']
    (13, 28, 'input')
    >>> g.edges['x[0,0]', 'conv1[0,0]']['var']      # border neuron: 2 inputs, He variance 2/3
    Fraction(2, 3)
    """
    g = nx.DiGraph(name=arch.name)
    names: list[list[str]] = []
    for stage in arch.stages:
        stage_names = _stage_names(stage)
        names.append(stage_names)
        g.add_nodes_from(stage_names, kind=stage.kind, layer=stage.name)
        if stage.kind == "input":
            continue
        if stage.kind in SUM_KINDS:
            for s in stage.sources:
                g.add_edges_from(zip(names[s], stage_names))
            continue
        src = arch.stages[stage.sources[0]]
        src_names, src_spatial = names[stage.sources[0]], src.spatial
        block = math.prod(src_spatial)
        # input channel ci of a layer after a Concat: (names of its stage, offset of its channel 0 there)
        chans = [(names[k], c * block) for k in stage.sources for c in range(arch.stages[k].channels)]
        c_in = len(chans)
        plain: list[tuple[str, str]] = []
        weighted: list[tuple[str, str, dict]] = []
        spatial_out = stage.spatial if not stage.is_dense else tuple(1 for _ in src_spatial)
        for pos in _positions(spatial_out):
            taps = spatial_taps(stage.axes, pos)
            if stage.is_pool:
                for c in range(stage.channels):
                    v = stage_names[_flat((c, *pos), (stage.channels, *stage.spatial))]
                    plain.extend((src_names[c * block + _flat(p, src_spatial)], v) for p, _ in taps)
                continue
            two = Fraction(2, stage.fan_in) * stage.var_factor  # an evaluation-mode BatchNorm folded in
            per_group, out_group = c_in // stage.groups, stage.channels // stage.groups
            default = Fraction(2, per_group * len(taps))
            for c in range(stage.channels):
                flat_out = c if stage.is_dense else _flat((c, *pos), (stage.channels, *stage.spatial))
                v = stage_names[flat_out]
                first = c // out_group * per_group  # a grouped convolution reads its group's channels only
                for p, m in taps:
                    base = _flat(p, src_spatial)
                    preds = (chans[ci][0][chans[ci][1] + base] for ci in range(first, first + per_group))
                    if two * m == default:
                        plain.extend((u, v) for u in preds)
                    else:
                        var = two * m
                        weighted.extend((u, v, {"var": var}) for u in preds)
        g.add_edges_from(plain)
        g.add_edges_from(weighted)
    return g
