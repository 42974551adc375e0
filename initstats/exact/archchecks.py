"""H1-H5 of an :class:`~initstats.spec.Arch` from the spec's geometry, without the neuron-level graph.

The checks and their witnesses are those :func:`initstats.exact.hypotheses.graph_checks` finds on
the neuron-level graph (:func:`initstats.graph.build_graph`), node for node: the first failing node
in the graph's node order (stage, then channel, then position in row-major order) -- channel 0,
since channels of a stage are interchangeable.  Which neurons lie on a path to the logit comes
from a ``reach(stage, position)`` predicate that the compressed engine supplies.

H5 has two ways to fail in an Arch:

deterministic fan-out
    a neuron read by two pooling windows (stride < kernel) or by several pools or sums;
shared kernels
    convolution weights are shared, so a weight is a sum of kernel entries, and two out-edges of a
    neuron are correlated when they share an entry: ``E[w w'] = (shared entries) * 2/fan_in``.
    Zero padding and stride-1 circular padding never do this (a kernel entry moves with the
    window); reflect padding does at the borders (an entry reaches the same input from two
    windows through the mirror), and so does a circular padding longer than the input.

Only the second kind is invisible in the neuron-level graph, whose edges carry independent
weights; :func:`shared_witness` finds it from the spec for both engines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from fractions import Fraction

from ..spec import RANDOM_KINDS, SUM_KINDS, Arch, Conv, Stage, node_id, window_entries
from .hypotheses import h1_check, h2_check, h3_check, h4_check, h5_det_check, h5_holds_check, h5_shared_check, s_check
from .results import MERGE_KINDS, NO_ANNEALED_KINDS, HypothesisCheck, Witness

__all__ = ["Reach", "arch_checks", "shared_witness", "kernel_taps"]

#: ``reach(stage_index, position)``: whether the neurons at ``position`` of that stage lie on a path
#: to the logit (all channels alike); a stage without spatial axes has the position ``()``
Reach = Callable[[int, tuple[int, ...]], bool]


def kernel_taps(n_in: int, kernel: int, stride: int, dilation: int, pad: int, mode: str
                ) -> list[dict[int, frozenset[int]]]:
    """Per output position, the kernel indices that land on each input position (one spatial axis).

    The same geometry as :func:`initstats.spec.axis_map`, which keeps only the counts.

    Examples
    --------
    >>> kernel_taps(3, 3, 1, 1, 1, "reflect")[0]     # window 0 reads (1, 0, 1): entries 0 and 2 land on 1
    {1: frozenset({0, 2}), 0: frozenset({1})}
    """
    extent = dilation * (kernel - 1) + 1
    n_out = (n_in + 2 * pad - extent) // stride + 1
    out = []
    for i in range(n_out):
        taps: dict[int, set[int]] = {}
        for a, j in window_entries(i, n_in, kernel, stride, dilation, pad, mode):
            taps.setdefault(j, set()).add(a)
        out.append({j: frozenset(s) for j, s in taps.items()})
    return out


def _per_axis(value: int | tuple[int, ...], rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _conv_kernel_taps(stage: Stage, src: Stage) -> list[list[dict[int, frozenset[int]]]]:
    layer = stage.layer
    assert isinstance(layer, Conv)
    rank = len(src.spatial)
    k, s, dil = (_per_axis(v, rank) for v in (layer.kernel, layer.stride, layer.dilation))
    pad = tuple(d * (kk - 1) // 2 for d, kk in zip(dil, k)) if layer.pad is None else _per_axis(layer.pad, rank)
    return [kernel_taps(src.spatial[a], k[a], s[a], dil[a], pad[a], layer.padding) for a in range(rank)]


def _flat(pos: tuple[int, ...], spatial: tuple[int, ...]) -> int:
    flat = 0
    for p, n in zip(pos, spatial):
        flat = flat * n + p
    return flat


def _positions(stage: Stage) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(n) for n in stage.spatial))


def _nid(stage: Stage, pos: tuple[int, ...]) -> str:
    return node_id(stage.name, (0, *pos))


def _first_reachable(stage: Stage, reach: Reach) -> tuple[int, ...] | None:
    return next((p for p in _positions(stage) if reach(stage.index, p)), None)


def _h1(arch: Arch, reach: Reach) -> HypothesisCheck:
    stages = arch.stages
    last = len(stages) - 1
    merges = any(s.kind in MERGE_KINDS for s in stages[1:])
    failing = [s for s in stages[1:] if s.kind in NO_ANNEALED_KINDS]
    if not failing:
        failing = [s for s in stages[1:last] if s.kind == "linear"]
    for s in failing:
        pos = _first_reachable(s, reach)
        if pos is not None:
            return h1_check(_nid(s, pos), s.kind, merges)
    return h1_check(None, None, merges)


def _h3(arch: Arch, var_scale: Fraction, reach: Reach) -> HypothesisCheck:
    from ..graph.build import spatial_taps
    from .compress import stage_h3

    stages = arch.stages
    for s in stages[1:]:
        if s.kind not in RANDOM_KINDS or (var_scale * s.var_factor == 1 and stage_h3(s)):
            continue
        src = stages[min(s.sources)]  # after a Concat, the first stage in node order
        c_in = sum(stages[k].channels for k in s.sources)
        for pos in _positions(s):
            if not reach(s.index, pos):
                continue
            taps = spatial_taps(s.axes, pos if not s.is_dense else tuple(0 for _ in src.spatial))
            degree = c_in // s.groups * len(taps)
            for p, m in taps:
                var = Fraction(2 * m, s.fan_in) * var_scale * s.var_factor
                if var != Fraction(2, degree):
                    return h3_check((_nid(src, p), _nid(s, pos)), var, degree)
    return h3_check(None)


def _det_witness(arch: Arch, reach: Reach) -> HypothesisCheck | None:
    """The first neuron with two deterministic out-edges (into pools or sums) leading to the logit."""
    stages = arch.stages
    for k, src in enumerate(stages[:-1]):
        consumers = [s for s in stages if s.kind in MERGE_KINDS and k in s.sources]
        if not consumers:
            continue
        covers: dict[int, list[list[list[int]]]] = {}
        most = 0
        for s in consumers:
            if s.kind in SUM_KINDS:
                most += 1
                continue
            cover = [[[] for _ in range(m.n_in)] for m in s.axes]
            for a, m in enumerate(s.axes):
                for i, taps in enumerate(m.taps):
                    for j, _ in taps:
                        cover[a][j].append(i)
            covers[s.index] = cover
            most += math.prod(max(len(c) for c in axis) for axis in cover)
        if most <= 1:
            continue
        for p in _positions(src):
            targets: list[tuple[int, int, Stage, tuple[int, ...], Fraction]] = []
            for s in consumers:
                if s.kind in SUM_KINDS:
                    if reach(s.index, p):
                        targets.append((s.index, _flat(p, s.spatial), s, p, Fraction(1)))
                    continue
                cover = covers[s.index]
                for q in itertools.product(*(cover[a][p[a]] for a in range(len(p)))):
                    if reach(s.index, q):
                        degree = math.prod(len(m.taps[qa]) for m, qa in zip(s.axes, q))
                        targets.append((s.index, _flat(q, s.spatial), s, q, Fraction(1, degree)))
            if len(targets) >= 2:
                targets.sort(key=lambda t: (t[0], t[1]))
                (_, _, s1, q1, w1), (_, _, s2, q2, w2) = targets[:2]
                return h5_det_check(_nid(src, p), _nid(s1, q1), _nid(s2, q2), w1, w2)
    return None


def shared_witness(arch: Arch, reach: Reach, var_scale: Fraction = Fraction(1)) -> HypothesisCheck | None:
    """The first neuron whose out-edges into one convolution share a kernel entry (H5 fails), or None.

    Examples
    --------
    >>> from initstats.spec import Dense
    >>> reflect = Arch((1, 3), (Conv(1, 3, padding="reflect"), Dense(1, activation=None)))
    >>> check = shared_witness(reflect, lambda k, p: True)      # every neuron on a path to the logit
    >>> check.name, check.holds, check.nodes
    ('H5', False, ('x[0,1]', 'conv1[0,0]', 'conv1[0,2]'))
    >>> shared_witness(Arch((1, 3), (Conv(1, 3, padding="circular"), Dense(1, activation=None))), lambda k, p: True)
    """
    stages = arch.stages
    for s in stages[1:]:
        if not s.is_conv:
            continue
        src = stages[min(s.sources)]  # concatenated stages share the geometry; the first in node order
        per_axis = _conv_kernel_taps(s, src)
        cover: list[list[list[tuple[int, frozenset[int]]]]] = []
        shared_at: list[list[bool]] = []
        for a, windows in enumerate(per_axis):
            c: list[list[tuple[int, frozenset[int]]]] = [[] for _ in range(src.spatial[a])]
            for i, taps in enumerate(windows):
                for j, idx in taps.items():
                    c[j].append((i, idx))
            cover.append(c)
            shared_at.append([any(x[1] & y[1] for x, y in itertools.combinations(cj, 2)) for cj in c])
        if not any(any(axis) for axis in shared_at):
            continue
        for p in _positions(src):
            if not any(shared_at[a][pa] for a, pa in enumerate(p)):
                continue
            best = None
            windows = list(itertools.product(*(cover[a][pa] for a, pa in enumerate(p))))
            for w1, w2 in itertools.combinations(windows, 2):
                common = [x[1] & y[1] for x, y in zip(w1, w2)]
                if not all(common):
                    continue
                q1, q2 = tuple(x[0] for x in w1), tuple(x[0] for x in w2)
                if not (reach(s.index, q1) and reach(s.index, q2)):
                    continue
                f1, f2 = sorted((_flat(q1, s.spatial), _flat(q2, s.spatial)))
                cand = (f1, f2, min(q1, q2, key=lambda q: _flat(q, s.spatial)),
                        max(q1, q2, key=lambda q: _flat(q, s.spatial)), math.prod(len(c) for c in common))
                if best is None or cand[:2] < best[:2]:
                    best = cand
            if best is not None:
                _, _, q1, q2, entries = best
                cov = entries * Fraction(2, s.fan_in) * var_scale * s.var_factor
                return h5_shared_check(_nid(src, p), _nid(s, q1), _nid(s, q2), s.name, entries, cov)
    return None


def arch_checks(arch: Arch, var_scale: Fraction, reach: Reach, s_witness: Witness | None
                ) -> tuple[tuple[HypothesisCheck, ...], str | None]:
    """H1-H5 and (S) of the first logit of ``arch``, and how H5 fails (``'det'``, ``'shared'`` or None).

    Examples
    --------
    >>> from initstats.spec import AvgPool, Dense
    >>> arch = Arch((1, 4), (Conv(1, 3, padding="circular"), AvgPool(2, 1), Dense(1, activation=None)))
    >>> checks, how = arch_checks(arch, Fraction(1), lambda k, p: True, None)
    >>> how, checks[4].nodes
    ('det', ('conv1[0,1]', 'avgpool2[0,0]', 'avgpool2[0,1]'))
    """
    det = _det_witness(arch, reach)
    shared = None if det is not None else shared_witness(arch, reach, var_scale)
    h5 = det or shared or h5_holds_check(arch=True)
    how = "det" if det is not None else "shared" if shared is not None else None
    checks = (_h1(arch, reach), h2_check(arch=True), _h3(arch, var_scale, reach), h4_check(arch=True), h5,
              s_check(s_witness))
    return checks, how
