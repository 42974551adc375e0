"""The exact annealed gradient with the cross terms of deterministic fan-out.

Where a node has two deterministic out-edges (into average pools or sums) whose paths merge again,
H5 fails and the path sum of :func:`initstats.exact.paths.linear_pass` is not the annealed value:
the two edges' weights are constants, ``E[w w'] = w w' != 0``, and the cross terms survive.

With ``D_u = d f_o / d h_u`` the gradient at node ``u``'s output and ``G(u, b) = E[D_u D_b]`` in the
annealed model (independent weights, each ReLU gate an independent fair coin), expanding the node
that comes *earlier* in topological order,

    G(u, u) = sum over random successors s of  c(u->s) G(s, s)
              + sum over deterministic successors s, t of  w_us w_ut G(s, t),
    G(u, b) = sum over deterministic successors s of u of  w_us G(s, b)        (u before b),

with ``G(o, o) = 1``, ``c(u->s) = var * P(s active)`` (``var/2`` into a ReLU node, ``var`` into a
linear one), deterministic weights ``w = 1/d_s`` into an average pool and ``1`` into a sum, and
``D_u = 0`` for a node that cannot reach ``o``.  A random weight is centred and independent of
everything downstream of its target, so it contributes nothing to an off-diagonal ``G``; only
deterministic fan-out creates the pairs ``(s, t)``, and only the pairs actually reached are
visited (memoised).  Where every node has at most one deterministic out-edge leading to ``o``
(H5) no pair is visited and the pass is the path sum.  ``E(d f_o / d x)^2 = G(x, x)``.

A deterministic node may itself be gated (``sumrelu``: a ReLU after a residual sum).  Then the
pairs are those of the pre-activation gradients ``delta_s = g_s D_s``,
``M(s, t) = E[delta_s delta_t]``: expanding the earlier node ``u`` of a pair, its gate is independent
of everything downstream, so ``M(u, b) = g_u sum_s w_us M(s, b)`` and ``M(b, b) = g_b G(b, b)``
with ``g = 1/2`` for a gated node and ``1`` otherwise (``E[g^2] = E[g]`` for a 0/1 gate); the
diagonal reads ``G(u, u) = sum c G(s, s) + sum_{s, t} w_us w_ut M(s, t)``.  Without gated
deterministic nodes ``M = G`` and this is the recursion above.

Assumption: edge weights are independent (node-link DAGs).  Shared convolution kernels add
further cross terms that this pass does not compute (:mod:`initstats.exact.archchecks`).
Everything is exact (:class:`fractions.Fraction`).
"""

from __future__ import annotations

from fractions import Fraction

from .paths import BackwardGraph
from .results import MERGE_KINDS

__all__ = ["cross_term_pass"]


def cross_term_pass(g: BackwardGraph, o: int) -> list[Fraction | None]:
    """Exact annealed ``E(d f_o / d u)^2`` for every node, cross terms included (None off the paths to ``o``).

    Raises ``ValueError`` if a path to ``o`` crosses an edge without annealed coefficient, or a
    deterministic edge of multiplicity other than 1 (a compressed graph).

    Examples
    --------
    >>> from initstats.exact.paths import BackwardGraph
    >>> # x -> p, x -> q (average pools of in-degree 1), p -> s, q -> s (sum), s = the output
    >>> bg = BackwardGraph(["x", "p", "q", "s"], ["input", "avgpool", "avgpool", "sum"], [0, 1, 1, 2],
    ...                    [[(1, 1, 0), (2, 1, 0)], [(3, 1, 0)], [(3, 1, 0)], []], [Fraction(1)],
    ...                    [0, 1, 2, 3], [0], [3])
    >>> cross_term_pass(bg, 3)[0]    # d s / d x = 2 exactly; the path sum would say 1 + 1
    Fraction(4, 1)
    """
    n = len(g.names)
    pos = [0] * n
    for i, u in enumerate(g.order):
        pos[u] = i
    reach = [False] * n
    reach[o] = True
    for u in reversed(g.order):
        if u != o and any(reach[v] for v, _, _ in g.succ[u]):
            reach[u] = True
    det: list[list[tuple[int, Fraction]]] = [[] for _ in range(n)]
    for u in range(n):
        if not reach[u] or u == o:
            continue
        for v, m, _ in g.succ[u]:
            if reach[v] and g.kinds[v] in MERGE_KINDS:
                if m != 1:
                    raise ValueError(f"deterministic edge {g.names[u]!r} -> {g.names[v]!r} has multiplicity {m}; "
                                     f"cross terms need a neuron-level graph")
                det[u].append((v, Fraction(1, g.degree[v]) if g.kinds[v] == "avgpool" else Fraction(1)))

    diag: list[Fraction | None] = [None] * n
    pairs: dict[tuple[int, int], Fraction] = {}

    def gate(v: int) -> Fraction:
        """``P(v active)`` of a deterministic node: 1/2 for a ReLU after a sum, 1 otherwise."""
        return Fraction(1, 2) if g.kinds[v] == "sumrelu" else Fraction(1)

    def key(a: int, b: int) -> tuple[int, int]:
        return (a, b) if pos[a] < pos[b] else (b, a)

    def pair(a: int, b: int) -> Fraction:
        """``G(a, b)`` for ``a != b``, both on paths to ``o``, every later diagonal known."""
        top = key(a, b)
        if top in pairs:
            return pairs[top]
        stack = [top]
        while stack:
            u, b = stack[-1]
            if (u, b) in pairs:
                stack.pop()
                continue
            missing = [key(s, b) for s, _ in det[u] if s != b and key(s, b) not in pairs]
            if missing:
                stack.extend(missing)
                continue
            total = Fraction(0)
            for s, w in det[u]:
                total += w * (gate(s) * diag[s] if s == b else pairs[key(s, b)])  # type: ignore[operator]
            pairs[(u, b)] = gate(u) * total
            stack.pop()
        return pairs[top]

    for u in reversed(g.order):
        if not reach[u]:
            continue
        if u == o:
            diag[u] = Fraction(1)
            continue
        total = Fraction(0)
        for v, m, k in g.succ[u]:
            if not reach[v] or g.kinds[v] in MERGE_KINDS:
                continue
            c = g.coefs[k]
            if c is None:
                raise ValueError(f"edge {g.names[u]!r} -> {g.names[v]!r} has no annealed coefficient")
            total += m * c * diag[v]  # type: ignore[operator]
        dets = det[u]
        for i, (s, w) in enumerate(dets):
            total += w * w * gate(s) * diag[s]  # type: ignore[operator]
            for t, w2 in dets[i + 1:]:
                total += 2 * w * w2 * pair(s, t)
        diag[u] = total
    return diag
