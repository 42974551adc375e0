"""Assumption (S): equal path-degree profiles for every input, and a witness when it fails.

For an input ``x`` and an output ``o`` the *path-degree* of a path ``p`` from ``x`` to ``o`` is
the multiset ``{d_v : v in p~}`` of in-degrees along ``p`` without ``x``; the *profile* of ``x``
is the multiset of path-degrees over all paths ``P(x, o)``.  (S) relative to ``o`` holds when
every input has the same profile (Lemma 9 then gives ``r(x) = 1/d``).

A witness names the first input (in input order) and the first later input whose profile
differs, the smallest path-degree (ascending tuple, lexicographic order) on which the counts
differ, and both counts.  Profiles are computed by :func:`initstats.exact.paths.profile_pass`
or, for compressed architectures, by :mod:`initstats.exact.compress`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping

from .paths import BackwardGraph, LabelCode, profile_pass
from .results import Witness
from .values import GridValues

__all__ = ["first_difference", "find_witness", "walk_witness", "degree_witness", "pooling_degrees"]


def first_difference(p: Mapping[Hashable, int], q: Mapping[Hashable, int],
                     decode: Callable[[Hashable], tuple[int, ...]]) -> tuple[tuple[int, ...], int, int]:
    """The smallest decoded key on which two profiles differ, with both counts.

    Examples
    --------
    >>> first_difference({(2, 2): 1}, {(2, 2): 1, (2,): 1}, decode=lambda k: k)
    ((2,), 0, 1)
    """
    keys = [k for k in p.keys() | q.keys() if p.get(k, 0) != q.get(k, 0)]
    if not keys:
        raise ValueError("the profiles are equal")
    key = min(keys, key=decode)
    return decode(key), p.get(key, 0), q.get(key, 0)


def find_witness(inputs: Iterable[tuple[str, Mapping[Hashable, int]]],
                 decode: Callable[[Hashable], tuple[int, ...]]) -> Witness | None:
    """Compare every profile with the first one; the first that differs makes the witness.

    ``inputs`` yields ``(input id, profile)`` in input order; it may be lazy, so that the scan
    stops at the first difference.

    Examples
    --------
    >>> find_witness([("x0", {(2, 2): 1}), ("x1", {(2, 2): 1, (2,): 1})], decode=lambda k: k)
    Witness(inputs=('x0', 'x1'), path_degree=(2,), counts=(0, 1))
    >>> find_witness([("x0", {(2, 2): 1}), ("x1", {(2, 2): 1})], decode=lambda k: k) is None     # (S) holds
    True
    """
    it = iter(inputs)
    first = next(it, None)
    if first is None:
        return None
    name0, prof0 = first
    for name, prof in it:
        if prof != prof0:
            degrees, c0, c1 = first_difference(prof0, prof, decode)
            return Witness((name0, name), degrees, (c0, c1))
    return None


def walk_witness(r: GridValues) -> Witness | None:
    """The first input whose walk probability differs from the first input's (None if all are equal).

    ``r(x)`` is a function of the path-degree profile of ``x`` (Lemma 8's walk), so a difference
    proves (S) fails, without enumerating the profiles.  Equal walk probabilities prove nothing.

    Examples
    --------
    >>> from fractions import Fraction
    >>> r = GridValues("x", (1, 3), table=(Fraction(1, 4), Fraction(1, 4), Fraction(1, 2)))
    >>> w = walk_witness(r)
    >>> w.inputs, w.path_degree, w.walk
    (('x[0,0]', 'x[0,2]'), None, (Fraction(1, 4), Fraction(1, 2)))
    """
    items = r.items()
    first = next(items, None)
    if first is None:
        return None
    name0, r0 = first
    for name, v in items:
        if v != r0:
            return Witness((str(name0), str(name)), None, None, walk=(r0, v))
    return None


def degree_witness(bg: BackwardGraph, o: int, budget: int | None = None) -> Witness | None:
    """The (S) witness of output ``o`` from path-degree profiles of every input (None under (S)).

    ``budget`` bounds the profiles' size (see :func:`~initstats.exact.paths.profile_pass`).

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h"), ("h", "y"), ("x1", "y")])    # x1 also skips to y
    >>> bg, _ = to_backward_graph(g)
    >>> y = bg.names.index("y")
    >>> degree_witness(bg, y)          # x1's skip path has path-degree {2}, x0 has no such path
    Witness(inputs=('x0', 'x1'), path_degree=(2,), counts=(0, 1))
    """
    code = LabelCode()
    profiles = profile_pass(bg, o, bg.degree, code, budget)

    def decode(key: int) -> tuple[int, ...]:
        return tuple(sorted(code.decode(key)))  # type: ignore[arg-type]

    return find_witness(((str(bg.names[x]), profiles[x] or {}) for x in bg.inputs), decode)


def pooling_degrees(bg: BackwardGraph, o: int) -> tuple[int, ...] | None:
    """The average-pooling degrees every path to ``o`` crosses, or None when paths cross different ones.

    Examples
    --------
    >>> import networkx as nx
    >>> from initstats.exact.analysis import to_backward_graph
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1", "x2"], kind="input")
    >>> g.add_nodes_from(["p0", "p1"], kind="avgpool")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edges_from([("x0", "p0"), ("x1", "p0"), ("x1", "p1"), ("x2", "p1"), ("p0", "y"), ("p1", "y")])
    >>> bg, _ = to_backward_graph(g)          # two overlapping average pools of 2 inputs
    >>> y = bg.names.index("y")
    >>> pooling_degrees(bg, y)         # every path crosses one pool of degree 2
    (2,)
    """
    code = LabelCode()
    labels = [bg.degree[u] if k == "avgpool" else None for u, k in enumerate(bg.kinds)]
    profiles = profile_pass(bg, o, labels, code)
    keys = set().union(*((profiles[x] or {}).keys() for x in bg.inputs))
    return tuple(sorted(code.decode(next(iter(keys))))) if len(keys) == 1 else None  # type: ignore[type-var]
