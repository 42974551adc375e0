"""The ``initstats graph`` command line: output formats, --spec files, bad input, exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initstats.cli import app
from initstats.families import make_arch
from initstats.graph import build_graph, write_graph
from initstats.spec import Arch, Conv, Dense
from .console import assert_bad_input, console_script
from .crossref import overlap_net

runner = CliRunner()

FRACTION = re.compile(r"^-?\d+(/\d+)?$")
#: the keys every output object of the JSON carries (it may carry more)
OUTPUT_KEYS = {"lemma8_sum", "symmetric", "lemma9_holds", "grad_sq_total", "witness", "hypothesis_set"}


def graph(*args: str):
    return runner.invoke(app, ["graph", *map(str, args)])


def ok(*args: str) -> str:
    result = graph(*args)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return result.stdout


def ok_json(*args: str):
    return json.loads(ok(*args, "--format", "json"))


def frac(s: str) -> Fraction:
    assert isinstance(s, str) and FRACTION.match(s), f"not an exact 'p/q' string: {s!r}"
    return Fraction(s)


def check_output_object(out: dict) -> None:
    """The JSON contract of one output."""
    assert OUTPUT_KEYS <= set(out), sorted(OUTPUT_KEYS - set(out))
    frac(out["lemma8_sum"])
    assert out["grad_sq_total"] is None or frac(out["grad_sq_total"]) >= 0
    assert type(out["symmetric"]) is bool and type(out["lemma9_holds"]) is bool
    assert out["hypothesis_set"] in ("H", "H'", "outside")
    if out["symmetric"]:
        assert out["witness"] is None
    else:
        w = out["witness"]
        assert set(w) == {"inputs", "path_degree", "counts"}
        assert len(w["inputs"]) == 2 and all(isinstance(x, str) for x in w["inputs"])
        assert w["inputs"][0] != w["inputs"][1]
        assert w["counts"][0] != w["counts"][1]
        assert w["path_degree"] == sorted(w["path_degree"])
    hyp = out["hypotheses"]
    assert list(hyp) == ["H1", "H2", "H3", "H4", "H5", "S"]
    for name, check in hyp.items():
        assert type(check["holds"]) is bool and (check["witness"] is None) == check["holds"], name
        assert all(isinstance(n, str) for n in check["nodes"]) and isinstance(check["detail"], str)
    assert hyp["S"]["holds"] == out["symmetric"] and hyp["H3"]["holds"] == out["h3_holds"]
    assert hyp["H2"]["holds"] and hyp["H4"]["holds"]
    # the label is derived from the checks: H5 failing puts the output outside (H')
    if not hyp["H5"]["holds"]:
        assert out["hypothesis_set"] == "outside" and out["theorem_total"] is None


def check_network_object(obj: dict, d: int) -> None:
    assert isinstance(obj, dict)
    assert obj["d"] == d and type(obj["d"]) is int
    assert isinstance(obj["outputs"], dict) and obj["outputs"]
    for out in obj["outputs"].values():
        check_output_object(out)



# --------------------------------------------------------------------------------------------
# families: table, json, csv, markdown
# --------------------------------------------------------------------------------------------

def test_table_lists_every_dimension():
    out = ok("--arch", "cnn", "--dims", "32,64")
    # one row per dimension: px, then d = 3 * px * px, then the logits, then Lemma 8's sum
    assert re.search(r"^\s*32\s+3072\s+logits\[0\.\.11\]\s+1\s", out, re.M), out
    assert re.search(r"^\s*64\s+12288\s+logits\[0\.\.11\]\s+1\s", out, re.M), out
    assert "initstats graph: cnn" in out
    # zero padding breaks (S): the table says so and gives the witness
    assert "(S) fails at d=3072" in out and "(S) fails at d=12288" in out


def test_table_of_a_symmetric_network_has_no_witness():
    out = ok("--arch", "fc", "--dims", "4", "--width", "8", "--depth", "2")
    assert re.search(r"^\s*4\s+48\s+logits\[0\.\.9\]\s+1\s+yes\s+yes\s", out, re.M), out
    assert "(S) fails" not in out


def test_json_one_dimension_is_an_object():
    obj = ok_json("--arch", "cnn", "--dims", "32")
    check_network_object(obj, 3 * 32 * 32)
    assert set(obj["outputs"]) == {f"logits[{k}]" for k in range(12)}
    for out in obj["outputs"].values():
        assert out["lemma8_sum"] == "1"
        # zero padding: (S) and Lemma 9 fail, the annealed total is below Theorem 4's 2
        assert out["symmetric"] is False and out["lemma9_holds"] is False
        assert out["witness"] is not None and out["witness"]["inputs"][0].startswith("x[")
        assert 0 < frac(out["grad_sq_total"]) < 2
        assert out["hypothesis_set"] == "H"


def test_json_two_dimensions_is_a_list_in_order():
    objs = ok_json("--arch", "cnn", "--dims", "16,32")
    assert isinstance(objs, list) and len(objs) == 2
    for obj, px in zip(objs, (16, 32)):
        check_network_object(obj, 3 * px * px)
        assert all(out["lemma8_sum"] == "1" for out in obj["outputs"].values())
    # same dilation (1) at both sizes: the border weighs less on the larger input, the totals differ
    totals = [frac(obj["outputs"]["logits[0]"]["grad_sq_total"]) for obj in objs]
    assert totals[0] != totals[1]


def test_json_theorem_values_of_symmetric_families():
    # Theorem 4: fully connected, He weights, linear logits -> E||grad f||^2 = 2, r(x) = 1/d
    obj = ok_json("--arch", "fc", "--dims", "4", "--width", "8", "--depth", "2", "--classes", "3")
    check_network_object(obj, 48)
    assert set(obj["outputs"]) == {"logits[0]", "logits[1]", "logits[2]"}
    for out in obj["outputs"].values():
        assert (out["lemma8_sum"], out["grad_sq_total"], out["symmetric"], out["lemma9_holds"], out["witness"],
                out["hypothesis_set"]) == ("1", "2", True, True, None, "H")
    # Theorem 7: circular padding, three 2x2 average pools (degree 4 each): 2 / 4^3 = 1/32
    obj = ok_json("--arch", "cnn", "--dims", "32", "--padding", "circular", "--downsample", "avg", "--channels", "4")
    out = obj["outputs"]["logits[0]"]
    assert (out["lemma8_sum"], out["grad_sq_total"], out["symmetric"], out["lemma9_holds"], out["witness"],
            out["hypothesis_set"]) == ("1", "1/32", True, True, None, "H'")


def test_json_outside_hypotheses_has_no_annealed_total():
    obj = ok_json("--arch", "cnn", "--dims", "8", "--downsample", "max", "--channels", "2")
    out = obj["outputs"]["logits[0]"]
    assert out["hypothesis_set"] == "outside" and out["grad_sq_total"] is None and out["lemma8_sum"] == "1"


def test_csv_is_parseable_and_agrees_with_json():
    rows = list(csv.DictReader(io.StringIO(ok("--arch", "cnn", "--dims", "32,64", "--format", "csv"))))
    assert rows and set(rows[0]) >= {"d", "output", "quantity", "value"}
    assert {r["d"] for r in rows} == {"3072", "12288"}
    lemma8 = [r for r in rows if r["quantity"] == "lemma8_sum"]
    assert len(lemma8) == 2 * 12 and all(r["value"] == "1" for r in lemma8)
    objs = ok_json("--arch", "cnn", "--dims", "32,64")
    for r in rows:
        if r["quantity"] == "grad_sq_total":
            obj = objs[0] if r["d"] == "3072" else objs[1]
            assert frac(r["value"]) == frac(obj["outputs"][r["output"]]["grad_sq_total"])
        if r["quantity"] == "symmetric":
            assert r["value"] == "False"


def _md_cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_is_a_well_formed_table():
    text = ok("--arch", "cnn", "--dims", "32,64", "--format", "markdown")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header, sep, *body = lines
    cols = _md_cells(header)
    assert re.fullmatch(r"\|(---\|)+", sep) and sep.count("---") == len(cols)
    assert {"px", "d", "outputs", "Σr (L8)"} <= set(cols)
    assert len(body) == 2                      # the 12 logits are identical: one row per size
    rows = [dict(zip(cols, _md_cells(line))) for line in body]
    assert all(len(_md_cells(line)) == len(cols) for line in body)
    assert [r["d"] for r in rows] == ["3072", "12288"] and [r["px"] for r in rows] == ["32", "64"]
    assert all(r["Σr (L8)"] == "1" for r in rows)


def test_spec_file_from_write_graph_matches_the_family(tmp_path):
    # the same network through --arch (exact compression) and through --spec (neuron level)
    arch = make_arch("fc", 2, width=3, depth=1, classes=2)
    path = tmp_path / "fc.json"
    write_graph(build_graph(arch), path)
    by_spec = ok_json("--spec", path)
    by_arch = ok_json("--arch", "fc", "--dims", "2", "--width", "3", "--depth", "1", "--classes", "2")
    check_network_object(by_spec, 12)
    assert set(by_spec["outputs"]) == set(by_arch["outputs"]) == {"logits[0]", "logits[1]"}
    for name, out in by_spec["outputs"].items():
        for key in OUTPUT_KEYS:
            assert out[key] == by_arch["outputs"][name][key], key


def test_spec_file_with_explicit_border_variances(tmp_path):
    # zero-padded conv on 4 positions: border neurons read 2 inputs with variance 2/3
    path = tmp_path / "conv.json"
    write_graph(build_graph(Arch((1, 4), (Conv(1, 3), Dense(1, activation=None)))), path)
    assert '"var": "2/3"' in path.read_text()
    out = ok_json("--spec", path)["outputs"]["logits[0]"]
    # by hand: G(conv1[0,i]) = var(conv->logit) = 2/4 = 1/2; interior edges into a relu give
    # (2/3)/2 = 1/3 and so do border edges (var 2/3, not 2/2).  Every (x, conv) edge has c = 1/3,
    # the edges are 2 + 3 + 3 + 2 = 10, so the total is 10 * 1/3 * 1/2 = 5/3.
    assert out["grad_sq_total"] == "5/3"
    assert out["lemma8_sum"] == "1" and out["symmetric"] is False and out["hypothesis_set"] == "H"
    assert ok("--spec", path).count("(S) fails") == 1


def test_overlap_net_from_a_node_link_file(tmp_path):
    """Issue 9's ReLU-free overlap net: exactly 1/2 (not the path sum 1/6), outside (H'), H5's witness."""
    path = tmp_path / "overlap.json"
    write_graph(overlap_net(), path)
    obj = ok_json("--spec", path)
    check_network_object(obj, 8)
    out = obj["outputs"]["f"]
    assert (out["grad_sq_total"], out["path_sum_total"], out["hypothesis_set"], out["theorem_total"]) == \
        ("1/2", "1/6", "outside", None)
    h5 = out["hypotheses"]["H5"]
    assert h5["holds"] is False and h5["nodes"] == ["z0", "p0", "p1"]
    assert h5["witness"].startswith("node 'z0' has deterministic out-edges 'z0' -> 'p0' (weight 1/3)")
    assert [k for k, v in out["hypotheses"].items() if not v["holds"]] == ["H1", "H5"]
    table = ok("--spec", path)
    assert "H5 fails at d=8 for f: node 'z0'" in table and re.search(r"\s1/2\s", table)
    rows = list(csv.DictReader(io.StringIO(ok("--spec", path, "--format", "csv"))))
    assert {(r["quantity"], r["value"]) for r in rows} >= {("grad_sq_total", "1/2"), ("H5_holds", "False"),
                                                           ("hypothesis_set", "outside")}


