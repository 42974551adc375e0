"""Exact analysis of a network: the entry point :func:`analyse`.

For every output ``o`` of a network DAG: Lemma 8 (``sum_x r(x) = 1``), Lemma 9 (``r(x) = 1/d``),
assumption (S) with a witness, the annealed ``E(d f_o/d x)^2`` per input and its total, the
pooling degrees and the value the theorems state, and which hypothesis set the paths to ``o``
satisfy.  Everything is exact (:class:`fractions.Fraction`); this module imports no torch.

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
from ..spec import RANDOM_KINDS, Arch, classify_kinds, node_id
from .paths import BackwardGraph, at_inputs, linear_pass, walk_pass
from .prediction import COVERED_KINDS, edge_coefficient, theorem_total
from .results import ExplicitValues, GraphAnalysis, OutputAnalysis
from .symmetry import degree_witness, pooling_degrees

__all__ = ["analyse", "analyse_graph", "to_backward_graph", "METHODS"]

METHODS = ("auto", "neuron", "compressed")


def to_backward_graph(g: nx.DiGraph, var_scale: Fraction = Fraction(1)) -> tuple[BackwardGraph, list[bool]]:
    """Integer form of a validated network DAG, and per node whether its in-edges satisfy H3.

    The second value is True for a node whose incoming variances all equal ``2/d_v``.  Every
    random weight's variance is multiplied by ``var_scale`` (1/2 for LeCun initialisation).
    """
    names = list(g.nodes)
    index = {n: i for i, n in enumerate(names)}
    kinds = [g.nodes[n]["kind"] for n in names]
    degree = [g.in_degree(n) for n in names]
    coef_index: dict[Fraction | None, int] = {}
    coefs: list[Fraction | None] = []
    he_ok = [True] * len(names)
    succ: list[list[tuple[int, int, int]]] = [[] for _ in names]
    default_key: dict[int, int] = {}
    for i, n in enumerate(names):
        d, kind = degree[i], kinds[i]
        if kind == "input":
            continue
        default_var = Fraction(2, d)
        for u, data in g.pred[n].items():
            var = data.get("var")
            if var is None or var == default_var:
                he_ok[i] = he_ok[i] and var_scale == 1
                k = default_key.get(i)
                if k is None:
                    c = edge_coefficient(kind, default_var * var_scale, d)
                    k = coef_index.setdefault(c, len(coefs))
                    if k == len(coefs):
                        coefs.append(c)
                    default_key[i] = k
            else:
                he_ok[i] = False
                c = edge_coefficient(kind, var * var_scale, d)
                k = coef_index.setdefault(c, len(coefs))
                if k == len(coefs):
                    coefs.append(c)
            succ[index[u]].append((i, 1, k))
    order = [index[n] for n in nx.topological_sort(g)]
    inputs = [i for i, k in enumerate(kinds) if k == "input"]
    outputs = [i for i, n in enumerate(names) if kinds[i] != "input" and not succ[i]]
    bg = BackwardGraph(names, kinds, degree, succ, coefs, order, inputs, outputs)
    return bg, he_ok


def _output_signature(g: nx.DiGraph, o) -> tuple:
    return (g.nodes[o]["kind"],
            tuple(sorted(((repr(u), str(data.get("var"))) for u, data in g.pred[o].items()))))


def _analyse_output(bg: BackwardGraph, he_ok: list[bool], o: int) -> OutputAnalysis:
    d = len(bg.inputs)
    walk = walk_pass(bg, o)
    reach = [u for u, v in enumerate(walk) if v is not None and bg.kinds[u] != "input"]
    kinds = {bg.kinds[u] for u in reach}
    hidden = {bg.kinds[u] for u in reach if u != o}
    names = tuple(bg.names[x] for x in bg.inputs)
    r = ExplicitValues(names, at_inputs(walk, bg.inputs))
    one_over_d = Fraction(1, d)
    lemma9_max_dev = max(abs(d * v - 1) for v in r.vals)
    witness = degree_witness(bg, o)
    pool_degrees = pooling_degrees(bg, o)
    grad = ExplicitValues(names, at_inputs(linear_pass(bg, o), bg.inputs)) if kinds <= COVERED_KINDS else None
    return OutputAnalysis(
        output=str(bg.names[o]), d=d, lemma8_sum=r.total, walk=r,
        lemma9_holds=all(v == one_over_d for v in r.vals), lemma9_max_dev=lemma9_max_dev,
        symmetric=witness is None, witness=witness, hypothesis=classify_kinds(kinds),
        h3_holds=all(he_ok[u] for u in reach if bg.kinds[u] in RANDOM_KINDS), grad_sq=grad,
        pool_degrees=pool_degrees, theorem_total=theorem_total(bg.kinds[o], hidden, pool_degrees),
    )


def analyse_graph(g: nx.DiGraph, *, arch: str | None = None, px: int | None = None,
                  outputs: list | None = None, var_scale: Fraction = Fraction(1)) -> GraphAnalysis:
    """Exact analysis of a validated network DAG at neuron level (see :func:`analyse`).

    ``outputs`` restricts the analysis to these node ids (default: every non-input sink).
    """
    bg, he_ok = to_backward_graph(g, var_scale)
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
            base = done[sig]
            results.append(_renamed(base, str(bg.names[o])))
        else:
            done[sig] = _analyse_output(bg, he_ok, o)
            results.append(done[sig])
    return GraphAnalysis(arch or str(g.graph.get("name") or "graph"), len(bg.inputs), px, "neuron", tuple(results))


def _renamed(out: OutputAnalysis, name: str) -> OutputAnalysis:
    from dataclasses import replace

    return replace(out, output=name)


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
    >>> out.lemma8_sum, out.symmetric, out.lemma9_holds, out.grad_sq_total, out.hypothesis
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
                                 var_scale=var_scale)
        from .compress import analyse_compressed

        return analyse_compressed(network, var_scale)
    if isinstance(network, nx.DiGraph):
        from ..graph.io import check_graph

        check_graph(network)
        return analyse_graph(network, var_scale=var_scale)
    raise OptionError(f"cannot analyse a {type(network).__name__}; pass an Arch or a networkx DiGraph")
