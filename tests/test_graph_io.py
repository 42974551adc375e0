"""Node-link JSON I/O of network DAGs: exact round trips and clear errors on bad files."""

from __future__ import annotations

import copy
import json
import re
from fractions import Fraction

import networkx as nx
import pytest

from initstats.errors import GraphError, GraphFormatError, InitStatsError, NotADAGError, SpecFileError
from initstats.exact import analyse
from initstats.graph import build_graph, check_graph, from_node_link, read_graph, to_node_link, write_graph
from initstats.spec import Arch, AvgPool, Conv, Dense, MaxPool, Residual

from .crossref import overlap_net

FRACTION = re.compile(r"^-?\d+(/\d+)?$")

# Small specs that together produce every kind of node and both kinds of explicit var:
# zero-padded borders (var 2/fan_in != 2/in-degree) and a circular kernel wrapping onto itself
# (two taps on the same input: the variances add up).
ROUND_TRIP_SPECS = {
    "zero-padded conv": Arch((1, 4), (Conv(2, 3), Dense(2, activation=None))),
    "wrapped circular conv": Arch((1, 2), (Conv(2, 3, padding="circular"), Dense(1, activation=None))),
    "2-D pools and residual": Arch((2, 4, 4), (Conv(2, 3), Residual((Conv(2, 3, activation=None),)),
                                               AvgPool(2), MaxPool(None), Dense(3, activation=None))),
    "batchnorm dense": Arch((1, 3), (Dense(2, batchnorm=True), Dense(1, activation=None))),
}


def _edges_with_var(g: nx.DiGraph) -> dict:
    return {(u, v): data["var"] for u, v, data in g.edges(data=True) if "var" in data}


@pytest.mark.parametrize("name", list(ROUND_TRIP_SPECS))
def test_round_trip_preserves_nodes_kinds_edges_and_exact_var(name):
    g = build_graph(ROUND_TRIP_SPECS[name])
    text = json.dumps(to_node_link(g))        # plain json: no default= needed
    data = json.loads(text)
    assert "links" in data and "edges" not in data
    assert data["directed"] is True and data["multigraph"] is False
    h = from_node_link(data)

    assert list(h.nodes) == list(g.nodes)     # same nodes, same (topological) order
    assert dict(h.nodes(data="kind")) == dict(g.nodes(data="kind"))
    assert set(h.edges) == set(g.edges)
    var_g, var_h = _edges_with_var(g), _edges_with_var(h)
    assert var_h == var_g
    assert all(type(v) is Fraction for v in var_h.values())
    # var is written as an exact "p/q" string, only where build_graph set one
    written = {(link["source"], link["target"]): link["var"] for link in data["links"] if "var" in link}
    assert set(written) == set(var_g)
    for edge, s in written.items():
        assert isinstance(s, str) and FRACTION.match(s), s
        assert Fraction(s) == var_g[edge]


def test_round_trip_specs_do_carry_explicit_var():
    """Guards the test above against passing vacuously."""
    zero = _edges_with_var(build_graph(ROUND_TRIP_SPECS["zero-padded conv"]))
    assert zero[("x[0,0]", "conv1[0,0]")] == Fraction(2, 3)      # border: 2 inputs, fan_in 3
    wrapped = _edges_with_var(build_graph(ROUND_TRIP_SPECS["wrapped circular conv"]))
    # size 2, kernel 3, circular: output 0 reads positions 1, 0, 1 -> position 1 twice: 2 * 2/3
    assert wrapped[("x[0,1]", "conv1[0,0]")] == Fraction(4, 3)
    kinds = set(nx.get_node_attributes(build_graph(ROUND_TRIP_SPECS["2-D pools and residual"]), "kind").values())
    assert kinds == {"input", "relu", "linear", "sum", "avgpool", "maxpool"}


