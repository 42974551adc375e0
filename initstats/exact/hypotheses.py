"""The paper's hypotheses H1-H5 and (S), checked one by one on the paths to an output.

Every check looks only at the nodes on paths to the output ``o`` and, where it fails, names a
witness: concrete node ids and edges.  What each check means here:

H1 (ReLU)
    Every hidden node (neither an input nor ``o``) on a path to ``o`` applies a ReLU.  (H') admits
    average pools; residual sums are read the same way (deterministic weights, no nonlinearity).
    The output may be linear: it is a logit (a ReLU there halves the theorems' constant).  A
    hidden *linear* node breaks H1 as the paper states it; the annealed model still applies with
    gate 1 there, so the theorems give no value but the H/H' label does not change.  A max pool
    or BatchNorm node has no annealed model: the network is then outside (H').
H2 (layers)
    Always holds in our representations: for a node-link DAG take as layers the longest-path depth
    from the inputs, which grows along every edge; for an :class:`~initstats.spec.Arch` take its
    stages, every edge going to a later stage.  Either way a path crosses a layer at most once.
H3 (He variance)
    Every random weight on a path to ``o`` has variance ``2 / in-degree``; witness: the first
    edge that does not (zero-padded borders, LeCun scaling, explicit ``var``).
H4 (independent layers)
    Always holds: a node-link DAG draws one independent weight per random edge, and each stage of
    an Arch draws its own kernel or matrix (sharing happens only inside a stage).
H5 (uncorrelated weights from a same node)
    ``E[w w'] = 0`` for two distinct weights *from* a same node.  Random out-edges of a node-link
    DAG are independent and centred, so H5 fails exactly where a node on a path to ``o`` has two
    deterministic out-edges (into average pools or sums) that lead to ``o``: overlapping pooling
    windows (stride < kernel), or a source shared by several pools or sums.  In an Arch a shared
    kernel entry can also connect one node to two nodes (reflect padding, or a padding longer than
    the input): see :mod:`initstats.exact.archchecks`.
(S)
    Every input has the same multiset of path-degrees (:mod:`initstats.exact.symmetry`).

The texts are built here once, so that the neuron-level and the compressed engine, which check
the same network in different representations, report identical checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

from .paths import BackwardGraph
from .results import MERGE_KINDS, NO_ANNEALED_KINDS, HypothesisCheck, Witness

__all__ = ["graph_checks", "h1_check", "h2_check", "h3_check", "h4_check", "h5_holds_check", "h5_det_check",
           "h5_shared_check", "s_check", "det_weight", "det_witness", "grad_sq_mode"]


def _q(node: object) -> str:
    return f"'{node}'"


def h1_check(node: str | None, kind: str | None, merges: bool) -> HypothesisCheck:
    """H1 from its witness: the first failing node and its kind (None when it holds).

    Examples
    --------
    >>> h1_check("z[0]", "linear", False).witness
    "hidden node 'z[0]' is linear: no ReLU follows it"
    """
    if node is None:
        detail = "every hidden node on a path to the output applies a ReLU"
        if merges:
            detail += (", or is an average pool or a residual sum, which (H') admits (sums are read like pools: "
                       "deterministic weights, no nonlinearity)")
        return HypothesisCheck("H1", True, None, detail + "; the output itself may be linear (a logit)")
    if kind == "maxpool":
        witness = f"node {_q(node)} is a max pool: neither a ReLU nor an average, no annealed gate"
    elif kind == "batchnorm":
        witness = f"node {_q(node)} normalises over the batch before its ReLU: not a fixed weighted sum"
    else:
        witness = f"hidden node {_q(node)} is {kind}: no ReLU follows it"
    if kind in NO_ANNEALED_KINDS:
        detail = "max pooling or BatchNorm on a path to the output: no annealed model, outside (H')"
    else:
        detail = ("hidden nodes without ReLU on paths to the output: the annealed model gives them gate 1 and "
                  "stays exact, but the theorems assume a ReLU (no theorem value); the H/H' label does not change")
    return HypothesisCheck("H1", False, witness, detail, (str(node),))


def h2_check(arch: bool) -> HypothesisCheck:
    """H2 holds in every representation initstats has; the detail says which layers make it hold.

    Examples
    --------
    >>> c = h2_check(arch=False)
    >>> c.name, c.holds, c.witness
    ('H2', True, None)
    """
    if arch:
        detail = ("layers: the stages of the spec; every edge goes to a later stage, so a path crosses each "
                  "layer at most once")
    else:
        detail = ("layers: the longest-path depth from the inputs, which grows along every edge, so a path "
                  "crosses each layer at most once (true of every DAG)")
    return HypothesisCheck("H2", True, None, detail)


def h3_check(edge: tuple[str, str] | None, var: Fraction | None = None, in_degree: int | None = None
             ) -> HypothesisCheck:
    """H3 from its witness edge ``(u, v)``, the edge's variance and ``v``'s in-degree.

    Examples
    --------
    >>> h3_check(None).holds
    True
    >>> h3_check(("x0", "h"), Fraction(1, 3), 2).witness
    "edge 'x0' -> 'h' has variance 1/3, not 2/in-degree = 2/2"
    """
    if edge is None:
        return HypothesisCheck("H3", True, None, "every random weight on a path to the output has variance "
                               "2/in-degree (He); average-pool and sum weights are exempt, as (H') allows")
    u, v = edge
    witness = f"edge {_q(u)} -> {_q(v)} has variance {var}, not 2/in-degree = 2/{in_degree}"
    detail = ("the engine uses each edge's own variance: this changes the theorems' constant, not the "
              "H/H' label")
    return HypothesisCheck("H3", False, witness, detail, (str(u), str(v)))


def h4_check(arch: bool) -> HypothesisCheck:
    """H4 holds in every representation initstats has; the detail says why.

    Examples
    --------
    >>> c = h4_check(arch=True)
    >>> c.holds, c.detail.startswith("each stage draws its own kernel")
    (True, True)
    """
    if arch:
        detail = ("each stage draws its own kernel or matrix, independently of the other stages (weights are "
                  "shared only inside a stage)")
    else:
        detail = ("every random edge carries its own independently drawn weight (deterministic weights are "
                  "constants), so weights of different layers are independent")
    return HypothesisCheck("H4", True, None, detail)


def h5_holds_check(arch: bool) -> HypothesisCheck:
    """H5 holds; the detail says what was checked (``arch``: shared kernel entries too).

    Examples
    --------
    >>> c = h5_holds_check(arch=True)
    >>> c.holds, c.detail.endswith("no shared kernel entry connects a node to two nodes")
    (True, True)
    """
    detail = ("no node on a path to the output has two deterministic out-edges leading to it (pooling "
              "windows do not overlap)")
    if arch:
        detail += ", and no shared kernel entry connects a node to two nodes"
    else:
        detail += "; random out-edges carry independent centred weights"
    return HypothesisCheck("H5", True, None, detail)


def h5_det_check(u: str, s: str, t: str, w1: Fraction, w2: Fraction) -> HypothesisCheck:
    """H5 fails: ``u`` has deterministic out-edges to ``s`` and ``t``, weights ``w1`` and ``w2``.

    Examples
    --------
    >>> h5_det_check("z3", "p2", "p3", Fraction(1, 3), Fraction(1, 3)).witness
    "node 'z3' has deterministic out-edges 'z3' -> 'p2' (weight 1/3) and 'z3' -> 'p3' (weight 1/3), both on paths to the output: E[w w'] = 1/9, not 0"
    """
    witness = (f"node {_q(u)} has deterministic out-edges {_q(u)} -> {_q(s)} (weight {w1}) and {_q(u)} -> "
               f"{_q(t)} (weight {w2}), both on paths to the output: E[w w'] = {w1 * w2}, not 0")
    detail = ("two deterministic weights from a same node (overlapping average-pooling windows, stride < kernel, "
              "or a source shared by several pools or sums) are correlated: outside (H'), and the path sum "
              "misses their cross terms")
    return HypothesisCheck("H5", False, witness, detail, (str(u), str(s), str(t)))


def h5_shared_check(u: str, s: str, t: str, stage: str, entries: int, cov: Fraction) -> HypothesisCheck:
    """H5 fails: the out-edges ``u -> s`` and ``u -> t`` share ``entries`` entries of a convolution kernel.

    Examples
    --------
    >>> h5_shared_check("x[0,1]", "conv1[0,0]", "conv1[0,2]", "conv1", 1, Fraction(2, 3)).witness
    "node 'x[0,1]' has out-edges 'x[0,1]' -> 'conv1[0,0]' and 'x[0,1]' -> 'conv1[0,2]' that share 1 entry of the conv1 kernel: E[w w'] = 2/3, not 0"
    """
    plural = "entry" if entries == 1 else "entries"
    witness = (f"node {_q(u)} has out-edges {_q(u)} -> {_q(s)} and {_q(u)} -> {_q(t)} that share {entries} "
               f"{plural} of the {stage} kernel: E[w w'] = {cov}, not 0")
    detail = ("a shared convolution kernel connects one node to two nodes through the same entry (reflect "
              "padding, or a padding longer than the input): two weights from that node are correlated, "
              "outside (H')")
    return HypothesisCheck("H5", False, witness, detail, (str(u), str(s), str(t)))


def s_check(witness: Witness | None) -> HypothesisCheck:
    """(S) from the path-degree witness of :mod:`initstats.exact.symmetry`.

    Examples
    --------
    >>> s_check(None).holds
    True
    >>> s_check(Witness(("x0", "x1"), (2,), (0, 1))).witness
    "inputs 'x0' and 'x1' have 0 and 1 paths of path-degree {2}"
    """
    if witness is None:
        return HypothesisCheck("S", True, None, "every input has the same multiset of path-degrees "
                               "(Lemma 9 then gives r(x) = 1/d)")
    a, b = witness.inputs
    if witness.path_degree is None:
        return HypothesisCheck("S", False, f"inputs {witness.text()}",
                               "the inputs' walk probabilities differ, so their path-degree multisets do", (a, b))
    degree = "{" + ",".join(map(str, witness.path_degree)) + "}"
    text = (f"inputs {_q(a)} and {_q(b)} have {witness.counts[0]} and {witness.counts[1]} paths of "
            f"path-degree {degree}")
    return HypothesisCheck("S", False, text, "the inputs' path-degree multisets differ", (a, b))


def det_weight(bg: BackwardGraph, v: int) -> Fraction:
    """The deterministic weight of an edge into node ``v``: ``1/d_v`` into an average pool, 1 into a sum.

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
    >>> det_weight(bg, bg.names.index("p0")), det_weight(bg, y)     # 1/in-degree into an average pool
    (Fraction(1, 2), Fraction(1, 1))
    """
    return Fraction(1, bg.degree[v]) if bg.kinds[v] == "avgpool" else Fraction(1)


def det_witness(bg: BackwardGraph, o: int, reach: Sequence[bool]) -> tuple[int, int, int] | None:
    """The first node (in node order) with two deterministic out-edges leading to ``o``, and those edges.

    Returns ``(u, s, t)`` with ``s < t`` the two smallest such successors, or None when H5's
    deterministic part holds.

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
    >>> from initstats.exact.paths import walk_pass
    >>> reach = [v is not None for v in walk_pass(bg, y)]      # the nodes on a path to y
    >>> u, s, t = det_witness(bg, y, reach)
    >>> bg.names[u], bg.names[s], bg.names[t]      # x1 feeds both pools
    ('x1', 'p0', 'p1')
    """
    kinds, succ = bg.kinds, bg.succ
    for u in range(len(bg.names)):
        if not reach[u] or u == o:
            continue
        dets = sorted(v for v, _, _ in succ[u] if reach[v] and kinds[v] in MERGE_KINDS)
        if len(dets) >= 2:
            return u, dets[0], dets[1]
    return None


def graph_checks(bg: BackwardGraph, o: int, reach: Sequence[bool], h3_bad: Sequence[int | None],
                 edge_var: Callable[[int, int], Fraction], s_witness: Witness | None, *, arch: bool = False
                 ) -> tuple[HypothesisCheck, ...]:
    """H1-H5 and (S) of output ``o`` of a node-link DAG (independent edge weights).

    With ``arch=True`` (the neuron-level graph of an Arch) the H2, H4 and H5 texts are the
    Arch's; the shared-kernel part of H5 is then checked by :mod:`initstats.exact.archchecks`.

    ``reach[u]`` says whether ``u`` lies on a path to ``o``; ``h3_bad[v]`` is the smallest
    predecessor of ``v`` whose edge breaks H3 (None if none); ``edge_var(u, v)`` is that edge's
    variance.  Witnesses are the first in node order.

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
    >>> from initstats.exact.paths import walk_pass
    >>> reach = [v is not None for v in walk_pass(bg, y)]      # the nodes on a path to y
    >>> checks = graph_checks(bg, y, reach, [None] * len(bg.names), lambda u, v: Fraction(2, bg.degree[v]), None)
    >>> [(c.name, c.holds) for c in checks]
    [('H1', True), ('H2', True), ('H3', True), ('H4', True), ('H5', False), ('S', True)]
    >>> checks[4].nodes
    ('x1', 'p0', 'p1')
    """
    names, kinds = bg.names, bg.kinds
    on_path = [u for u in range(len(names)) if reach[u] and kinds[u] != "input"]
    merges = any(kinds[u] in MERGE_KINDS for u in on_path)
    bad = [u for u in on_path if kinds[u] in NO_ANNEALED_KINDS]
    if not bad:
        bad = [u for u in on_path if kinds[u] == "linear" and u != o]
    h1 = h1_check(str(names[bad[0]]), kinds[bad[0]], merges) if bad else h1_check(None, None, merges)

    h3_nodes = [v for v in on_path if h3_bad[v] is not None]
    if h3_nodes:
        v = h3_nodes[0]
        u = h3_bad[v]
        h3 = h3_check((str(names[u]), str(names[v])), edge_var(u, v), bg.degree[v])  # type: ignore[arg-type]
    else:
        h3 = h3_check(None)

    found = det_witness(bg, o, reach)
    if found is None:
        h5 = h5_holds_check(arch)
    else:
        u, s, t = found
        h5 = h5_det_check(str(names[u]), str(names[s]), str(names[t]), det_weight(bg, s), det_weight(bg, t))
    return (h1, h2_check(arch), h3, h4_check(arch), h5, s_check(s_witness))


def grad_sq_mode(node_kinds: frozenset[str], h5_fails: str | None, shared_weights: bool
                 ) -> tuple[str, str | None]:
    """How to obtain the annealed ``E(df/dx)^2``: ``('path' | 'cross' | 'none', reason)``.

    ``h5_fails`` is None, ``'det'`` (deterministic fan-out) or ``'shared'`` (shared kernel entries);
    ``shared_weights`` is True for an Arch, whose convolution kernels are shared.  The reason is
    None exactly when the value is the plain path sum under H5.

    Examples
    --------
    >>> grad_sq_mode(frozenset({"linear", "avgpool"}), "det", False)[0]
    'cross'
    >>> grad_sq_mode(frozenset({"relu", "avgpool"}), "det", True)[0]
    'none'
    """
    missing = node_kinds & NO_ANNEALED_KINDS
    if missing:
        return "none", f"no annealed model: {', '.join(sorted(missing))} on a path to the output (H1 fails)"
    if h5_fails is None:
        return "path", None
    if not shared_weights:
        return "cross", ("H5 fails: deterministic out-edges of a node merge again; the value includes their "
                         "cross terms, which the path sum misses")
    if node_kinds & MERGE_KINDS:
        return "none", ("H5 fails and convolution kernels are shared: the cross terms through shared kernel "
                        "entries are not computed, so no annealed value is given (the path sum is not it)")
    return "path", ("H5 fails only through shared kernel entries, and no average pool or sum merges paths: "
                    "every cross term multiplies E[D_s D_t] = 0 (s != t), so the path sum is the annealed value")