# --------------------------------------------------------------------------------------------
# an independent check of the JSON on a hand-made DAG
# --------------------------------------------------------------------------------------------

HAND_DAG = """
{
  "directed": true, "multigraph": false, "graph": {"name": "hand"},
  "nodes": [
    {"id": "x0", "kind": "input"}, {"id": "x1", "kind": "input"}, {"id": "x2", "kind": "input"},
    {"id": "h1", "kind": "relu"}, {"id": "h2", "kind": "relu"},
    {"id": "p", "kind": "avgpool"}, {"id": "s", "kind": "sum"},
    {"id": "l", "kind": "linear"}, {"id": "o2", "kind": "linear"}, {"id": "o3", "kind": "relu"}
  ],
  "links": [
    {"source": "x0", "target": "h1", "var": "1/3"}, {"source": "x1", "target": "h1"},
    {"source": "x0", "target": "h2"}, {"source": "x1", "target": "h2"}, {"source": "x2", "target": "h2"},
    {"source": "h1", "target": "p"}, {"source": "h2", "target": "p"},
    {"source": "p", "target": "s"}, {"source": "h2", "target": "s"},
    {"source": "s", "target": "l", "var": "1/2"}, {"source": "h1", "target": "l"},
    {"source": "x2", "target": "o2", "var": "3"},
    {"source": "h2", "target": "o3"}
  ]
}
"""


