"""Exact analysis of a network: the entry point :func:`analyse`.

For every output ``o`` of a network DAG: Lemma 8 (``sum_x r(x) = 1``), Lemma 9 (``r(x) = 1/d``),
the hypotheses H1-H5 and (S) checked one by one with witnesses (:mod:`initstats.exact.hypotheses`)
and the H/H'/outside label derived from them, the exact annealed ``E(d f_o/d x)^2`` per input and
its total, the pooling degrees and the value the theorems state.  Everything is exact
(:class:`fractions.Fraction`); this module imports no torch.

The annealed value is the path sum where H5 holds.  Where it fails -- a node with two
deterministic out-edges whose paths merge again -- a node-link DAG (independent edge weights) gets
the value with their cross terms (:mod:`initstats.exact.crossterms`); an Arch, whose convolution
kernels are shared, gets no value where pools or sums could carry shared-weight cross terms, with
the reason in ``grad_sq_reason`` -- whichever engine (neuron-level or compressed) is asked.  No
theorem value is given where H5 fails.

:func:`analyse` takes an :class:`~initstats.spec.Arch` or a networkx DAG.  For an Arch it
answers by exact compression (:mod:`initstats.exact.compress`) without building the neuron-level
graph; ``method='neuron'`` builds the graph instead (the reference the compression is tested
against).

Outputs whose incoming edges are identical (same predecessors, same variances, same kind) are
images of each other under a graph automorphism and share one computation.
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx

from ..errors import OptionError
from ..spec import RANDOM_KINDS, Arch, node_id
from .archchecks import shared_witness
from .crossterms import cross_term_pass
from .hypotheses import grad_sq_mode, graph_checks
from .paths import BackwardGraph, CoefficientTable, at_inputs, linear_pass, walk_pass
from .prediction import edge_coefficient, theorem_total
from .results import NO_ANNEALED_KINDS, ExplicitValues, GraphAnalysis, OutputAnalysis
from .symmetry import degree_witness, pooling_degrees

__all__ = ["analyse", "analyse_graph", "to_backward_graph", "METHODS"]

METHODS = ("auto", "neuron", "compressed")


def to_backward_graph(g: nx.DiGraph, var_scale: Fraction = Fraction(1)
                      ) -> tuple[BackwardGraph, list[int | None]]:
    """Integer form of a validated network DAG, and per node its first in-edge that breaks H3.

    The second value holds, for each node ``v``, the smallest node number ``u`` (node order)
    whose edge ``u -> v`` is random with a variance other than ``2/d_v``, or None.  Every random
    weight's variance is multiplied by ``var_scale`` (1/2 for LeCun initialisation).

    Examples
    --------
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["x0", "x1"], kind="input")
    >>> g.add_node("h", kind="relu")
    >>> g.add_edges_from([("x0", "h"), ("x1", "h")])
    >>> g.edges["x0", "h"]["var"] = Fraction(1, 3)            # not He's 2/2
    >>> bg, h3_bad = to_backward_graph(g)
    >>> bg.names, bg.degree, bg.coefs, h3_bad                 # h's first edge breaking H3 comes from node 0
    (['x0', 'x1', 'h'], [0, 0, 2], [Fraction(1, 6), Fraction(1, 2)], [None, None, 0])
    """
    names = list(g.nodes)
    index = {n: i for i, n in enumerate(names)}
    kinds = [g.nodes[n]["kind"] for n in names]
    degree = [g.in_degree(n) for n in names]
    table = CoefficientTable()
    h3_bad: list[int | None] = [None] * len(names)
    succ: list[list[tuple[int, int, int]]] = [[] for _ in names]
    default_key: dict[int, int] = {}
    for i, n in enumerate(names):
        d, kind = degree[i], kinds[i]
        if kind == "input":
            continue
        default_var = Fraction(2, d)
        random = kind in RANDOM_KINDS
        for u, data in g.pred[n].items():
            var = data.get("var")
            if var is None or var == default_var:
                k = default_key.get(i)
                if k is None:
                    k = table.intern(edge_coefficient(kind, default_var * var_scale, d))
                    default_key[i] = k
                var = default_var
            else:
                k = table.intern(edge_coefficient(kind, var * var_scale, d))
            j = index[u]
            if random and var * var_scale != default_var:
                h3_bad[i] = j if h3_bad[i] is None else min(h3_bad[i], j)  # type: ignore[type-var]
            succ[j].append((i, 1, k))
    order = [index[n] for n in nx.topological_sort(g)]
    inputs = [i for i, k in enumerate(kinds) if k == "input"]
    outputs = [i for i, n in enumerate(names) if kinds[i] != "input" and not succ[i]]
    bg = BackwardGraph(names, kinds, degree, succ, table.values, order, inputs, outputs)
    return bg, h3_bad


def _output_signature(g: nx.DiGraph, o) -> tuple:
    return (g.nodes[o]["kind"],
            tuple(sorted(((repr(u), str(data.get("var"))) for u, data in g.pred[o].items()))))


def _edge_var(g: nx.DiGraph, bg: BackwardGraph, var_scale: Fraction):
    def var(u: int, v: int) -> Fraction:
        value = g.edges[bg.names[u], bg.names[v]].get("var")
        return (Fraction(2, bg.degree[v]) if value is None else Fraction(value)) * var_scale
    return var


def _spec_reach(spec: Arch, bg: BackwardGraph, reach: list[bool]):
    """``reach(stage, position)`` of an Arch from the reachability of its neuron-level graph."""
    index = {n: i for i, n in enumerate(bg.names)}
    stages = spec.stages

    def at(k: int, pos: tuple[int, ...]) -> bool:
        return reach[index[node_id(stages[k].name, (0, *pos))]]
    return at


def _analyse_output(g: nx.DiGraph, bg: BackwardGraph, h3_bad: list[int | None], o: int, var_scale: Fraction,
                    spec: Arch | None) -> OutputAnalysis:
    d = len(bg.inputs)
    walk = walk_pass(bg, o)
    reach = [v is not None for v in walk]
    on_path = [u for u in range(len(walk)) if reach[u] and bg.kinds[u] != "input"]
    kinds = frozenset(bg.kinds[u] for u in on_path)
    hidden = {bg.kinds[u] for u in on_path if u != o}
    names = tuple(bg.names[x] for x in bg.inputs)
    r = ExplicitValues(names, at_inputs(walk, bg.inputs))
    one_over_d = Fraction(1, d)
    lemma9_max_dev = max(abs(d * v - 1) for v in r.vals)
    witness = degree_witness(bg, o)
    pool_degrees = pooling_degrees(bg, o)
    checks = graph_checks(bg, o, reach, h3_bad, _edge_var(g, bg, var_scale), witness, arch=spec is not None)
    h5_fails = None if checks[4].holds else "det"
    if spec is not None and h5_fails is None:
        shared = shared_witness(spec, _spec_reach(spec, bg, reach), var_scale)
        if shared is not None:
            checks = checks[:4] + (shared,) + checks[5:]
            h5_fails = "shared"
    mode, reason = grad_sq_mode(kinds, h5_fails, shared_weights=spec is not None)
    path_sum = None
    grad = None
    if not kinds & NO_ANNEALED_KINDS:
        path_sum = ExplicitValues(names, at_inputs(linear_pass(bg, o), bg.inputs))
        if mode == "path":
            grad = path_sum
        elif mode == "cross":
            grad = ExplicitValues(names, at_inputs(cross_term_pass(bg, o), bg.inputs))
    theorem = theorem_total(bg.kinds[o], hidden, pool_degrees) if h5_fails is None else None
    return OutputAnalysis(
        name=str(bg.names[o]), d=d, lemma8_sum=r.total, walk=r,
        lemma9_holds=all(v == one_over_d for v in r.vals), lemma9_max_dev=lemma9_max_dev,
        symmetric=witness is None, witness=witness, hypotheses=checks, node_kinds=kinds, grad_sq=grad,
        grad_sq_reason=reason, path_sum_total=None if path_sum is None else path_sum.total,
        pool_degrees=pool_degrees, theorem_total=theorem,
    )


def analyse_graph(g: nx.DiGraph, *, arch: str | None = None, px: int | None = None,
                  outputs: list | None = None, var_scale: Fraction = Fraction(1),
                  spec: Arch | None = None) -> GraphAnalysis:
    """Exact analysis of a validated network DAG at neuron level (see :func:`analyse`).

    ``outputs`` restricts the analysis to these node ids (default: every non-input sink).  With
    ``spec``, ``g`` is that Arch's neuron-level graph (:func:`initstats.graph.build_graph`), whose
    convolution kernels are shared: H5 is also checked for shared kernel entries, and where H5
    fails with pools or sums on the paths there is no annealed value (the cross-term pass assumes
    independent edge weights).

    Examples
    --------
    >>> from initstats.graph import build_graph
    >>> from initstats.spec import Arch, Dense
    >>> a = analyse_graph(build_graph(Arch((1, 3), (Dense(4), Dense(2, activation=None)))), outputs=["logits[1]"])
    >>> a.method, [o.name for o in a.outputs], a.outputs[0].grad_sq_total, a.outputs[0].lemma9_holds
    ('neuron', ['logits[1]'], Fraction(2, 1), True)
    """
    bg, h3_bad = to_backward_graph(g, var_scale)
    targets = bg.outputs
    if outputs is not None:
        index = {n: i for i, n in enumerate(bg.names)}
        missing = [n for n in outputs if n not in index]
        if missing:
            raise OptionError(f"outputs {missing[:3]!r} are not nodes of the graph")
        targets = [index[n] for n in outputs]
    done: dict[tuple, OutputAnalysis] = {}
    results = []
    for o in targets:
        sig = _output_signature(g, bg.names[o])
        if sig in done:
            results.append(done[sig].renamed(str(bg.names[o])))
        else:
            done[sig] = _analyse_output(g, bg, h3_bad, o, var_scale, spec)
            results.append(done[sig])
    return GraphAnalysis(name=arch or str(g.graph.get("name") or "graph"), d=len(bg.inputs), px=px, method="neuron",
                         outputs=tuple(results))


def analyse(network: Arch | nx.DiGraph, *, method: str = "auto", var_scale: Fraction | int = 1) -> GraphAnalysis:
    """Exact analysis of every output of a network.

    Parameters
    ----------
    network : Arch or networkx.DiGraph
        A specification, or a network DAG (validated with
        :func:`initstats.graph.check_graph`).  The outputs of an Arch are its logits (neurons that
        a pooling window or stride leaves unused are not outputs); those of a DAG are its
        non-input nodes without successors.
    method : {'auto', 'neuron', 'compressed'}
        For an Arch, ``'auto'``/``'compressed'`` answer by exact compression (channel quotient,
        and a per-axis product when the network has no residual sums); ``'neuron'`` builds the
        neuron-level graph.  A DAG is always analysed at neuron level.
    var_scale : Fraction
        Multiplies the variance of every random weight: 1 for He initialisation (the graph's
        ``var``, default ``2/in-degree``), ``Fraction(1, 2)`` for LeCun.  H3 then fails.

    Returns
    -------
    GraphAnalysis

    Examples
    --------
    >>> from initstats.families import make_arch
    >>> a = analyse(make_arch("cnn", 32, padding="circular", downsample="avg"))
    >>> out = a.outputs[0]
    >>> out.lemma8_sum, out.symmetric, out.lemma9_holds, out.grad_sq_total, out.hypothesis_set
    (Fraction(1, 1), True, True, Fraction(1, 32), "H'")
    """
    if method not in METHODS:
        raise OptionError(f"method={method!r} is unknown; expected one of {', '.join(METHODS)}")
    try:
        var_scale = Fraction(var_scale)
    except (TypeError, ValueError):
        raise OptionError(f"var_scale={var_scale!r} is not an exact number; use e.g. Fraction(1, 2)") from None
    if var_scale <= 0:
        raise OptionError(f"var_scale={var_scale} must be positive")
    if isinstance(network, Arch):
        if method == "neuron":
            from ..graph.build import build_graph

            last = network.stages[-1]
            logits = [node_id(last.name, (k,)) for k in range(last.channels)]
            return analyse_graph(build_graph(network), arch=network.name, px=network.px, outputs=logits,
                                 var_scale=var_scale, spec=network)
        from .compress import analyse_compressed

        return analyse_compressed(network, var_scale)
    if isinstance(network, nx.DiGraph):
        from ..graph.io import check_graph

        check_graph(network)
        return analyse_graph(network, var_scale=var_scale)
    raise OptionError(f"cannot analyse a {type(network).__name__}; pass an Arch or a networkx DiGraph")
