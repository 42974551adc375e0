"""Exact per-axis factorisation of convolutional networks with residual sums, route by route.

A *route* is a path through the stage DAG of an :class:`~initstats.spec.Arch` from the input to
the logits: at every residual sum it takes one branch (the block's body, or its shortcut).  A
neuron-level path is a route together with, at every stage of it, a channel and a position;
positions and channels are chosen independently, and a position path is a row path and a column
path chosen independently, because windows, strides and paddings act per axis.  Hence, for an input
position ``(i, j)`` (any channel, ``C_0`` of them):

- walk probability ``r(i, j) = (1/C_0) sum_R w_R r_R,row(i) r_R,col(j)`` with ``w_R`` the product of
  ``1/(number of sources)`` over the sums on ``R``;
- annealed ``E(df/dx)^2 = sum_R S_R g_R,row(i) g_R,col(j)`` with ``S_R`` the channel and
  nonlinearity factor of the route (``2 kappa var C_out / C_in`` per random layer, ``1/2`` per
  ``sumrelu``);
- (S): enumerating path-degree profiles is what explodes on deep residual networks (every block
  multiplies the border histories), so this module decides (S) only where symmetry proves it:
  when every window map is circulant or all-to-all, a cyclic shift is an automorphism fixing the
  logit (:func:`shift_invariant`).  Otherwise :mod:`initstats.exact.compress` compares full
  profiles on a small network and, on a large one, proves (S) fails from two inputs whose walk
  probabilities differ (``r`` is a function of the profile).

Every per-axis quantity is a backward pass in integers on a 1-D layered graph, once per route
suffix and axis (routes share their suffixes).  A chain without sums is the one-route case.  The
number of routes doubles with every residual block: beyond :data:`ROUTE_LIMIT` routes
:func:`stage_routes` raises :class:`~initstats.errors.ExactLimitError` and
:mod:`initstats.exact.compress` uses the channel quotient instead.

Positions are grouped into per-axis *signatures* (per route: the walk and annealed numerators),
so the sums over routes are computed once per pair of signatures, not once per position: the
ResNet-18 layout at 224 px (256 routes) takes seconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ExactLimitError
from ..spec import RANDOM_KINDS, SUM_KINDS, Arch
from .values import GridValues

__all__ = ["route_count", "stage_routes", "route_values", "RouteValues", "shift_invariant", "ROUTE_LIMIT"]

#: Most routes (branch choices through residual sums) the per-axis factorisation enumerates.
ROUTE_LIMIT = 4096


def route_count(arch: Arch) -> int:
    """The number of routes from the input to the logits (doubling with every residual block).

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> route_count(make_arch("resnet", 8, channels=2, blocks=3))
    8
    """
    count = [1] + [0] * (len(arch.stages) - 1)
    for s in arch.stages[1:]:
        count[s.index] = sum(count[k] for k in s.sources)
    return count[-1]


def stage_routes(arch: Arch, limit: int = ROUTE_LIMIT) -> list[tuple[int, ...]]:
    """Every path of stage indices from the input (stage 0) to the logits.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> arch = make_arch("resnet", 8, channels=2, blocks=1)
    >>> [s.name for s in arch.stages]
    ['x', 'conv1', 'res2.conv1', 'res2.conv2', 'res2.sum', 'logits']
    >>> stage_routes(arch)                # the block's shortcut, then its body
    [(0, 1, 4, 5), (0, 1, 2, 3, 4, 5)]
    """
    stages = arch.stages
    total = route_count(arch)
    if total > limit:
        raise ExactLimitError(
            f"{arch.name}: {total:,} routes through its residual sums exceed the limit of {limit:,} for the "
            "per-axis factorisation; use method='quotient' (one node per stage and position)")
    memo: dict[int, list[tuple[int, ...]]] = {0: [(0,)]}

    def routes(k: int) -> list[tuple[int, ...]]:
        if k not in memo:
            memo[k] = [r + (k,) for src in stages[k].sources for r in routes(src)]
        return memo[k]

    return routes(len(stages) - 1)


def _axis_size(arch: Arch, k: int, axis: int) -> int:
    spatial = arch.stages[k].spatial
    return spatial[axis] if len(spatial) > axis else 1


@dataclass(frozen=True)
class _AxisStep:
    """One stage on one axis in integer form: ``taps[i]`` lists ``(j, walk numerator, grad numerator)``."""

    taps: tuple[tuple[tuple[int, int, int | None], ...], ...]
    walk_den: int
    grad_den: int | None


def _axis_step(arch: Arch, k: int, axis: int) -> _AxisStep:
    s = arch.stages[k]
    if s.kind in SUM_KINDS or len(s.axes) <= axis:  # identity on this axis
        n = _axis_size(arch, k, axis)
        grad = None if s.kind == "maxpool" else 1
        return _AxisStep(tuple(((i, 1, grad),) for i in range(n)), 1, 1)
    m = s.axes[axis]
    den = math.lcm(*(len(t) for t in m.taps if t)) if any(m.taps) else 1
    if s.kind in ("relu", "linear"):
        grad_den: int | None = m.kernel
    elif s.kind == "avgpool":
        grad_den = m.kernel * m.kernel
    else:
        grad_den = None
    taps = []
    for t in m.taps:
        row = []
        for j, mult in t:
            g = None if grad_den is None else (mult if s.kind in ("relu", "linear") else 1)
            row.append((j, den // len(t), g))
        taps.append(tuple(row))
    return _AxisStep(tuple(taps), den, grad_den)


class _AxisPasses:
    """Backward walk and annealed passes of one axis for every route suffix, in integers.

    ``vectors(k, suffix)`` gives, for the positions of stage ``k`` on this axis, the walk
    numerators, their denominator, the annealed numerators (None where not covered) and theirs,
    toward the logit along the stages ``suffix``.  Suffixes shared by several routes are computed once.
    """

    def __init__(self, arch: Arch, axis: int) -> None:
        self.arch, self.axis = arch, axis
        self.steps = {s.index: _axis_step(arch, s.index, axis) for s in arch.stages[1:]}
        self.memo: dict[tuple[int, tuple[int, ...]], tuple[list[int], int, list[int] | None, int]] = {}

    def vectors(self, k: int, suffix: tuple[int, ...]) -> tuple[list[int], int, list[int] | None, int]:
        key = (k, suffix)
        if key in self.memo:
            return self.memo[key]
        n = _axis_size(self.arch, k, self.axis)
        if not suffix:
            out: tuple[list[int], int, list[int] | None, int] = ([1] * n, 1, [1] * n, 1)
        else:
            wv, wd, gv, gd = self.vectors(suffix[0], suffix[1:])
            step = self.steps[suffix[0]]
            walk = [0] * n
            grad: list[int] | None = [0] * n if gv is not None and step.grad_den is not None else None
            for i, taps in enumerate(step.taps):
                wi = wv[i]
                gi = gv[i] if grad is not None else 0  # type: ignore[index]
                if not wi and not gi:
                    continue
                for j, wn, gn in taps:
                    walk[j] += wn * wi
                    if grad is not None:
                        grad[j] += gn * gi  # type: ignore[operator]
            out = (walk, wd * step.walk_den, grad, gd * (step.grad_den or 1))
        self.memo[key] = out
        return out


def _route_factors(arch: Arch, route: tuple[int, ...], var_scale: Fraction) -> tuple[Fraction, Fraction | None]:
    """The channel and branch factors of one route: walk ``w_R`` and annealed ``S_R`` (None if not covered)."""
    stages = arch.stages
    walk, grad = Fraction(1, stages[0].channels), Fraction(1)
    last = len(stages) - 1
    for prev, k in zip(route, route[1:]):
        s = stages[k]
        if s.kind in SUM_KINDS:
            walk /= len(s.sources)
            grad = grad if s.kind == "sum" or grad is None else grad / 2
        elif s.kind in RANDOM_KINDS:
            kernel = math.prod(m.kernel for m in s.axes)
            groups = s.groups
            c_in = Fraction(s.fan_in, kernel)                    # input channels each neuron reads
            walk *= Fraction(stages[prev].channels, groups) / c_in
            succ = 1 if k == last else (s.channels // groups if s.mixes_channels else 1)
            kappa = {"relu": Fraction(1, 2), "linear": Fraction(1)}[s.kind]
            grad = None if grad is None else grad * 2 * kappa * var_scale * s.var_factor * succ / c_in
        elif s.kind != "avgpool":
            grad = None
    return walk, grad


def shift_invariant(arch: Arch) -> bool:
    """Whether a cyclic shift of every axis of every stage is a graph automorphism fixing the logits.

    True when every window map is circulant (stride 1, circular padding: ``taps(i)`` is ``taps(0)``
    shifted by ``i``) or reads every position equally into one (dense layers, global pools).  Then
    every input is the image of every other under an automorphism, so all inputs have the same
    path-degree profile and (S) holds.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> shift_invariant(make_arch("resnet", 8, channels=2, padding="circular")), \\
    ...     shift_invariant(make_arch("resnet", 8, channels=2, padding="zero"))
    (True, False)
    """
    for s in arch.stages[1:]:
        for m in s.axes:
            if m.n_out == 1:
                if sorted(j for j, _ in m.taps[0]) != list(range(m.n_in)) or len({c for _, c in m.taps[0]}) > 1:
                    return False
                continue
            if m.n_in != m.n_out:
                return False
            base = sorted(m.taps[0])
            n = m.n_in
            if any(sorted(((j + i) % n, c) for j, c in base) != sorted(t) for i, t in enumerate(m.taps)):
                return False
    return True


@dataclass(frozen=True)
class RouteValues:
    """Walk probabilities, the annealed path sum and reach of one logit, from the route factorisation.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> v = route_values(make_arch("resnet", 6, channels=2, blocks=1))
    >>> v.walk.total, v.reach(1, (0, 0)), v.pool_degrees       # every stem position is on a path
    (Fraction(1, 1), True, ())
    """

    walk: GridValues
    grad: GridValues | None
    reach: Callable[[int, tuple[int, ...]], bool]
    pool_degrees: tuple[int, ...] | None


def _combine(arch: Arch, coefs: list[Fraction], vecs: list[list[list[int]]], sigs: list[list[int]],
             reps: list[list[int]]) -> GridValues:
    """``sum_R coefs[R] prod_a vecs[a][R][i_a]`` on every position, once per combination of signatures."""
    den = math.lcm(*(c.denominator for c in coefs)) if coefs else 1
    nums = [int(c * den) for c in coefs]
    cells: dict[tuple[int, ...], Fraction] = {}
    for combo in itertools.product(*(range(len(r)) for r in reps)):
        acc = 0
        for R, n in enumerate(nums):
            if n:
                acc += n * math.prod((vecs[a][R][reps[a][c]] for a, c in enumerate(combo)), start=1)
        cells[combo] = Fraction(acc, den)
    spatial = arch.input_shape[1:]
    table = tuple(cells[tuple(sigs[a][p] for a, p in enumerate(pos))]
                  for pos in itertools.product(*(range(n) for n in spatial)))
    return GridValues("x", arch.input_shape, table=table)


def route_values(arch: Arch, var_scale: Fraction = Fraction(1), covered: bool = True) -> RouteValues:
    """Exact walk probabilities and annealed path sums of logit 0 by the route factorisation.

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> v = route_values(make_arch("resnet", 8, channels=2, padding="circular"))
    >>> v.walk.total, v.walk.uniform            # Lemma 8; Lemma 9 under cyclic symmetry
    (Fraction(1, 1), True)
    >>> v.grad.total                            # sums add the shortcut's paths to the body's: above 2
    Fraction(18, 1)
    """
    routes = stage_routes(arch)
    rank = len(arch.input_shape) - 1
    passes = [_AxisPasses(arch, a) for a in range(rank)]
    walk_coefs, grad_coefs = [], []
    walk_vecs: list[list[list[int]]] = [[] for _ in range(rank)]
    grad_vecs: list[list[list[int]]] = [[] for _ in range(rank)]
    for route in routes:
        wf, gf = _route_factors(arch, route, var_scale)
        for a, ps in enumerate(passes):
            wv, wd, gv, gd = ps.vectors(0, route[1:])
            wf /= wd
            walk_vecs[a].append(wv)
            if gf is not None and gv is not None:
                gf /= gd
                grad_vecs[a].append(gv)
            else:
                gf = None
                grad_vecs[a].append([0] * len(wv))
        walk_coefs.append(wf)
        grad_coefs.append(gf)
    covered = covered and all(g is not None for g in grad_coefs)
    # per axis, positions with equal (walk, grad) numerators on every route share their values
    sigs, reps = [], []
    for a in range(rank):
        seen: dict[tuple, int] = {}
        sig, rep = [], []
        for i in range(len(walk_vecs[a][0])):
            key = tuple((walk_vecs[a][R][i], grad_vecs[a][R][i]) for R in range(len(routes)))
            if key not in seen:
                seen[key] = len(rep)
                rep.append(i)
            sig.append(seen[key])
        sigs.append(sig)
        reps.append(rep)
    walk = _combine(arch, walk_coefs, walk_vecs, sigs, reps)
    grad = _combine(arch, grad_coefs, grad_vecs, sigs, reps) if covered else None  # type: ignore[arg-type]
    reach = _reach(arch, routes, passes)
    pools = {tuple(sorted(math.prod(m.kernel for m in arch.stages[k].axes) for k in r
                          if arch.stages[k].kind == "avgpool")) for r in routes}
    return RouteValues(walk=walk, grad=grad, reach=reach, pool_degrees=pools.pop() if len(pools) == 1 else None)


def _reach(arch: Arch, routes: list[tuple[int, ...]], passes: list[_AxisPasses]):
    """Whether a stage position lies on a path to the logit: on some route, on every axis."""
    masks: dict[int, set[tuple[tuple[bool, ...], ...]]] = {}
    for route in routes:
        for n, k in enumerate(route):
            masks.setdefault(k, set()).add(tuple(tuple(v > 0 for v in ps.vectors(k, route[n + 1:])[0])
                                                 for ps in passes))

    def reach(k: int, pos: tuple[int, ...]) -> bool:
        return any(all(m[a][pos[a] if a < len(pos) else 0] for a in range(len(m)))
                   for m in masks.get(k, ()))

    return reach