def test_hand_computed_dag(tmp_path):
    path = tmp_path / "hand.json"
    path.write_text(HAND_DAG)
    obj = ok_json("--spec", path)
    check_network_object(obj, 3)
    assert set(obj["outputs"]) == {"l", "o2", "o3"}        # the non-input sinks
    l, o2, o3 = (obj["outputs"][k] for k in ("l", "o2", "o3"))

    # In-degrees: h1 2, h2 3, p 2, s 2, l 2, o2 1, o3 1.
    #
    # Output l.  Lemma 8, walking back from l with R(l) = 1 and R(u) = sum_v R(v) / d_v:
    #   R(s) = 1/2;  R(p) = R(s)/2 = 1/4;  R(h2) = R(s)/2 + R(p)/2 = 1/4 + 1/8 = 3/8;
    #   R(h1) = R(l)/2 + R(p)/2 = 1/2 + 1/8 = 5/8;
    #   r(x0) = R(h1)/2 + R(h2)/3 = 5/16 + 1/8 = 7/16 = r(x1);  r(x2) = R(h2)/3 = 1/8;
    #   sum = 7/16 + 7/16 + 2/16 = 1, but r(x2) != 1/3: Lemma 9 fails.
    # Path sum, G(l) = 1, G(u) = sum_v c(u->v) G(v) with
    #   c(s->l) = var = 1/2 (linear), c(h1->l) = default var 2/2 = 1 (linear),
    #   c(p->s) = c(h2->s) = 1 (sum), c(h1->p) = c(h2->p) = 1/2^2 = 1/4 (avgpool),
    #   c(x0->h1) = (1/3)/2 = 1/6, c(x1->h1) = (2/2)/2 = 1/2 (relu, explicit and default var),
    #   c(x*->h2) = (2/3)/2 = 1/3 (relu, default var):
    #   G(s) = 1/2;  G(p) = 1/2;  G(h2) = G(s) + G(p)/4 = 5/8;  G(h1) = G(l) + G(p)/4 = 9/8;
    #   G(x0) = 9/8 * 1/6 + 5/8 * 1/3 = 19/48;  G(x1) = 9/8 * 1/2 + 5/8 * 1/3 = 37/48;
    #   G(x2) = 5/8 * 1/3 = 10/48;  path sum 66/48 = 11/8.
    # But h2 has two deterministic out-edges, h2 -> p (weight 1/2) and h2 -> s (weight 1), which
    # merge again at s: H5 fails (E[w w'] = 1/2) and the annealed value has their cross term,
    #   G(p, s) = w(p->s) G(s, s) = 1/2,
    #   G(h2, h2) = (1/2)^2 G(p) + 1^2 G(s) + 2 * (1/2) * 1 * G(p, s) = 1/8 + 1/2 + 1/2 = 9/8,
    #   G(x0) = 9/8 * 1/6 + 9/8 * 1/3 = 27/48;  G(x1) = 9/8 * 1/2 + 9/8 * 1/3 = 45/48;
    #   G(x2) = 9/8 * 1/3 = 18/48;  total 90/48 = 15/8.
    # (x2 by path pairs: x2-h2-s-l twice 1/6, x2-h2-p-s-l twice 1/24, the two mixed pairs
    #  2 * (1/2 * 2/3 * 1/2 * 1/2) = 1/6: 3/8.)  The label is outside (H'); no theorem value.
    # (S): x0 and x1 reach l through h1 and h2, x2 only through h2.  Path-degree multisets of
    # x0: {2,2} (x0-h1-l), {2,2,2,2} (x0-h1-p-s-l), {2,2,3} (x0-h2-s-l), {2,2,2,3} (x0-h2-p-s-l);
    # x2 has only the last two.  The first input (x0) against the first that differs (x2), on
    # the smallest differing multiset {2,2}: 1 path against 0.
    assert l == {**l, "lemma8_sum": "1", "grad_sq_total": "15/8", "path_sum_total": "11/8", "symmetric": False,
                 "lemma9_holds": False, "hypothesis_set": "outside", "theorem_total": None,
                 "witness": {"inputs": ["x0", "x2"], "path_degree": [2, 2], "counts": [1, 0]}}
    hyp = l["hypotheses"]
    assert {k: v["holds"] for k, v in hyp.items()} == {"H1": True, "H2": True, "H3": False, "H4": True,
                                                       "H5": False, "S": False}
    assert hyp["H5"]["nodes"] == ["h2", "p", "s"] and "E[w w'] = 1/2" in hyp["H5"]["witness"]
    assert hyp["H3"]["nodes"] == ["x0", "h1"] and "variance 1/3" in hyp["H3"]["witness"]
    assert hyp["S"]["nodes"] == ["x0", "x2"]

    # Output o2 = linear <- x2 with var 3: r(x2) = 1, G(x2) = 3; x0, x1 have no path.
    # (S) fails (x0 has no path, x2 has one, of path-degree {1}).
    assert o2 == {**o2, "lemma8_sum": "1", "grad_sq_total": "3", "symmetric": False, "lemma9_holds": False,
                  "hypothesis_set": "H", "path_sum_total": "3", "grad_sq_reason": None, "witness": {"inputs": ["x0", "x2"], "path_degree": [1], "counts": [0, 1]}}

    # Output o3 = relu <- h2 (in-degree 1, default var 2/1 = 2, c = 1): every input has one path
    # x-h2-o3 of path-degree {1,3}, so (S) holds and r(x) = 1/3 * 1 = 1/3 = 1/d (Lemma 9).
    # G(x) = 1/3 * 1 for each input, total 1.
    assert o3 == {**o3, "lemma8_sum": "1", "grad_sq_total": "1", "symmetric": True, "lemma9_holds": True,
                  "hypothesis_set": "H", "witness": None}
    # the extremes over the inputs
    assert (l["walk_min"], l["walk_max"]) == ("1/8", "7/16")
    assert (l["grad_sq_min"], l["grad_sq_max"]) == ("3/8", "15/16")


