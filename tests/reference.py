"""Brute-force references by explicit path enumeration (independent of initstats.exact.paths).

Only for small graphs: the number of paths grows exponentially with depth.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import networkx as nx


def edge_c(g: nx.DiGraph, u, v) -> Fraction | None:
    kind = g.nodes[v]["kind"]
    d = g.in_degree(v)
    var = Fraction(g.edges[u, v].get("var", Fraction(2, d)))
    return {"relu": var / 2, "linear": var, "avgpool": Fraction(1, d * d), "sum": Fraction(1),
            "sumrelu": Fraction(1, 2)}.get(kind)


def brute_force(g: nx.DiGraph, o) -> dict:
    """Per input: walk probability, profile, annealed gradient; plus the pooling multisets."""
    inputs = [n for n, k in g.nodes(data="kind") if k == "input"]
    walk, profile, grad, pools = {}, {}, {}, set()
    covered = True
    for x in inputs:
        r, G, prof = Fraction(0), Fraction(0), Counter()
        for path in nx.all_simple_paths(g, x, o) if x != o else []:
            p_r, p_g = Fraction(1), Fraction(1)
            for u, v in zip(path, path[1:]):
                p_r /= g.in_degree(v)
                c = edge_c(g, u, v)
                if c is None:
                    covered = False
                    c = Fraction(0)
                p_g *= c
            r += p_r
            G += p_g
            prof[tuple(sorted(g.in_degree(v) for v in path[1:]))] += 1
            pools.add(tuple(sorted(g.in_degree(v) for v in path[1:] if g.nodes[v]["kind"] == "avgpool")))
        walk[x], grad[x], profile[x] = r, G, prof
    return {"inputs": inputs, "walk": walk, "grad": grad if covered else None, "profile": profile, "pools": pools}
