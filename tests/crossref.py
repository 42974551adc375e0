"""Brute-force references for the cross-term annealed value and H5, by explicit path pairs, and the
overlap net of issue 9.

Independent of :mod:`initstats.exact`: only networkx path enumeration, for small graphs.
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx

RANDOM = {"relu", "linear"}
DETERMINISTIC = {"avgpool", "sum", "sumrelu"}  # sumrelu: weight 1, then a ReLU gate


def _edges(path: list) -> list[tuple]:
    return list(zip(path, path[1:]))


def pair_brute_force(g: nx.DiGraph, o) -> dict | None:
    """``E(d f_o/d x)^2`` per input, summed over pairs of paths ``(p, q)`` from ``x`` to ``o``.

    A pair contributes ``prod(deterministic weights of p) * prod(deterministic weights of q) *
    prod(variances of the random edges) * (1/2)^(distinct ReLU nodes of p and q, inputs excluded)``
    (ReLU nodes: ``relu`` and ``sumrelu``, a ReLU after a sum)
    when ``p`` and ``q`` use the same set of random edges, else 0 (independent centred weights,
    independent fair-coin gates).  None when a path crosses a node without annealed model.
    """
    kinds = dict(g.nodes(data="kind"))
    inputs = [n for n, k in kinds.items() if k == "input"]
    out = {}
    for x in inputs:
        paths = list(nx.all_simple_paths(g, x, o))
        total = Fraction(0)
        for p in paths:
            for q in paths:
                rand_p = {(u, v) for u, v in _edges(p) if kinds[v] in RANDOM}
                rand_q = {(u, v) for u, v in _edges(q) if kinds[v] in RANDOM}
                if any(kinds[v] not in RANDOM | DETERMINISTIC for v in p[1:] + q[1:]):
                    return None
                if rand_p != rand_q:
                    continue
                value = Fraction(1)
                for u, v in _edges(p) + _edges(q):
                    if kinds[v] == "avgpool":
                        value /= g.in_degree(v)
                for u, v in rand_p:
                    value *= Fraction(g.edges[u, v].get("var", Fraction(2, g.in_degree(v))))
                relus = {v for v in p[1:] + q[1:] if kinds[v] in ("relu", "sumrelu")}
                total += value / 2 ** len(relus)
        out[x] = total
    return out


def h5_holds(g: nx.DiGraph, o) -> bool:
    """H5 for independent edge weights: no node has two deterministic out-edges whose targets reach ``o``."""
    reaches = nx.ancestors(g, o) | {o}
    for u in reaches:
        targets = [v for v in g.successors(u) if v in reaches and g.nodes[v]["kind"] in DETERMINISTIC]
        if len(targets) >= 2:
            return False
    return True


def overlap_net() -> nx.DiGraph:
    """The ReLU-free 1-D net of issue 9: 8 inputs, a linear 3-tap layer, a 3-wide stride-1 circular
    average pool, a global average pool and one linear logit (var 2)."""
    g = nx.DiGraph(name="overlap")
    g.add_nodes_from((f"x{k}" for k in range(8)), kind="input")
    for j in range(8):
        g.add_node(f"z{j}", kind="linear")
        g.add_edges_from((f"x{k % 8}", f"z{j}") for k in (j - 1, j, j + 1))
    for i in range(8):
        g.add_node(f"p{i}", kind="avgpool")
        g.add_edges_from((f"z{j % 8}", f"p{i}") for j in (i - 1, i, i + 1))
    g.add_node("q", kind="avgpool")
    g.add_edges_from((f"p{i}", "q") for i in range(8))
    g.add_node("f", kind="linear")
    g.add_edge("q", "f")
    return g
