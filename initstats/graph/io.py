"""Node-link JSON for network DAGs, and the validation every graph goes through.

File format: networkx's node-link data with the edges under ``"links"``::

    {"directed": true, "multigraph": false, "graph": {},
     "nodes": [{"id": "x0", "kind": "input"}, {"id": "h", "kind": "relu"}, ...],
     "links": [{"source": "x0", "target": "h", "var": "2/3"}, ...]}

``kind`` is one of ``input relu linear avgpool sum sumrelu maxpool batchnorm``.  ``var`` (optional) is
the variance of a random weight as an exact fraction ``"p/q"`` (an integer or a decimal string
such as ``"0.5"`` is read exactly; a JSON float is refused because it is not exact).  Without
``var`` a random-weight edge has H3's variance ``2 / in-degree``.  Edges into deterministic nodes
(``avgpool`` averages, ``sum`` adds, ``sumrelu`` adds then applies a ReLU, ``maxpool`` takes the max)
carry no ``var``.

A valid network DAG has no directed cycle, its sources are exactly its ``input`` nodes, and
its outputs are the non-input nodes without successors.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import networkx as nx

from ..errors import GraphError, GraphFormatError, NotADAGError, SpecFileError
from ..files import write_atomic
from ..spec import DETERMINISTIC_KINDS, NODE_KINDS

__all__ = ["parse_var", "check_graph", "to_node_link", "from_node_link", "read_graph", "write_graph"]


def parse_var(value: object, edge: tuple[object, object]) -> Fraction:
    """Read an edge's ``var`` exactly; raise :class:`GraphFormatError` naming the edge otherwise.

    Examples
    --------
    >>> parse_var("2/9", ("x0", "h")), parse_var("0.5", ("x0", "h")), parse_var(1, ("x0", "h"))
    (Fraction(2, 9), Fraction(1, 2), Fraction(1, 1))
    >>> parse_var(0.5, ("x0", "h"))
    Traceback (most recent call last):
        ...
    initstats.errors.GraphFormatError: edge 'x0' -> 'h': var=0.5 (float) is not exact; write it as a string "p/q", e.g. "2/9"
    """
    if isinstance(value, Fraction):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Fraction(value)
    elif isinstance(value, str):
        try:
            result = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise GraphFormatError(
                f"edge {edge[0]!r} -> {edge[1]!r}: var={value!r} is not an exact fraction; write it "
                f"as \"p/q\", e.g. \"2/9\""
            ) from None
    else:
        raise GraphFormatError(
            f"edge {edge[0]!r} -> {edge[1]!r}: var={value!r} ({type(value).__name__}) is not exact; "
            f"write it as a string \"p/q\", e.g. \"2/9\""
        )
    if result < 0:
        raise GraphFormatError(f"edge {edge[0]!r} -> {edge[1]!r}: var={value!r} is negative; a variance is >= 0")
    return result


def check_graph(g: nx.DiGraph) -> None:
    """Validate a network DAG in place (``var`` attributes become Fractions).

    Raises
    ------
    GraphError
        Not a directed simple graph, or no inputs or no outputs.
    GraphFormatError
        A node without a known ``kind``, an input with predecessors, a non-input source, or a
        ``var`` that is unparsable, negative or on an edge into a deterministic node.
    NotADAGError
        A directed cycle (named in the message).

    Examples
    --------
    >>> g = nx.DiGraph()
    >>> g.add_node("x0", kind="input")
    >>> g.add_node("y", kind="linear")
    >>> g.add_edge("x0", "y", var="1/3")
    >>> check_graph(g)
    >>> g.edges["x0", "y"]["var"]               # now exact
    Fraction(1, 3)
    >>> g.add_edge("y", "x0")
    >>> check_graph(g)
    Traceback (most recent call last):
        ...
    initstats.errors.GraphFormatError: node 'x0' is an input but has a predecessor 'y'; inputs are sources
    """
    if not isinstance(g, nx.DiGraph) or g.is_multigraph():
        raise GraphError(f"expected a networkx DiGraph, got {type(g).__name__}; multigraphs and undirected "
                         f"graphs are not network DAGs")
    if g.number_of_nodes() == 0:
        raise GraphError("the graph has no nodes")
    for node, kind in g.nodes(data="kind"):
        if kind not in NODE_KINDS:
            hint = "missing" if kind is None else f"{kind!r} is unknown"
            raise GraphFormatError(f"node {node!r}: kind {hint}; expected one of {', '.join(NODE_KINDS)}")
        indeg = g.in_degree(node)
        if kind == "input" and indeg:
            pred = next(iter(g.pred[node]))
            raise GraphFormatError(f"node {node!r} is an input but has a predecessor {pred!r}; inputs are sources")
        if kind != "input" and not indeg:
            raise GraphFormatError(
                f"node {node!r} of kind {kind!r} has no predecessors; every source must be an input node"
            )
    for u, v, data in g.edges(data=True):
        if "var" in data:
            if g.nodes[v]["kind"] in DETERMINISTIC_KINDS:
                raise GraphFormatError(
                    f"edge {u!r} -> {v!r} has var={data['var']!r} but {v!r} is a {g.nodes[v]['kind']} node "
                    f"with deterministic weights; remove var"
                )
            data["var"] = parse_var(data["var"], (u, v))
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        path = " -> ".join(repr(e[0]) for e in cycle) + f" -> {cycle[0][0]!r}"
        raise NotADAGError(f"the graph has a directed cycle: {path}; a feed-forward network must be acyclic")
    if not any(k == "input" for _, k in g.nodes(data="kind")):
        raise GraphError("the graph has no input node (kind 'input')")
    if not any(k != "input" and not g.out_degree(n) for n, k in g.nodes(data="kind")):
        raise GraphError("the graph has no output: every node is an input; an output is a non-input node "
                         "without successors")


def to_node_link(g: nx.DiGraph) -> dict:
    """Node-link data of ``g`` with ``var`` as ``"p/q"`` strings.

    Examples
    --------
    >>> g = nx.DiGraph([("x0", "y")])
    >>> g.nodes["x0"]["kind"], g.nodes["y"]["kind"] = "input", "linear"
    >>> g.edges["x0", "y"]["var"] = Fraction(2, 3)
    >>> to_node_link(g)["links"]
    [{'var': '2/3', 'source': 'x0', 'target': 'y'}]
    """
    data = nx.node_link_data(g, edges="links")
    for link in data["links"]:
        if "var" in link:
            link["var"] = str(Fraction(link["var"]))
    data["graph"] = {k: v for k, v in data.get("graph", {}).items() if isinstance(v, (str, int, float, bool))}
    return data


def from_node_link(data: object, *, source: str = "data") -> nx.DiGraph:
    """Build and validate a network DAG from node-link data (see the module docstring).

    Examples
    --------
    >>> g = from_node_link({"nodes": [{"id": "x0", "kind": "input"}, {"id": "x1", "kind": "input"},
    ...                               {"id": "y", "kind": "relu"}],
    ...                     "links": [{"source": "x0", "target": "y", "var": "1/2"}, {"source": "x1", "target": "y"}]})
    >>> sorted(g.nodes(data="kind")), g.edges["x0", "y"]["var"]
    ([('x0', 'input'), ('x1', 'input'), ('y', 'relu')], Fraction(1, 2))
    >>> from_node_link({"nodes": [{"id": "x0", "kind": "input"}], "links": [{"source": "x0", "target": "z"}]})
    Traceback (most recent call last):
        ...
    initstats.errors.GraphFormatError: data: links[0] refers to node 'z', which is not in 'nodes'
    """
    if not isinstance(data, dict):
        raise GraphFormatError(f"{source}: expected a JSON object with 'nodes' and 'links', got {type(data).__name__}")
    for key in ("nodes", "links"):
        if not isinstance(data.get(key), list):
            raise GraphFormatError(f"{source}: missing list {key!r}; node-link data needs 'nodes' and 'links'")
    if data.get("directed") is False or data.get("multigraph") is True:
        raise GraphFormatError(f"{source}: a network DAG must be directed and not a multigraph "
                               f"(directed={data.get('directed')!r}, multigraph={data.get('multigraph')!r})")
    seen_nodes: set = set()
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise GraphFormatError(f"{source}: nodes[{i}] = {node!r} has no 'id'")
        try:
            hash(node["id"])
        except TypeError:
            raise GraphFormatError(f"{source}: nodes[{i}] has an id {node['id']!r} that is not a string or number") from None
        if node["id"] in seen_nodes:
            raise GraphFormatError(f"{source}: node {node['id']!r} is listed twice")
        seen_nodes.add(node["id"])
    seen: set = set()
    for i, link in enumerate(data["links"]):
        if not isinstance(link, dict) or "source" not in link or "target" not in link:
            raise GraphFormatError(f"{source}: links[{i}] = {link!r} needs 'source' and 'target'")
        edge = (link["source"], link["target"])
        for end in edge:
            try:
                hash(end)
            except TypeError:
                raise GraphFormatError(f"{source}: links[{i}] refers to {end!r}, which is not a node id "
                                       f"(a string or number)") from None
            if end not in seen_nodes:
                raise GraphFormatError(f"{source}: links[{i}] refers to node {end!r}, which is not in 'nodes'")
        if edge in seen:
            raise GraphFormatError(
                f"{source}: edge {edge[0]!r} -> {edge[1]!r} is listed twice; merge parallel weights into one "
                f"edge whose var is the sum of their variances"
            )
        seen.add(edge)
    payload = {**data, "directed": True, "multigraph": False}
    try:
        g = nx.node_link_graph(payload, directed=True, multigraph=False, edges="links")
    except (KeyError, TypeError, ValueError, nx.NetworkXError) as err:
        raise GraphFormatError(f"{source}: not valid node-link data ({err})") from None
    check_graph(g)
    return g


def read_graph(path: str | os.PathLike) -> nx.DiGraph:
    """Read and validate a node-link JSON file.

    Examples
    --------
    >>> import tempfile
    >>> from initstats.exact import analyse
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "net.json"
    ...     _ = path.write_text(json.dumps({
    ...         "nodes": [{"id": "x0", "kind": "input"}, {"id": "x1", "kind": "input"}, {"id": "h", "kind": "relu"},
    ...                   {"id": "y", "kind": "linear"}],
    ...         "links": [{"source": "x0", "target": "h"}, {"source": "x1", "target": "h"},
    ...                   {"source": "h", "target": "y"}]}))
    ...     g = read_graph(path)
    >>> g.number_of_nodes(), g.number_of_edges()
    (4, 3)
    >>> analyse(g).outputs[0].grad_sq_total      # He variances: 2 for every output
    Fraction(2, 1)
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise SpecFileError(f"cannot read spec file {str(p)!r}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise SpecFileError(f"spec file {str(p)!r} is not UTF-8 text (byte {err.start}); expected node-link JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecFileError(f"spec file {str(p)!r} is not JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    return from_node_link(data, source=str(p))


def write_graph(g: nx.DiGraph, path: str | os.PathLike) -> None:
    """Write ``g`` as node-link JSON (atomically).

    Examples
    --------
    >>> import tempfile
    >>> from initstats.graph import build_graph
    >>> from initstats.spec import Arch, Conv, Dense
    >>> g = build_graph(Arch((1, 4), (Conv(2, 3), Dense(1, activation=None))))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_graph(g, Path(tmp) / "conv.json")
    ...     back = read_graph(Path(tmp) / "conv.json")
    >>> nx.utils.graphs_equal(g, back), back.edges["x[0,0]", "conv1[0,0]"]["var"]
    (True, Fraction(2, 3))
    """
    write_atomic(path, json.dumps(to_node_link(g)))