def test_write_and_read_file_round_trip(tmp_path):
    arch = ROUND_TRIP_SPECS["2-D pools and residual"]
    g = build_graph(arch)
    path = tmp_path / "sub" / "net.json"
    write_graph(g, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.json"]  # no temporary left over
    raw = json.loads(path.read_text())
    assert all(isinstance(link["var"], str) for link in raw["links"] if "var" in link)
    h = read_graph(path)
    assert dict(h.nodes(data="kind")) == dict(g.nodes(data="kind"))
    assert _edges_with_var(h) == _edges_with_var(g) and set(h.edges) == set(g.edges)
    # the file describes the same network: identical exact results
    a, b = analyse(g), analyse(h)
    assert [(o.name, o.lemma8_sum, o.grad_sq_total, o.symmetric) for o in a.outputs] == \
        [(o.name, o.lemma8_sum, o.grad_sq_total, o.symmetric) for o in b.outputs]


def test_file_round_trip_keeps_the_hypothesis_checks_and_cross_terms(tmp_path):
    """The overlap net (H5 fails) read back from its file: the same checks, the same exact 1/2."""
    g = overlap_net()
    path = tmp_path / "overlap.json"
    write_graph(g, path)
    a, b = analyse(g).outputs[0], analyse(read_graph(path)).outputs[0]
    assert a.to_dict() == b.to_dict()
    assert b.grad_sq_total == Fraction(1, 2) and not b.h5_holds and b.hypothesis_set == "outside"


# --------------------------------------------------------------------------------------------
# a small valid file, and mutations of it
# --------------------------------------------------------------------------------------------

def base() -> dict:
    """x0, x1 -> h (relu) -> p (avgpool) -> s (sum) -> o (linear), with shortcuts."""
    return {
        "directed": True, "multigraph": False, "graph": {"name": "tiny"},
        "nodes": [{"id": "x0", "kind": "input"}, {"id": "x1", "kind": "input"}, {"id": "h", "kind": "relu"},
                  {"id": "p", "kind": "avgpool"}, {"id": "s", "kind": "sum"}, {"id": "o", "kind": "linear"}],
        "links": [{"source": "x0", "target": "h", "var": "1/3"}, {"source": "x1", "target": "h"},
                  {"source": "h", "target": "p"}, {"source": "x0", "target": "p"},
                  {"source": "p", "target": "s"}, {"source": "h", "target": "s"},
                  {"source": "s", "target": "o", "var": "2"}],
    }


def test_base_is_valid_and_var_is_read_exactly():
    g = from_node_link(base())
    assert g.edges["x0", "h"]["var"] == Fraction(1, 3)
    assert g.edges["s", "o"]["var"] == Fraction(2)
    assert "var" not in g.edges["x1", "h"]
    assert g.graph["name"] == "tiny"


@pytest.mark.parametrize("text,value", [("1/3", Fraction(1, 3)), (" 2/4 ", Fraction(1, 2)), ("0.5", Fraction(1, 2)),
                                        ("0.1", Fraction(1, 10)), ("3", Fraction(3)), (3, Fraction(3)),
                                        ("0", Fraction(0))])
def test_exact_var_spellings(text, value):
    data = base()
    data["links"][0]["var"] = text
    assert from_node_link(data).edges["x0", "h"]["var"] == value


def node(data: dict, nid: str) -> dict:
    return next(n for n in data["nodes"] if n["id"] == nid)


def link(data: dict, u: str, v: str) -> dict:
    return next(e for e in data["links"] if e["source"] == u and e["target"] == v)


def mutate(fn):
    def build():
        data = base()
        fn(data)
        return data
    return build


def _add(data, nodes=(), links=()):
    data["nodes"].extend({"id": i, "kind": k} for i, k in nodes)
    data["links"].extend({"source": u, "target": v, **extra} for u, v, *rest in links
                         for extra in [rest[0] if rest else {}])


BAD_DATA = [
    # structure: cycles, sources, inputs
    ("cycle of new nodes", mutate(lambda d: _add(d, [("ca", "relu"), ("cb", "relu")],
                                                  [("h", "ca"), ("ca", "cb"), ("cb", "ca")])),
     NotADAGError, [r"directed cycle", r"'ca'", r"'cb'", r"acyclic"]),
    ("cycle through the output", mutate(lambda d: _add(d, links=[("o", "h")])),
     NotADAGError, [r"directed cycle: .*'h'", r"'o'"]),
    ("self loop", mutate(lambda d: _add(d, links=[("o", "o")])), NotADAGError, [r"'o' -> 'o'"]),
    ("non-input source", mutate(lambda d: _add(d, [("z", "relu")], [("z", "o")])),
     GraphFormatError, [r"node 'z' of kind 'relu' has no predecessors", r"every source must be an input"]),
    ("isolated hidden node", mutate(lambda d: _add(d, [("lonely", "linear")])),
     GraphFormatError, [r"node 'lonely'", r"no predecessors"]),
    ("input with a predecessor", mutate(lambda d: _add(d, [("x2", "input")], [("h", "x2")])),
     GraphFormatError, [r"node 'x2' is an input but has a predecessor 'h'", r"inputs are sources"]),
    # kinds
    ("unknown kind", mutate(lambda d: node(d, "h").update(kind="tanh")),
     GraphFormatError, [r"node 'h': kind 'tanh' is unknown", r"input, relu, linear, avgpool, sum, sumrelu, maxpool, batchnorm"]),
    ("kind in capitals", mutate(lambda d: node(d, "o").update(kind="Linear")),
     GraphFormatError, [r"node 'o': kind 'Linear'", r"expected one of"]),
    ("missing kind", mutate(lambda d: node(d, "s").pop("kind")),
     GraphFormatError, [r"node 's': kind missing", r"expected one of input, relu"]),
    # var
    ("var abc", mutate(lambda d: link(d, "x0", "h").update(var="abc")),
     GraphFormatError, [r"edge 'x0' -> 'h': var='abc'", r"\"p/q\""]),
    ("var 1/0", mutate(lambda d: link(d, "x0", "h").update(var="1/0")),
     GraphFormatError, [r"edge 'x0' -> 'h': var='1/0'", r"\"p/q\""]),
    ("var empty", mutate(lambda d: link(d, "x1", "h").update(var="")),
     GraphFormatError, [r"edge 'x1' -> 'h': var=''", r"p/q"]),
    ("var nan", mutate(lambda d: link(d, "s", "o").update(var="nan")),
     GraphFormatError, [r"edge 's' -> 'o': var='nan'", r"p/q"]),
    ("var float", mutate(lambda d: link(d, "x0", "h").update(var=0.5)),
     GraphFormatError, [r"edge 'x0' -> 'h': var=0\.5 \(float\) is not exact", r"string \"p/q\""]),
    ("var null", mutate(lambda d: link(d, "x0", "h").update(var=None)),
     GraphFormatError, [r"edge 'x0' -> 'h': var=None", r"p/q"]),
    ("var bool", mutate(lambda d: link(d, "x0", "h").update(var=True)),
     GraphFormatError, [r"edge 'x0' -> 'h': var=True \(bool\)", r"p/q"]),
    ("var negative", mutate(lambda d: link(d, "s", "o").update(var="-1/2")),
     GraphFormatError, [r"edge 's' -> 'o': var='-1/2' is negative", r">= 0"]),
    ("var negative int", mutate(lambda d: link(d, "s", "o").update(var=-2)),
     GraphFormatError, [r"edge 's' -> 'o': var=-2 is negative", r">= 0"]),
    ("var into avgpool", mutate(lambda d: link(d, "h", "p").update(var="1/2")),
     GraphFormatError, [r"edge 'h' -> 'p' has var='1/2'", r"avgpool node with deterministic weights; remove var"]),
    ("var into sum", mutate(lambda d: link(d, "p", "s").update(var="1")),
     GraphFormatError, [r"edge 'p' -> 's' has var='1'", r"sum node .*remove var"]),
    ("var into maxpool", mutate(lambda d: (node(d, "p").update(kind="maxpool"), link(d, "x0", "p").update(var="2"))),
     GraphFormatError, [r"edge 'x0' -> 'p' has var='2'", r"maxpool node .*remove var"]),
    # links
    ("duplicate link", mutate(lambda d: d["links"].append({"source": "h", "target": "s"})),
     GraphFormatError, [r"edge 'h' -> 's' is listed twice", r"merge parallel weights"]),
    ("link to an unknown node", mutate(lambda d: _add(d, links=[("h", "ghost")])),
     GraphFormatError, [r"links\[7\] refers to node 'ghost'", r"not in 'nodes'"]),
    ("link from an unknown node", mutate(lambda d: _add(d, links=[("phantom", "o")])),
     GraphFormatError, [r"node 'phantom'", r"not in 'nodes'"]),
    ("link without target", mutate(lambda d: d["links"].append({"source": "h"})),
     GraphFormatError, [r"links\[7\] = \{'source': 'h'\}", r"needs 'source' and 'target'"]),
    ("link not an object", mutate(lambda d: d["links"].append(["h", "o"])),
     GraphFormatError, [r"links\[7\] = \['h', 'o'\]", r"'source' and 'target'"]),
    ("link to an unhashable id", mutate(lambda d: d["links"].append({"source": ["h"], "target": "o"})),
     GraphFormatError, [r"links\[7\] refers to \['h'\]", r"string or number"]),
    # nodes
    ("duplicate node", mutate(lambda d: _add(d, [("h", "relu")])),
     GraphFormatError, [r"node 'h' is listed twice"]),
    ("node without id", mutate(lambda d: d["nodes"].append({"kind": "relu"})),
     GraphFormatError, [r"nodes\[6\] = \{'kind': 'relu'\} has no 'id'"]),
    ("unhashable node id", mutate(lambda d: d["nodes"].append({"id": {"a": 1}, "kind": "relu"})),
     GraphFormatError, [r"nodes\[6\] has an id \{'a': 1\}", r"string or number"]),
    # the container
    ("undirected", mutate(lambda d: d.update(directed=False)),
     GraphFormatError, [r"directed=False", r"must be directed and not a multigraph"]),
    ("multigraph", mutate(lambda d: d.update(multigraph=True)),
     GraphFormatError, [r"multigraph=True", r"must be directed and not a multigraph"]),
    ("missing nodes", mutate(lambda d: d.pop("nodes")), GraphFormatError, [r"missing list 'nodes'"]),
    ("missing links", mutate(lambda d: d.pop("links")), GraphFormatError, [r"missing list 'links'", r"'nodes' and 'links'"]),
    ("edges instead of links", mutate(lambda d: d.update(edges=d.pop("links"))),
     GraphFormatError, [r"missing list 'links'"]),
    ("nodes not a list", mutate(lambda d: d.update(nodes={"x0": "input"})), GraphFormatError, [r"missing list 'nodes'"]),
    ("not an object", lambda: [base()], GraphFormatError, [r"expected a JSON object with 'nodes' and 'links', got list"]),
    ("a string", lambda: "x0 -> h", GraphFormatError, [r"got str"]),
    ("no nodes at all", lambda: {"nodes": [], "links": []}, GraphError, [r"no nodes"]),
    ("only inputs", lambda: {"nodes": [{"id": "x0", "kind": "input"}], "links": []}, GraphError,
     [r"no output", r"non-input node without successors"]),
]


@pytest.mark.parametrize("make,cls,patterns", [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_bad_node_link_data(make, cls, patterns):
    data = make()
    with pytest.raises(InitStatsError) as info:
        from_node_link(data)
    err = info.value
    assert type(err) is cls, f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    assert "\n" not in str(err)
    for pattern in patterns:
        assert re.search(pattern, str(err)), f"{pattern!r} not in {str(err)!r}"


def test_source_name_is_in_container_errors():
    with pytest.raises(GraphFormatError, match=r"^my-file\.json: missing list 'links'"):
        from_node_link({"nodes": []}, source="my-file.json")


def test_mutations_do_not_touch_the_base():
    """The table above builds fresh data for each case (no shared state between cases)."""
    before = copy.deepcopy(base())
    for _, make, _, _ in BAD_DATA:
        make()
    assert base() == before


# --------------------------------------------------------------------------------------------
# check_graph on networkx objects
# --------------------------------------------------------------------------------------------

def _tiny(cls=nx.DiGraph):
    g = cls()
    g.add_node("x", kind="input")
    g.add_node("o", kind="linear")
    g.add_edge("x", "o")
    return g


@pytest.mark.parametrize("cls", [nx.Graph, nx.MultiDiGraph, nx.MultiGraph])
def test_check_graph_refuses_undirected_and_multigraphs(cls):
    with pytest.raises(GraphError, match=cls.__name__) as info:
        check_graph(_tiny(cls))
    assert type(info.value) is GraphError
    assert "multigraphs and undirected graphs are not network DAGs" in str(info.value)


def test_check_graph_parses_var_and_accepts_a_valid_graph():
    g = _tiny()
    g.edges["x", "o"]["var"] = "3/7"
    check_graph(g)
    assert g.edges["x", "o"]["var"] == Fraction(3, 7)


def test_check_graph_refuses_a_float_var_naming_the_edge():
    g = _tiny()
    g.edges["x", "o"]["var"] = 0.25
    with pytest.raises(GraphFormatError, match=r"edge 'x' -> 'o': var=0\.25 \(float\)"):
        check_graph(g)


def test_check_graph_names_integer_node_ids_exactly():
    g = nx.DiGraph()
    g.add_node(0, kind="input")
    g.add_node(1, kind="relu")
    g.add_node(2, kind="relu")
    g.add_edges_from([(0, 1), (1, 2), (2, 1)])
    with pytest.raises(NotADAGError, match=r"cycle: (1 -> 2 -> 1|2 -> 1 -> 2)"):
        check_graph(g)


def test_analyse_validates_graphs_too():
    g = _tiny()
    g.add_node("z", kind="relu")
    g.add_edge("z", "o")
    with pytest.raises(GraphFormatError, match=r"node 'z'"):
        analyse(g)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------

def test_read_graph_on_a_non_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"nodes": [\n  {"id": "x0", "kind": "input"},\n')
    with pytest.raises(SpecFileError) as info:
        read_graph(path)
    msg = str(info.value)
    assert type(info.value) is SpecFileError and isinstance(info.value, OSError)
    assert str(path) in msg and "is not JSON" in msg and re.search(r"line \d+, column \d+", msg)


def test_read_graph_on_a_missing_file(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(SpecFileError, match=re.escape(repr(str(path)))) as info:
        read_graph(path)
    assert "No such file" in str(info.value)


def test_read_graph_on_a_directory(tmp_path):
    with pytest.raises(SpecFileError, match=r"cannot read spec file .*" + re.escape(tmp_path.name)):
        read_graph(tmp_path)


def test_read_graph_on_a_binary_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\xff\xfe\x00\x01 not text")
    with pytest.raises(SpecFileError, match=r"weights\.bin.*not UTF-8") as info:
        read_graph(path)
    assert type(info.value) is SpecFileError


def test_read_graph_errors_in_the_content(tmp_path):
    data = base()
    _add(data, links=[("o", "h")])
    path = tmp_path / "cyclic.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NotADAGError, match=r"'h'.*'o'|'o'.*'h'"):
        read_graph(path)
    path.write_text("[1, 2]")
    with pytest.raises(GraphFormatError, match=re.escape(str(path)) + r": expected a JSON object"):
        read_graph(path)
    path.write_text(json.dumps({"directed": False, **{k: v for k, v in base().items() if k != "directed"}}))
    with pytest.raises(GraphFormatError, match=re.escape(str(path)) + r": .*directed=False"):
        read_graph(path)


def test_write_atomic_gives_the_permissions_of_open(tmp_path):
    """Not mkstemp's owner-only 0o600: the umask's default for a new file, the old mode for a replaced one."""
    import os

    from initstats.files import write_atomic

    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.csv"
        write_atomic(new, "a,b\n")
        assert new.stat().st_mode & 0o777 == 0o644 and new.read_text() == "a,b\n"
        os.chmod(new, 0o640)
        write_atomic(new, b"bytes")
        assert new.stat().st_mode & 0o777 == 0o640 and new.read_bytes() == b"bytes"
        assert [p.name for p in tmp_path.iterdir()] == ["new.csv"]   # no temporary file left behind
    finally:
        os.umask(umask)
