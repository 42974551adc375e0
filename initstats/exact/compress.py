"""Exact compression: paper-scale architectures without the neuron-level graph.

Two exact reductions of an :class:`~initstats.spec.Arch`:

Channel quotient
    Convolutions and dense layers connect every input channel to every output channel with the
    same pattern, and pools and residual sums act channel by channel, so permuting the channels
    of a stage is a graph automorphism that fixes every logit.  One node per (stage, position)
    with the successor channel count as edge multiplicity therefore gives every quantity of
    :mod:`initstats.exact.paths` exactly, for every channel at once.

Per-axis product (networks without residual sums)
    In a chain of convolutions, pools and dense layers whose padding and strides act per axis,
    a path is a choice of channels, a path along the rows and a path along the columns,
    chosen independently.  Hence ``r(c, i, j) = r_row(i) r_col(j) / C_0`` and the annealed
    ``E(d f/d x)^2 = S g_row(i) g_col(j)`` with one scalar ``S`` from the channel counts and
    nonlinearities, each factor given by a backward pass on a 1-D graph of a few hundred nodes.
    (S) needs more than these marginals: the path-degree of a 2-D path is
    ``{C_in(l) d_row(l) d_col(l)}`` over the layers ``l``, which depends on how row and column
    degrees pair up layer by layer.  Each axis therefore records, per input position, the
    multiset of *ordered* per-layer degree sequences of its paths (a profile pass whose labels
    are ``(layer, degree)`` pairs); positions with equal multisets form a class, and the 2-D
    profile of ``(i, j)`` follows from the pair of classes.  (S) holds when every position has
    the profile of the first; otherwise the first position (row-major) that differs is the
    witness, found by comparing walk probabilities first and full profiles only when those agree.

Routes (networks with residual sums)
    The per-axis product holds route by route, a route being one branch choice at every sum
    (:mod:`initstats.exact.routes`); the channel quotient is kept for networks with more than
    :data:`~initstats.exact.routes.ROUTE_LIMIT` routes and for full (S) profiles where they fit.

All reductions return the same :class:`~initstats.exact.results.GraphAnalysis` as the
neuron-level engine, and the tests check equality on every case small enough to build both.

Hypotheses H1-H5 come from the spec's geometry (:mod:`initstats.exact.archchecks`), with the same
witnesses as the neuron-level graph.  Convolution kernels are shared, so where H5 fails (overlapping
pooling windows; a kernel entry reaching one input from two windows, as reflect padding does) and
an average pool or sum lies on the paths, shared weights add cross terms that are not computed:
no annealed value is given (``grad_sq_reason`` says why).  Where H5 fails only through shared
kernel entries and nothing merges paths deterministically, every such cross term vanishes and the
path sum is the annealed value.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

from ..errors import ExactLimitError
from ..spec import RANDOM_KINDS, SUM_KINDS, Arch, AxisMap, Stage, node_id
from .archchecks import Reach, arch_checks
from .hypotheses import grad_sq_mode
from .paths import BackwardGraph, CoefficientTable, LabelCode, at_inputs, linear_pass, profile_pass, walk_pass
from .prediction import COVERED_KINDS, theorem_total
from .routes import ROUTE_LIMIT, route_count, route_values, shift_invariant
from .results import GraphAnalysis, GridValues, OutputAnalysis, Witness
from .symmetry import degree_witness, first_difference, pooling_degrees, walk_witness

__all__ = ["analyse_compressed", "stage_h3"]


def _kappa(kind: str) -> Fraction | None:
    return {"relu": Fraction(1, 2), "linear": Fraction(1)}.get(kind)


def _axis_e_values(m: AxisMap) -> set[Fraction]:
    return {Fraction(mult * m.in_degree(i), m.kernel) for i, taps in enumerate(m.taps) for _, mult in taps}


def stage_h3(stage: Stage) -> bool:
    """Whether every weight into ``stage`` has variance ``2/in-degree`` (H3) at neuron level.

    The weight from ``(c', i', j')`` to ``(c, i, j)`` has variance ``m_row m_col 2/fan_in`` and
    the neuron has in-degree ``C_in d_row(i) d_col(j)``; with ``e_a = m_a d_a / k_a`` per axis,
    H3 holds iff ``prod_a e_a = 1`` on every edge, i.e. iff each axis has a single ``e_a`` value
    and their product is 1.

    Examples
    --------
    >>> from initstats.spec import Conv, Dense
    >>> arch = Arch((1, 4), (Conv(1, 3), Conv(1, 3, padding="circular"), Dense(1, activation=None)))
    >>> [(s.name, stage_h3(s)) for s in arch.stages[1:]]      # zero padding breaks H3 at the border
    [('conv1', False), ('conv2', True), ('logits', True)]
    """
    if stage.kind not in RANDOM_KINDS:
        return True
    values = [_axis_e_values(m) for m in stage.axes]
    if any(len(v) != 1 for v in values):
        return False
    return math.prod((next(iter(v)) for v in values), start=Fraction(1)) == 1


def _common(arch: Arch, var_scale: Fraction) -> dict:
    """Facts shared by both reductions."""
    stages = arch.stages
    kinds = frozenset(s.kind for s in stages[1:])
    return {"kinds": kinds, "covered": kinds <= COVERED_KINDS, "hidden": {s.kind for s in stages[1:-1]},
            "last_kind": stages[-1].kind}


def _output(arch: Arch, var_scale: Fraction, reach: Reach, facts: dict, witness: Witness | None,
            path_sum: GridValues | None, **fields) -> OutputAnalysis:
    """The logit's :class:`OutputAnalysis`: hypothesis checks, and the path sum only where it is the annealed value."""
    checks, h5_fails = arch_checks(arch, var_scale, reach, witness)
    mode, reason = grad_sq_mode(facts["kinds"], h5_fails, shared_weights=True)
    pool_degrees = fields["pool_degrees"]
    theorem = theorem_total(facts["last_kind"], facts["hidden"], pool_degrees) if h5_fails is None else None
    return OutputAnalysis(symmetric=witness is None, witness=witness, hypotheses=checks, node_kinds=facts["kinds"],
                          grad_sq=path_sum if mode == "path" else None, grad_sq_reason=reason,
                          path_sum_total=None if path_sum is None else path_sum.total, theorem_total=theorem,
                          **fields)


def _replicate(arch: Arch, method: str, out: OutputAnalysis) -> GraphAnalysis:
    """All logits are images of ``logits[0]`` under a channel permutation."""
    last = arch.stages[-1]
    outputs = tuple(out.renamed(node_id(last.name, (k,))) for k in range(last.channels))
    return GraphAnalysis(name=arch.name, d=arch.d, px=arch.px, method=method, outputs=outputs)


def analyse_compressed(arch: Arch, var_scale: Fraction = Fraction(1)) -> GraphAnalysis:
    """Exact analysis of every logit of ``arch`` by compression (see the module docstring).

    ``var_scale`` multiplies every random weight's variance (1/2 for LeCun initialisation).

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> a = analyse_compressed(make_arch("cnn", 32, channels=4, padding="circular"))
    >>> a.method, len(a.outputs), a.outputs[0].grad_sq_total, a.outputs[0].symmetric
    ('factorized', 12, Fraction(2, 1), True)
    >>> analyse_compressed(make_arch("resnet", 8, channels=4, padding="circular")).method   # residual sums
    'routes'
    """
    if arch.has_branches:  # residual sums, concatenations
        if route_count(arch) > ROUTE_LIMIT:
            return _replicate(arch, "quotient", _analyse_quotient(arch, var_scale))
        return _replicate(arch, "routes", _analyse_routes(arch, var_scale))
    return _replicate(arch, "factorized", _analyse_factorized(arch, var_scale))


# -- routes (residual networks) --------------------------------------------------------------

#: Where the route factorisation cannot prove (S) by symmetry, full profiles are tried on channel
#: quotients of at most this many nodes (stage positions), with at most :data:`ROUTE_PROFILE_BUDGET`
#: path-degree multisets; beyond either, a walk-probability witness proves (S) fails.
QUOTIENT_PROFILE_NODES = 50_000
ROUTE_PROFILE_BUDGET = 500_000


def _analyse_routes(arch: Arch, var_scale: Fraction) -> OutputAnalysis:
    """Residual networks by routes (:mod:`initstats.exact.routes`); (S) from symmetry, profiles or walks."""
    facts = _common(arch, var_scale)
    v = route_values(arch, var_scale, facts["covered"])
    d, r = arch.d, v.walk
    return _output(arch, var_scale, v.reach, facts, _routes_witness(arch, var_scale, r), v.grad,
                   name=node_id(arch.stages[-1].name, (0,)), d=d, lemma8_sum=r.total, walk=r,
                   lemma9_holds=r.min == r.max == Fraction(1, d),
                   lemma9_max_dev=max(abs(d * r.min - 1), abs(d * r.max - 1)), pool_degrees=v.pool_degrees)


def _routes_witness(arch: Arch, var_scale: Fraction, r: GridValues) -> Witness | None:
    """(S): proved by cyclic symmetry; else full profiles on a small quotient; else walk probabilities."""
    if shift_invariant(arch):
        return None
    nodes = sum(math.prod(s.spatial) for s in arch.stages)
    if nodes <= QUOTIENT_PROFILE_NODES:
        bg, _ = _quotient_graph(arch, var_scale)
        with contextlib.suppress(ExactLimitError):
            return degree_witness(bg, bg.outputs[0], ROUTE_PROFILE_BUDGET)
    witness = walk_witness(r)
    if witness is None:
        raise ExactLimitError(
            f"{arch.name}: assumption (S) cannot be decided at this size: every input has the same walk "
            "probability, no cyclic symmetry proves (S), and the path-degree profiles of its "
            f"{nodes:,} stage positions are too many to compare; analyse a smaller input size")
    return witness


# -- channel quotient ------------------------------------------------------------------------

def _succ_channels(arch: Arch, stage: Stage) -> int:
    """Neuron-level successors per (source neuron, position) edge: the channels of its group, or 1 for the logit."""
    if stage.index == len(arch.stages) - 1:
        return 1
    return stage.channels // stage.groups if stage.mixes_channels else 1


def _quotient_graph(arch: Arch, var_scale: Fraction = Fraction(1)) -> tuple[BackwardGraph, list[int]]:
    """Channel quotient of ``arch``: one node per (stage, position); also the stage offsets."""
    names: list[str] = []
    kinds: list[str] = []
    degree: list[int] = []
    offsets: list[int] = []
    positions: list[list[tuple[int, ...]]] = []
    stages = arch.stages
    last = len(stages) - 1
    for s in stages:
        offsets.append(len(names))
        spatial = s.spatial if s.index != last else ()
        pos = list(itertools.product(*(range(n) for n in spatial)))
        positions.append(pos)
        names.extend(node_id(s.name, (0, *p)) for p in pos)
        kinds.extend([s.kind] * len(pos))
    degree = [0] * len(names)
    succ: list[list[tuple[int, int, int]]] = [[] for _ in names]
    table = CoefficientTable()
    coefs, coef_id = table.values, table.intern

    from ..graph.build import spatial_taps

    for s in stages[1:]:
        base = offsets[s.index]
        if s.kind in SUM_KINDS:
            gate = coef_id(Fraction(1) if s.kind == "sum" else Fraction(1, 2))
            for p_idx in range(len(positions[s.index])):
                degree[base + p_idx] = len(s.sources)
                for src in s.sources:
                    succ[offsets[src] + p_idx].append((base + p_idx, 1, gate))
            continue
        src = stages[s.sources[0]]
        src_pos_index = {p: i for i, p in enumerate(positions[src.index])}
        mult = _succ_channels(arch, s)
        kappa = _kappa(s.kind)
        kappa = None if kappa is None else kappa * var_scale
        out_positions = positions[s.index] if not s.is_dense else [tuple(0 for _ in src.spatial)]
        for p_idx, pos in enumerate(out_positions):
            taps = spatial_taps(s.axes, pos)
            v = base + p_idx
            if s.is_pool:
                degree[v] = len(taps)
                c = Fraction(1, len(taps) ** 2) if s.kind == "avgpool" else None
                k = coef_id(c)
                for p, _ in taps:
                    succ[offsets[src.index] + src_pos_index[p]].append((v, 1, k))
            else:
                degree[v] = sum(stages[k].channels for k in s.sources) // s.groups * len(taps)
                for p, m in taps:
                    c = None if kappa is None else kappa * s.var_factor * Fraction(2 * m, s.fan_in)
                    for k in s.sources:  # after a Concat: every concatenated stage, no node of its own
                        succ[offsets[k] + src_pos_index[p]].append((v, mult, coef_id(c)))
    order = list(range(len(names)))
    inputs = list(range(offsets[0], offsets[0] + len(positions[0])))
    bg = BackwardGraph(names, kinds, degree, succ, coefs, order, inputs, [len(names) - 1])
    return bg, offsets


def _analyse_quotient(arch: Arch, var_scale: Fraction) -> OutputAnalysis:
    bg, offsets = _quotient_graph(arch, var_scale)
    facts = _common(arch, var_scale)
    o = bg.outputs[0]
    d = arch.d
    walk = walk_pass(bg, o)
    r = GridValues("x", arch.input_shape, table=at_inputs(walk, bg.inputs))
    witness = degree_witness(bg, o)
    grad = None
    if facts["covered"]:
        grad = GridValues("x", arch.input_shape, table=at_inputs(linear_pass(bg, o), bg.inputs))
    stages = arch.stages

    def reach(k: int, pos: tuple[int, ...]) -> bool:
        flat = 0
        for p, n in zip(pos, stages[k].spatial):
            flat = flat * n + p
        return walk[offsets[k] + flat] is not None

    return _output(arch, var_scale, reach, facts, witness, grad,
                   name=str(bg.names[o]), d=d, lemma8_sum=r.total, walk=r,
                   lemma9_holds=r.min == r.max == Fraction(1, d),
                   lemma9_max_dev=max(abs(d * r.min - 1), abs(d * r.max - 1)), pool_degrees=pooling_degrees(bg, o))


# -- per-axis product ------------------------------------------------------------------------

def _axis_graph(arch: Arch, axis: int) -> BackwardGraph:
    """The 1-D layered graph of one spatial axis; node labels are ``(stage, degree)``.

    A stage without this axis (after a dense layer) is a single position reached by an identity
    edge.  Edge coefficients are the per-axis factors of the annealed coefficient: ``m/k`` for
    convolutions and dense layers (``m`` kernel entries on the edge, window length ``k``),
    ``1/k^2`` for average pools, ``None`` for max pools and BatchNorm.
    """
    names: list[tuple[int, int]] = []
    kinds: list[str] = []
    degree: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []
    for s in arch.stages:
        n = s.spatial[axis] if len(s.spatial) > axis else 1
        offsets.append(len(names))
        sizes.append(n)
        names.extend((s.index, i) for i in range(n))
        kinds.extend([s.kind] * n)
        degree.extend([0] * n)
    succ: list[list[tuple[int, int, int]]] = [[] for _ in names]
    table = CoefficientTable()
    coefs, coef_id = table.values, table.intern

    for s in arch.stages[1:]:
        src = s.sources[0]
        base, src_base = offsets[s.index], offsets[src]
        if len(s.axes) <= axis:  # the source has no spatial axes: identity on one position
            degree[base] = 1
            covered = s.kind in COVERED_KINDS
            succ[src_base].append((base, 1, coef_id(Fraction(1) if covered else None)))
            continue
        m = s.axes[axis]
        for i, taps in enumerate(m.taps):
            degree[base + i] = len(taps)
            for j, mult in taps:
                if s.kind in ("relu", "linear"):
                    c: Fraction | None = Fraction(mult, m.kernel)
                elif s.kind == "avgpool":
                    c = Fraction(1, m.kernel * m.kernel)
                else:
                    c = None
                succ[src_base + j].append((base + i, 1, coef_id(c)))
    order = list(range(len(names)))
    return BackwardGraph(names, kinds, degree, succ, coefs, order, list(range(sizes[0])), [len(names) - 1])


def _pred_scalar(arch: Arch, var_scale: Fraction) -> Fraction | None:
    """Channel and nonlinearity factor ``S`` of the annealed prediction (None if not covered)."""
    scalar = Fraction(1)
    for s in arch.stages[1:]:
        if s.is_pool:
            if s.kind != "avgpool":
                return None
            continue
        kappa = _kappa(s.kind)
        if kappa is None:
            return None
        src = arch.stages[s.sources[0]]
        scalar *= 2 * kappa * var_scale * s.var_factor * _succ_channels(arch, s) * s.groups / src.channels
    return scalar


class _AxisData:
    """Walk, annealed factor and ordered degree-sequence profiles of one axis."""

    def __init__(self, arch: Arch, axis: int, covered: bool) -> None:
        g = _axis_graph(arch, axis)
        o = g.outputs[0]
        n = len(g.inputs)
        self.size = n
        walk = walk_pass(g, o)
        self.walk = at_inputs(walk, g.inputs)
        #: per stage index, whether each position of this axis lies on a path to the logit
        self.reach: dict[int, list[bool]] = {}
        for u, (stage, _) in enumerate(g.names):
            self.reach.setdefault(stage, []).append(walk[u] is not None)
        self.grad = at_inputs(linear_pass(g, o), g.inputs) if covered else None
        code = LabelCode()
        labels = [(g.names[u][0], g.degree[u]) for u in range(len(g.names))]
        prof = profile_pass(g, o, labels, code)
        class_of: dict[tuple, int] = {}
        self.cls: list[int] = []
        self.seqs: list[list[tuple[tuple[int, ...], int]]] = []
        n_stages = len(arch.stages)
        for i in range(n):
            p = prof[i] or {}
            key = tuple(sorted(p.items()))
            if key not in class_of:
                class_of[key] = len(self.seqs)
                seqs = []
                for c, count in p.items():
                    seq = [1] * n_stages
                    for stage, deg in code.decode(c):  # type: ignore[misc]
                        seq[stage] = deg
                    seqs.append((tuple(seq), count))
                self.seqs.append(seqs)
            self.cls.append(class_of[key])


def _analyse_factorized(arch: Arch, var_scale: Fraction) -> OutputAnalysis:
    facts = _common(arch, var_scale)
    stages = arch.stages
    rank = len(arch.input_shape) - 1
    axes = [_AxisData(arch, a, facts["covered"]) for a in range(rank)]
    c0 = arch.input_shape[0]
    d = arch.d
    r = GridValues("x", arch.input_shape, scalar=Fraction(1, c0), factors=tuple(ax.walk for ax in axes))
    grad = None
    scalar = _pred_scalar(arch, var_scale)
    if facts["covered"] and scalar is not None:
        grad = GridValues("x", arch.input_shape, scalar=scalar, factors=tuple(ax.grad for ax in axes))  # type: ignore[misc]
    lemma9 = all(all(v == Fraction(1, ax.size) for v in ax.walk) for ax in axes)

    # (S): path-degree profile of position (i, j) from the pair of axis classes
    chan = [0] + [stages[s.sources[0]].channels // s.groups if s.mixes_channels else 1 for s in stages[1:]]
    paths_mult = math.prod(s.channels // s.groups for s in stages[1:-1] if s.mixes_channels)
    layer_ids = range(1, len(stages))

    def profile(classes: Sequence[int]) -> dict[tuple[int, ...], int]:
        out: dict[tuple[int, ...], int] = {}
        for combo in itertools.product(*(ax.seqs[c] for ax, c in zip(axes, classes))):
            count = paths_mult * math.prod(n for _, n in combo)
            ms = tuple(sorted(chan[l] * math.prod(seq[l] for seq, _ in combo) for l in layer_ids))
            out[ms] = out.get(ms, 0) + count
        return out

    witness = _factorized_witness(arch, axes, r, profile)
    pool_degrees = tuple(sorted(math.prod(m.kernel for m in s.axes) for s in stages if s.kind == "avgpool"))

    def reach(k: int, pos: tuple[int, ...]) -> bool:
        return all(ax.reach[k][pos[a] if a < len(pos) else 0] for a, ax in enumerate(axes))

    return _output(arch, var_scale, reach, facts, witness, grad,
                   name=node_id(stages[-1].name, (0,)), d=d, lemma8_sum=r.total, walk=r, lemma9_holds=lemma9,
                   lemma9_max_dev=max(abs(d * r.min - 1), abs(d * r.max - 1)), pool_degrees=pool_degrees)


def _factorized_witness(arch: Arch, axes: list[_AxisData], r: GridValues, profile) -> Witness | None:
    """Scan positions in input order; compare classes, then walk values, then full profiles."""
    if all(len(ax.seqs) == 1 for ax in axes):
        return None
    spatial = arch.input_shape[1:]
    pos0 = tuple(0 for _ in spatial)
    base = tuple(ax.cls[0] for ax in axes)
    r0 = r.at(pos0)
    same: dict[tuple[int, ...], bool] = {base: True}
    prof0: dict | None = None
    for pos in itertools.product(*(range(n) for n in spatial)):
        classes = tuple(ax.cls[p] for ax, p in zip(axes, pos))
        verdict = same.get(classes)
        if verdict is None:
            if r.at(pos) != r0:
                verdict = False
            else:
                prof0 = prof0 if prof0 is not None else profile(base)
                verdict = profile(classes) == prof0
            same[classes] = verdict
        if not verdict:
            prof0 = prof0 if prof0 is not None else profile(base)
            degrees, n0, n1 = first_difference(prof0, profile(classes), lambda k: k)  # type: ignore[arg-type,return-value]
            return Witness((node_id("x", (0, *pos0)), node_id("x", (0, *pos))), degrees, (n0, n1))
    return None