def test_out_writes_every_input_coordinate_exactly(tmp_path):
    """--out: inputs.csv holds the hand-computed per-input values of test_hand_computed_dag."""
    path = tmp_path / "hand.json"
    path.write_text(HAND_DAG)
    out = tmp_path / "res"
    text = ok("--spec", path, "--out", out)
    assert f"wrote {out}/" in text.replace("\n", "")
    assert sorted(p.name for p in out.iterdir()) == ["graph.json", "inputs.csv", "summary.csv"]
    assert json.loads((out / "graph.json").read_text()) == ok_json("--spec", path)
    rows = list(csv.DictReader((out / "inputs.csv").open()))
    by_output: dict[str, dict[str, tuple[Fraction, Fraction]]] = {}
    for r in rows:
        by_output.setdefault(r["output"], {})[r["input"]] = (frac(r["r"]), frac(r["grad_sq"]))
        assert float(r["grad_sq_float"]) == pytest.approx(float(frac(r["grad_sq"])), rel=1e-15)
        assert frac(r["d_r"]) == 3 * frac(r["r"])
    # the walk probabilities and E(dl/dx)^2 derived by hand in test_hand_computed_dag
    assert by_output["l"] == {"x0": (Fraction(7, 16), Fraction(27, 48)), "x1": (Fraction(7, 16), Fraction(45, 48)),
                              "x2": (Fraction(1, 8), Fraction(18, 48))}
    assert by_output["o2"] == {"x0": (0, 0), "x1": (0, 0), "x2": (1, 3)}
    assert by_output["o3"] == {x: (Fraction(1, 3), Fraction(1, 3)) for x in ("x0", "x1", "x2")}
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert {(r["output"], r["quantity"], r["value"]) for r in summary} >= {("l", "grad_sq_total", "15/8"),
                                                                          ("l", "path_sum_total", "11/8"),
                                                                          ("l", "H5_holds", "False")}


def test_out_for_a_family_writes_one_block_per_distinct_output(tmp_path):
    out = tmp_path / "res"
    ok("--arch", "cnn", "--dims", "8,16", "--channels", "2", "--out", out, "--format", "json")
    rows = list(csv.DictReader((out / "inputs.csv").open()))
    for px in (8, 16):
        block = [r for r in rows if r["px"] == str(px)]
        assert len(block) == 3 * px * px                        # the logits share one map
        assert {r["outputs"] for r in block} == {"logits[0..11]"}
        total = sum(frac(r["grad_sq"]) for r in block)
        expected = ok_json("--arch", "cnn", "--dims", str(px), "--channels", "2")["outputs"]["logits[0]"]
        assert total == frac(expected["grad_sq_total"])
        assert sum(frac(r["r"]) for r in block) == 1             # Lemma 8, input by input


def test_out_on_a_file_is_refused(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert_bad_input(graph("--arch", "fc", "--dims", "4", "--out", f), "--out", "not a directory")
    assert f.read_text() == "x"


# --------------------------------------------------------------------------------------------
# bad input: exit code 2, one line on stderr, no traceback
# --------------------------------------------------------------------------------------------

@pytest.fixture
def cyclic_spec(tmp_path) -> Path:
    data = json.loads(HAND_DAG)
    data["links"].append({"source": "l", "target": "h1"})     # h1 -> l -> h1
    path = tmp_path / "cyclic.json"
    path.write_text(json.dumps(data))
    return path


BAD_ARGS = [
    ("unknown arch", ["--arch", "vgg", "--dims", "32"], ["'vgg'", "fc, cnn, cnn-avgpool, resnet"]),
    ("dims a,b", ["--arch", "cnn", "--dims", "a,b"], ["--dims", "'a'", "32,64"]),
    ("dims 0", ["--arch", "cnn", "--dims", "0"], ["--dims", "0", ">= 1"]),
    ("dims 32,0", ["--arch", "fc", "--dims", "32,0"], ["--dims: 0"]),
    ("dims empty", ["--arch", "cnn", "--dims", ","], ["--dims", "empty"]),
    ("dims float", ["--arch", "cnn", "--dims", "32.5"], ["'32.5'"]),
    ("format xml", ["--arch", "cnn", "--dims", "32", "--format", "xml"], ["--format", "'xml'", "table, json, csv, markdown"]),
    ("method", ["--arch", "cnn", "--dims", "32", "--method", "fast"], ["--method", "'fast'"]),
    ("arch without dims", ["--arch", "cnn"], ["--dims"]),
    ("nothing", [], ["--arch", "--spec"]),
    ("head for fc", ["--arch", "fc", "--dims", "8", "--head", "avgpool"], ["'head'", "'fc'"]),
    ("negative depth", ["--arch", "fc", "--dims", "8", "--depth", "-1"], ["depth=-1"]),
    ("bad padding", ["--arch", "cnn", "--dims", "32", "--padding", "same"], ["'same'", "zero, circular, reflect"]),
    ("too small for reflect", ["--arch", "cnn", "--dims", "16,4", "--padding", "reflect"],
     ["cnn at 4 px", "conv7", "reflect padding 1"]),
    ("zero channels", ["--arch", "cnn", "--dims", "32", "--channels", "0"], ["out_channels=0"]),
]


@pytest.mark.parametrize("args,needles", [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS])
def test_bad_arguments(args, needles):
    assert_bad_input(graph(*args), *needles)


def test_spec_with_a_cycle(cyclic_spec):
    line = assert_bad_input(graph("--spec", cyclic_spec), "directed cycle")
    assert "'h1'" in line and "'l'" in line


def test_spec_missing_file(tmp_path):
    assert_bad_input(graph("--spec", tmp_path / "nope.json"), "nope.json", "No such file")


def test_spec_not_json(tmp_path):
    path = tmp_path / "net.json"
    path.write_text("nodes: [x0, h]\n")
    assert_bad_input(graph("--spec", path), "net.json", "not JSON")


def test_spec_binary_file(tmp_path):
    path = tmp_path / "net.pt"
    path.write_bytes(b"\x80\x02\xff\xfe")
    assert_bad_input(graph("--spec", path), "net.pt", "UTF-8")


def test_spec_with_bad_content(tmp_path):
    data = json.loads(HAND_DAG)
    data["links"][0]["var"] = 0.333
    path = tmp_path / "net.json"
    path.write_text(json.dumps(data))
    assert_bad_input(graph("--spec", path), "'x0' -> 'h1'", "0.333")


@pytest.mark.parametrize("extra,needle", [(["--arch", "cnn"], "--arch 'cnn'"), (["--dims", "32"], "--dims '32'"),
                                          (["--channels", "4"], "--channels 4")])
def test_spec_combined_with_family_options(tmp_path, extra, needle):
    path = tmp_path / "hand.json"
    path.write_text(HAND_DAG)
    assert_bad_input(graph("--spec", path, *extra), "--spec", needle)


def test_spec_with_method_compressed_is_refused(tmp_path):
    # compression is for families: a node-link file would run at neuron level, so say so instead
    path = tmp_path / "hand.json"
    path.write_text(HAND_DAG)
    assert_bad_input(graph("--spec", path, "--method", "compressed"), "--method compressed", "families",
                     "neuron level", "--method auto or neuron")
    assert ok_json("--spec", path, "--method", "neuron") == ok_json("--spec", path)


# --------------------------------------------------------------------------------------------
# the installed console script
# --------------------------------------------------------------------------------------------

def test_console_script_success_and_bad_input(tmp_path):
    exe = console_script()
    done = subprocess.run([exe, "graph", "--arch", "fc", "--dims", "2,3", "--width", "4", "--depth", "1",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    objs = json.loads(done.stdout)
    assert [o["d"] for o in objs] == [12, 27]
    assert all(out["lemma8_sum"] == "1" and out["grad_sq_total"] == "2" for o in objs for out in o["outputs"].values())

    path = tmp_path / "hand.json"
    path.write_text(HAND_DAG)
    done = subprocess.run([exe, "graph", "--spec", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "15/8" in done.stdout and "x0 vs x2" in done.stdout

    for args, needle in ((["--arch", "vgg", "--dims", "32"], "'vgg'"),
                         (["--spec", str(tmp_path / "missing.json")], "missing.json")):
        done = subprocess.run([exe, "graph", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr
        assert "Traceback" not in done.stderr


def _first(text: str) -> dict:
    data = json.loads(text)
    return (data[0] if isinstance(data, list) else data)["outputs"]["logits[0]"]


def test_infinite_width_column_next_to_the_annealed_value(tmp_path):
    """--infinite-width adds the NNGP prediction: equal to the annealed value without merges, above it
    with a pool after a ReLU (gate correlations), and refused or explained where it does not apply."""
    res = graph("--arch", "cnn", "--dims", "8", "--channels", "2", "--infinite-width", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    out = _first(res.output)
    assert out["infinite_width_exact"] is True
    assert out["grad_sq_infinite_width"] == pytest.approx(float(Fraction(out["grad_sq_total"])), rel=1e-9)

    res = graph("--arch", "cnn-avgpool", "--dims", "16", "--channels", "2", "--padding", "circular",
                "--infinite-width", "4", "--format", "json")
    out = _first(res.output)
    annealed = float(Fraction(out["grad_sq_total"]))
    assert out["infinite_width_exact"] is False and "infinite-width limit" in out["infinite_width_note"]
    assert out["grad_sq_infinite_width"] > annealed * 1.05          # correlated gates under the pools

    res = graph("--arch", "cnn", "--dims", "8", "--channels", "2", "--downsample", "max", "--infinite-width", "2",
                "--format", "json")
    out = _first(res.output)
    assert out["grad_sq_infinite_width"] is None and out["infinite_width_note"].startswith("not computed")
    plain = _first(graph("--arch", "cnn", "--dims", "8", "--format", "json").output)
    assert "grad_sq_infinite_width" not in plain                       # only when asked for

    spec = tmp_path / "net.json"
    write_graph(build_graph(make_arch("fc", 2, width=2)), spec)
    assert_bad_input(graph("--spec", spec, "--infinite-width", "2"), "--infinite-width", "--arch or --module")
    assert_bad_input(graph("--arch", "fc", "--dims", "2", "--infinite-width", "-1"), "--infinite-width -1")
