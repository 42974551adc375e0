"""The benchmark scripts run, and what they write is the table they describe.

Each script runs once with ``--quick`` (smoke-test sizes; the figures in docs/benchmarks.md come
from full runs).  Timings cannot be checked, but everything derived from them can: every table has
the rows and columns the script promises, every number is finite, and every derived column is the
arithmetic of the columns it comes from, to the rounding of the printed values (a speed-up is the
baseline time over the engine time as printed, a rate the samples over the seconds, FLOP counts
match torch's own counter, edge counts and exact values match the library).  The ``*_catch_*``
tests feed the checkers doctored copies of the same output, so the checks themselves can fail.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from initstats.empirical.ensemble import ArchEnsemble
from initstats.empirical.measure import MeasureOptions, plan
from initstats.exact import analyse
from initstats.families import make_arch
from initstats.graph import count_edges
from .markdown import tables

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
PADDINGS = ("zero", "circular", "reflect")
DOWNSAMPLES = ("stride", "avg")
QUICK = "not assessed (--quick sizes)"


# --------------------------------------------------------------------------------------------
# reading the markdown back
# --------------------------------------------------------------------------------------------

def section(text: str, name: str) -> str:
    """The one block between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"section {name!r} missing or repeated"
    return text[text.index(start) + len(start):text.index(end)].strip()



def table_with(md: str, column: str) -> list[dict[str, str]]:
    found = [t for t in tables(md) if t and column in t[0]]
    assert len(found) == 1, f"{len(found)} tables with a column {column!r}"
    return found[0]


def num(cell: str) -> float:
    """A printed number: thousands separators, a leading ``~``, a trailing ``x`` or ``%`` allowed."""
    text = cell.strip().lstrip("~").replace(",", "")
    scale = 0.01 if text.endswith("%") else 1.0
    value = float(text.rstrip("x%"))
    assert math.isfinite(value), cell
    return value * scale


def seconds(cell: str) -> float:
    m = re.fullmatch(r"([\d.,]+) (s|ms|µs)", cell.strip())
    assert m, f"not a duration: {cell!r}"
    value = num(m.group(1)) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6}[m.group(2)]
    assert value > 0, cell
    return value


def agrees(printed: float, computed: float, rel: float = 0.011, abs_: float = 0.0) -> bool:
    """Equal up to the rounding of printed values (3 significant digits each: 0.5 % per value)."""
    return abs(printed - computed) <= rel * abs(computed) + abs_


def run_quick(script: str, tmp: Path, *extra: str) -> tuple[str, str]:
    doc = tmp / f"{script}.md"
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--doc", str(doc), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return doc.read_text(), proc.stdout


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    return run_quick("bench_exact.py", tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def empirical_run(tmp_path_factory):
    return run_quick("bench_empirical.py", tmp_path_factory.mktemp("bench"), "--max-wait", "5")


# --------------------------------------------------------------------------------------------
# bench_exact.py
# --------------------------------------------------------------------------------------------

def _quick_neuron_archs():
    return [make_arch("fc", 32, width=30, depth=2), make_arch("cnn", 32, channels=3)]


def check_exact(doc: str, stdout: str) -> None:
    md = section(doc, "exact")
    assert md == stdout.strip(), "the file holds something else than the table printed"
    assert "--quick" in md.splitlines()[2]

    # a. neuron level: the two quick graphs, edges counted independently
    a = table_with(md, "naive baseline")
    fc, cnn = _quick_neuron_archs()
    assert [r["graph"].split(",")[0] for r in a] == ["`fc` 32 px", "`cnn` 32 px"]
    fc_edges = 3 * 32 * 32 * 30 + 30 * 30 + 30 * fc.num_classes          # 3072 -> 30 -> 30 -> 10
    assert [num(r["edges"]) for r in a] == [fc_edges, count_edges(cnn)]
    for r, arch in zip(a, (fc, cnn)):
        t_an, t_naive, t_same = seconds(r["analyse(graph)"]), seconds(r["naive baseline"]), \
            seconds(r["engine, same work"])
        assert num(r["outputs"]) == arch.num_classes
        assert agrees(num(r["edges/s (analysis)"]), num(r["edges"]) / t_an), r
        assert agrees(num(r["speed-up"]), t_naive / t_an, abs_=0.05), r
        assert agrees(num(r["speed-up, same work"]), t_naive / t_same, abs_=0.05), r
        assert r["baseline timing"] == "measured on the same graph; agrees exactly", r   # quick: no extrapolation
        assert 0 < num(r["graph memory (tracemalloc)"].split()[0]) < 10_000, r         # bytes per edge

    # b. paper scale: six rows, one per padding and downsampling
    b = table_with(md, "analyse(arch)")
    assert sorted((r["padding"], r["downsample"]) for r in b) == sorted(
        (p, d) for p in PADDINGS for d in DOWNSAMPLES)
    rate, per_edge = (num(v) for v in re.search(r"\(([\d,]+) edges/s, ~(\d+) bytes/edge\)", md).groups())
    for r in b:
        arch = make_arch("cnn", 128, channels=32, padding=r["padding"], downsample=r["downsample"])
        edges = count_edges(arch)
        assert agrees(num(r["neuron-level edges"]), edges, rel=0.006), r
        assert r["method"] == "factorized"
        circular = r["padding"] == "circular"
        assert (r["symmetric (S)"], r["H3"]) == (("yes", "yes") if circular else ("no", "no")), r
        hours, gib = re.fullmatch(r"~([\d.,]+) h, ~([\d,]+) GiB", r["neuron level (extrapolated)"]).groups()
        assert agrees(num(hours), edges / rate / 3600, abs_=0.05), r
        assert agrees(num(gib), edges * per_edge / 2 ** 30, rel=0.01, abs_=0.5), r
    grad = {(r["padding"], r["downsample"]): r["E‖∇f‖² (grad_sq_total)"] for r in b}
    # circular padding is symmetric: Theorem 4's 2, and 2/64 after the three 2x2 average pools
    assert num(grad["circular", "stride"]) == 2.0 and num(grad["circular", "avg"]) == 0.03125
    for ds in DOWNSAMPLES:            # the exact value the library computes, "–" where it gives none
        exact = analyse(make_arch("cnn", 128, channels=32, padding="zero", downsample=ds)).outputs[0].grad_sq_total
        assert grad["zero", ds] == "–" if exact is None else abs(num(grad["zero", ds]) - float(exact)) <= 5e-7

    # requirements: derived from the tables above, not assessed at quick sizes
    req = table_with(md, "requirement")
    assert [r["status"] for r in req] == [QUICK, QUICK]
    worst = max(a, key=lambda r: seconds(r["analyse(graph)"]))
    assert req[0]["measured"].startswith(f"worst {worst['analyse(graph)']} ({worst['edges']} edges, "), req[0]
    times = [seconds(r["analyse(arch)"]) for r in b]
    m = re.fullmatch(r"worst (.+ s), all six (.+ s)", req[1]["measured"])
    assert m and agrees(seconds(m.group(1)), max(times)) and agrees(seconds(m.group(2)), sum(times)), req[1]

    # b0. compressed against neuron level on the small cnn: identical, and the speed-up is the ratio
    b0 = table_with(md, "identical outputs")
    assert sorted((r["padding"], r["downsample"]) for r in b0) == sorted(
        (p, d) for p in PADDINGS for d in DOWNSAMPLES)
    for r in b0:
        assert r["identical outputs"] == "yes"
        assert num(r["edges"]) == count_edges(make_arch("cnn", 16, channels=4, padding=r["padding"],
                                                        downsample=r["downsample"]))
        assert agrees(num(r["speed-up"]), seconds(r["neuron level (build + analyse)"]) / seconds(r["compressed"]),
                      abs_=0.5), r


def test_bench_exact_quick_writes_a_consistent_table(exact_run):
    check_exact(*exact_run)


def _doctor(doc: str, column: str, table_column: str, new: str, row: int = 0) -> str:
    """``doc`` with one cell of one table replaced."""
    for line in doc.splitlines():
        if line.startswith("|") and table_column in line:
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            break
    else:
        raise AssertionError(f"no table with {table_column!r}")
    lines = doc.splitlines()
    at = lines.index(line) + 2 + row
    cells = lines[at].strip().strip("|").split("|")
    cells[header.index(column)] = f" {new} "
    lines[at] = "|" + "|".join(cells) + "|"
    return "\n".join(lines)


def test_bench_exact_checks_catch_wrong_tables(exact_run):
    doc, stdout = exact_run

    def doctored(column: str, table_column: str, new: str, row: int = 0) -> tuple[str, str]:
        d = _doctor(doc, column, table_column, new, row)
        return d, section(d, "exact")            # printed the same, so only the cell is wrong

    for case in (doctored("speed-up", "naive baseline", "99.0x"),                        # not naive / engine
                 doctored("edges", "naive baseline", "93,361"),                          # off by one edge
                 doctored("E‖∇f‖² (grad_sq_total)", "analyse(arch)", "1.999000", row=2),  # not Theorem 4's 2
                 doctored("identical outputs", "identical outputs", "no"),
                 doctored("status", "requirement", "**PASS**")):                         # assessed at quick sizes
        with pytest.raises(AssertionError):
            check_exact(*case)
    with pytest.raises(AssertionError):                                                  # file != printed table
        check_exact(doc, stdout.replace("agrees exactly", "agrees"))


# --------------------------------------------------------------------------------------------
# bench_empirical.py
# --------------------------------------------------------------------------------------------

CASES = (("fc", 32), ("fc", 128), ("cnn", 32), ("cnn", 128))


def _forward_flops(arch) -> int:
    """torch's own count of one network's forward pass (explicit weights; conv taps in the padding included)."""
    ens = ArchEnsemble(arch, 1)
    ens.resample(torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        ens(torch.zeros(1, 1, *arch.input_shape))
    return counter.get_total_flops()


def check_empirical(doc: str, stdout: str) -> None:
    md = section(doc, "empirical")
    assert md == stdout.strip(), "the file holds something else than the table printed"
    probes = [num(p) for p in re.search(r"at the end \(([\d, ]+) GFLOP/s\)", md).group(1).split(", ")]
    attainable = num(re.search(r"the best, ([\d,.]+) GFLOP/s, is used", md).group(1))
    assert len(probes) == len(CASES) + 1 and attainable == max(probes)

    main = table_with(md, "engine samples/s")
    assert [r["case"] for r in main] == [f"`{n}` {px} px" for n, px in CASES]
    naive_rate = {}
    for r, (name, px) in zip(main, CASES):
        arch = make_arch(name, px)
        assert num(r["d"]) == 3 * px * px
        chosen = plan(arch, MeasureOptions(device="cpu")).chunk
        n = int(r["chunk n"].split()[0])
        assert n == min(chosen, 16), r                                   # --quick caps measure()'s chunk at 16
        assert ("capped from" in r["chunk n"]) == (chosen > 16) and (chosen <= 16 or f"from {chosen})" in r["chunk n"])
        # 6 x forward MACs = 3 x torch's forward FLOP count (the two backward passes only reach x)
        assert agrees(num(r["MFLOP/sample"]), 3 * _forward_flops(arch) / 1e6, rel=0.006), r
        engine, meas, naive = (num(r[c]) for c in ("engine samples/s", "measure() samples/s", "naive samples/s"))
        naive_rate[name, px] = naive
        s_engine, s_measure = (num(v) for v in r["speed-up vs naive (engine / measure())"].split(" / "))
        assert agrees(s_engine, engine / naive, abs_=0.006) and agrees(s_measure, meas / naive, abs_=0.006), r
        gflops = num(r["engine GFLOP/s"])
        assert agrees(gflops, engine * num(r["MFLOP/sample"]) / 1e3, rel=0.016), r
        assert agrees(num(r["fraction of attainable (target 50 %)"]), gflops / attainable,
                      rel=0.006 + 0.5 / attainable, abs_=0.0006), r          # probes print as whole GFLOP/s
        assert r[">= 4x naive"].startswith(QUICK), r

    req = table_with(md, "requirement")
    for r in main:
        rows = [q for q in req if q["case"] == r["case"]]
        speed = rows[0]
        assert speed["requirement"] == "required: >= 4x the naive loop" and speed["status"] == r[">= 4x naive"]
        s_engine, s_measure = (num(v) for v in r["speed-up vs naive (engine / measure())"].split(" / "))
        m = re.fullmatch(r"engine ([\d.]+)x \(rounds ([\d.]+)-([\d.]+)\), measure\(\) ([\d.]+)x", speed["measured"])
        assert m, speed
        total, low, high, again = (float(v) for v in m.groups())
        assert (total, again) == (s_engine, s_measure) and abs(low - total) <= 0.01 and abs(high - total) <= 0.01, \
            speed                                                       # one round at --quick
        target = rows[-1]
        frac = r["fraction of attainable (target 50 %)"]
        assert target["measured"].startswith(f"{frac} (") and \
            target["status"] == ("target met" if num(frac) >= 0.5 else "target not met"), target

    detail = table_with(md, "2 backward")
    assert [r["case"] for r in detail] == [r["case"] for r in main]
    for r, m_row, (name, px) in zip(detail, main, CASES):
        assert num(r["chunk n"]) == int(m_row["chunk n"].split()[0])
        shares = [num(r[c]) for c in ("resample (normal_)", "input draw", "forward", "2 backward")]
        assert abs(sum(shares) - 1) <= 0.021, r                          # four shares rounded to 1 %
        mean, se = (num(v) for v in r["E‖∇f‖² (measure())"].split(" ± "))
        assert se > 0, r
        if px == 32 or name == "fc":                                      # >= 8 networks: a fixed-seed check
            exact = float(analyse(make_arch(name, px)).outputs[0].grad_sq_total)
            assert abs(mean - exact) < 6 * se, (r, exact)

    sweep = table_with(md, "page faults/sample")
    assert [(r["case"], int(r["chunk n"].split()[0])) for r in sweep] == [
        ("`cnn` 32 px", 16), ("`cnn` 32 px", 64), ("`cnn` 128 px", 8), ("`cnn` 128 px", 16)]
    for r in sweep:
        px = int(r["case"].split()[1])
        n = int(r["chunk n"].split()[0])
        assert ("measure()'s default" in r["chunk n"]) == (n == plan(make_arch("cnn", px), MeasureOptions(
            device="cpu")).chunk), r
        assert agrees(num(r["vs naive"]), num(r["samples/s"]) / naive_rate["cnn", px], abs_=0.006), r
        assert abs(num(r["page faults/sample"]) - num(r["minor page faults/chunk"]) / n) <= 0.5 + 0.5 / n, r
        assert num(r["largest activation"].split()[0]) == pytest.approx(
            n * max(s.size for s in make_arch("cnn", px).stages) * 4 / 2 ** 20, abs=0.051), r

    # convolution kernels of cnn 128 px: every conv stage counted once, GFLOP/s = 2 MACs / forward time
    convs = table_with(md, "forward GFLOP/s")
    arch = make_arch("cnn", 128)
    assert sum(num(r["stages"]) for r in convs) == sum(s.is_conv for s in arch.stages)
    groups = int(re.search(r"\(n = (\d+) groups", md).group(1))
    for r in convs:
        m = re.fullmatch(r"(\d+)->(\d+) ch, (\d+)x(\d+), stride \d+, dilation \d+, \d+->(\d+) px", r["conv"])
        assert m, r["conv"]
        c_in, c_out, kh, kw, out_px = map(int, m.groups())
        macs = out_px * out_px * c_out * c_in * kh * kw * groups
        assert agrees(num(r["forward GFLOP/s"]), 2 * macs / seconds(r["forward"]) / 1e9, rel=0.011), r
    bound = re.search(r"at most \*\*(\d+) samples/s, ([\d.]+)x the naive loop\*\*", md)
    naive = naive_rate["cnn", 128]                   # the bound is printed as a whole number of samples/s
    assert agrees(num(bound.group(1)), num(bound.group(2)) * naive, rel=0.011, abs_=0.5 + 0.005 * naive), bound


def test_bench_empirical_quick_writes_a_consistent_table(empirical_run):
    check_empirical(*empirical_run)


def test_bench_empirical_checks_catch_wrong_tables(empirical_run):
    doc, _ = empirical_run

    def doctored(column: str, table_column: str, new: str, row: int = 0) -> tuple[str, str]:
        d = _doctor(doc, column, table_column, new, row)
        return d, section(d, "empirical")

    main = table_with(section(doc, "empirical"), "engine samples/s")
    wrong_speedup = f"{num(main[0]['engine samples/s']) / num(main[0]['naive samples/s']) * 1.1:.2f}x / " + \
        main[0]["speed-up vs naive (engine / measure())"].split(" / ")[1]
    for case in (doctored("speed-up vs naive (engine / measure())", "engine samples/s", wrong_speedup),
                 doctored("MFLOP/sample", "engine samples/s", "11.8"),                   # counted twice
                 doctored("d", "engine samples/s", "1,024"),
                 doctored("E‖∇f‖² (measure())", "2 backward", "4.000 ± 0.100"),         # not E||grad f||^2 = 2
                 doctored(">= 4x naive", "engine samples/s", "**PASS**")):
        with pytest.raises(AssertionError):
            check_empirical(*case)


# --------------------------------------------------------------------------------------------
# bench_module.py
# --------------------------------------------------------------------------------------------

# --quick sizes; the ResNet-18 layout is benchmarked since residual blocks with projections trace
MODULE_CASES = (("residual_net", 16), ("residual_net", 32), ("vgg_like", 16), ("resnet18_layout", 16))
MODULE_COLUMNS = ("case", "traced layers", "d", "N (nets per call)", "chunk", "MFLOP/sample", "engine samples/s",
                  "naive samples/s", "speed-up (engine / naive)", "engine GFLOP/s", "naive GFLOP/s",
                  "engine, fraction of attainable", "naive, fraction of attainable", "background (cores)")


@pytest.fixture(scope="module")
def module_run(tmp_path_factory):
    return run_quick("bench_module.py", tmp_path_factory.mktemp("bench"), "--max-wait", "5")


def _model_forward_flops(name: str, px: int) -> int:
    """torch's count of one forward pass of the user's model itself (batch 1)."""
    from . import models

    factory = getattr(models, name)
    model = factory(px) if name == "vgg_like" else factory()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, px, px))
    return counter.get_total_flops()


def check_module(doc: str, stdout: str) -> None:
    md = section(doc, "module")
    assert md == stdout.strip(), "the file holds something else than the table printed"
    assert "`python benchmarks/bench_module.py --quick`" in md
    probes = [num(p) for p in re.search(r"at the end \(([\d, ]+) GFLOP/s\)", md).group(1).split(", ")]
    attainable = num(re.search(r"the best, ([\d,.]+) GFLOP/s, is used", md).group(1))
    assert len(probes) == len(MODULE_CASES) + 1 and attainable == max(probes)
    factor = re.search(r"\*MFLOP/sample\* is (\d+) x torch's count", md)
    assert factor and int(factor.group(1)) == 3

    main = table_with(md, "engine samples/s")
    assert tuple(main[0]) == MODULE_COLUMNS
    assert [r["case"] for r in main] == [f"`{name}` {px} px" for name, px in MODULE_CASES]
    for r, (name, px) in zip(main, MODULE_CASES):
        assert num(r["d"]) == 3 * px * px and num(r["N (nets per call)"]) == 16, r   # --quick: 16 networks a call
        assert 0 < num(r["chunk"]) <= 16, r
        assert agrees(num(r["MFLOP/sample"]), 3 * _model_forward_flops(name, px) / 1e6, rel=0.006), r
        engine, naive = num(r["engine samples/s"]), num(r["naive samples/s"])
        assert agrees(num(r["speed-up (engine / naive)"]), engine / naive, abs_=0.006), r
        for who, rate in (("engine", engine), ("naive", naive)):
            gflops = num(r[f"{who} GFLOP/s"])
            assert agrees(gflops, rate * num(r["MFLOP/sample"]) / 1e3, rel=0.016), r
            frac = num(r[f"{who}, fraction of attainable"])
            assert 0 < frac <= 1, r
            assert agrees(frac, gflops / attainable, rel=0.011 + 0.5 / attainable), r   # probes print whole GFLOP/s

    detail = table_with(md, "speed-up per round")
    assert [r["case"] for r in detail] == [r["case"] for r in main]
    for r, m_row in zip(detail, main):
        assert r["speed-up per round"] == m_row["speed-up (engine / naive)"], r       # one round at --quick
        assert num(r["engine nets timed"]) == num(m_row["N (nets per call)"]), r
        assert num(r["naive nets timed"]) >= 3, r
        assert num(r["torch FLOPs: whole sample / forward"]) == pytest.approx(3, abs=0.05), r
        for who in ("engine", "naive"):
            mean, se = (num(v) for v in r[f"E‖∇f₀‖² {who}"].split(" ± "))
            assert mean > 0 and se > 0, r
    assert "not benchmarked" not in md


def test_bench_module_quick_writes_a_consistent_table(module_run):
    check_module(*module_run)


def test_bench_module_checks_catch_wrong_tables(module_run):
    doc, _ = module_run

    def doctored(column: str, new: str, table_column: str = "engine samples/s", row: int = 0) -> tuple[str, str]:
        d = _doctor(doc, column, table_column, new, row)
        return d, section(d, "module")

    main = table_with(section(doc, "module"), "engine samples/s")
    ratio = num(main[0]["engine samples/s"]) / num(main[0]["naive samples/s"])
    for case in (doctored("speed-up (engine / naive)", f"{ratio * 1.1:.2f}x"),
                 doctored("MFLOP/sample", f"{num(main[0]['MFLOP/sample']) * 2 / 3:.3g}"),   # 2 passes, not 3
                 doctored("engine, fraction of attainable", "150%"),
                 doctored("d", "1,024"),
                 doctored("torch FLOPs: whole sample / forward", "2.00", table_column="speed-up per round")):
        with pytest.raises(AssertionError):
            check_module(*case)


# --------------------------------------------------------------------------------------------
# bench_sweep.py
# --------------------------------------------------------------------------------------------

#: the --quick cases of bench_sweep.py (its QUICK_CASES)
SWEEP_CASES = ({"arch": "fc", "dims": [4, 8], "width": 16, "nets": 512},
               {"arch": "cnn", "dims": [8], "channels": 2, "nets": 512})
SWEEP_COLUMNS = ("run", "workers", "torch threads", "networks", "chunks", "wall, median", "rounds", "networks/s")
STORE_OPS = ("`encode_measurement` (.npz blob)", "`decode_measurement`",
             "SQLite: `SweepStore.put_chunk` (encode + INSERT + COMMIT, WAL, synchronous = FULL)",
             "DuckDB: encode + INSERT + COMMIT (BLOB column)",
             "SQLite: `SweepStore.chunks` (SELECT + decode), per chunk", "DuckDB: SELECT + decode, per chunk")


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    return run_quick("bench_sweep.py", tmp_path_factory.mktemp("bench"), "--max-wait", "2")


def _sweep_work() -> tuple[int, int, list[tuple[str, int, int]]]:
    """Networks and chunks of the --quick cases, and (label, networks, d) of the chunks the store timed."""
    from initstats.sweep import parse_sweep
    from initstats.sweep.worker import chunk_size

    sweep = parse_sweep({"seed": 0, "case": [{**c, "device": "cpu"} for c in SWEEP_CASES]})
    points = [(c, p) for c in sweep.cases for p in c.points]
    chunks = sum(math.ceil(c.options().nets / chunk_size(c, p)) for c, p in points)
    timed = [(f"`{c.name}` {c.points[-1].label}", chunk_size(c, c.points[-1]), 3 * c.points[-1].size ** 2)
             for c in (sweep.cases[0], sweep.cases[-1])]
    return sum(c["nets"] * len(c["dims"]) for c in SWEEP_CASES), chunks, timed


def check_sweep(doc: str, stdout: str) -> None:
    md = section(doc, "sweep")
    assert md == stdout.strip(), "the file holds something else than the table printed"
    assert "`python benchmarks/bench_sweep.py --quick`" in md
    assert not re.search(r"[{}]", md), "a placeholder left unformatted"
    threads = int(re.search(r"; (\d+) torch threads by default", md).group(1))
    networks, chunks, timed = _sweep_work()

    rows = table_with(md, "networks/s")
    baselines = sorted({1, threads})
    speedups = [f"speed-up vs verify, {t} thread{'s' if t > 1 else ''}" for t in baselines]
    assert tuple(rows[0]) == (*SWEEP_COLUMNS, *speedups, "start-up, timed alone", "background (cores)")
    assert [r["run"] for r in rows] == [f"`verify`, sequential, {t} thread{'s' if t > 1 else ''}" for t in baselines] + [
        "sweep, `local`, 1 worker", "sweep, `local`, 2 workers", "sweep, `ray` (local Ray, 2 CPUs)"]
    walls = {t: seconds(r["wall, median"]) for t, r in zip(baselines, rows)}
    for r in rows:
        if r["wall, median"] == "ray not installed":
            assert r["run"].startswith("sweep, `ray`") and all(r[c] == "–" for c in r if c not in
                                                               ("run", "workers", "torch threads", "wall, median")), r
            continue
        assert num(r["networks"]) == networks and num(r["chunks"]) == chunks, r
        wall = seconds(r["wall, median"])
        assert r["rounds"] == r["wall, median"], r                     # one round at --quick: its own median
        assert agrees(num(r["networks/s"]), networks / wall, rel=0.016), r
        for t, column in zip(baselines, speedups):
            assert agrees(num(r[column]), walls[t] / wall, rel=0.011, abs_=0.006), r
        assert r["start-up, timed alone"] == "–", r                    # not timed at --quick sizes
        assert r["background (cores)"] == "–" or num(r["background (cores)"]) >= 0, r
    local = next(r for r in rows if r["run"] == "sweep, `local`, 1 worker")
    extra = (seconds(local["wall, median"]) - walls[1]) / chunks
    line = next(x for x in md.splitlines() if x.startswith("- sweep, `local`, 1 worker:"))
    if extra > 0:
        printed = seconds(re.search(r"come to (.+?) per chunk", line).group(1))
        assert agrees(printed, extra, rel=0.03, abs_=0.011 / chunks), line  # walls printed to 3 digits or 10 ms
    else:
        assert "no slower than `verify`" in line
    report = re.search(r"`report_only=True`, after each 1-worker sweep\) took a median (.+?), (.+?) of the", md)
    assert report and agrees(num(report.group(2)), seconds(report.group(1)) / seconds(local["wall, median"]),
                             rel=0.016), report
    assert "- The rows of every sweep run were identical to those of the first" in md

    sources = table_with(md, "payload (.npz)")
    assert [(r["chunk"], num(r["networks"]), num(r["d"])) for r in sources] == timed
    ops = table_with(md, "operation")
    assert [(r["chunk"], r["operation"]) for r in ops] == [(s[0], op) for s in timed for op in STORE_OPS]
    compute = {r["chunk"]: seconds(r["compute (run_chunk, 1 thread)"]) for r in sources}
    whole = {}
    for r, (_, nets, _) in zip(sources, timed):
        w = re.fullmatch(r"(.+) \((\d+) chunks\)", r["per chunk in one measure() of the point"])
        assert w and int(w.group(2)) == math.ceil(512 / nets), r       # --quick: 512 networks per point
        whole[r["chunk"]] = seconds(w.group(1))
    cells = {}
    for r in ops:
        if r["median per chunk"] == "duckdb not installed":
            assert r["operation"].startswith("DuckDB"), r
            continue
        assert num(r["chunks timed"]) == 20, r                         # --quick: 20 chunks per store
        median, mean = seconds(r["median per chunk"]), seconds(r["mean per chunk"])
        assert agrees(num(r["median, % of compute"]), median / compute[r["chunk"]], rel=0.016), r
        assert mean > 0, r
        cells[r["chunk"], r["operation"]] = r
    wins = []
    for label, _, _ in timed:
        line = next(x for x in md.splitlines() if x.startswith(f"- {label} chunk ("))
        ratio = re.search(r"`run_chunk`\) took ([\d.]+)x its share of one `measure\(\)` of the whole point "
                          r"\((.+?) per chunk\)", line)
        assert ratio and seconds(ratio.group(2)) == whole[label], line
        assert agrees(float(ratio.group(1)), compute[label] / whole[label], rel=0.011, abs_=0.006), line
        put = cells[label, STORE_OPS[2]]
        assert f"SQLite commits it in a median {put['median per chunk']}, {put['median, % of compute']} of its" in line
        duck = cells.get((label, STORE_OPS[3]))
        if duck is None:
            assert "DuckDB not measured" in line
            continue
        assert f"DuckDB in {duck['median per chunk']}, {duck['median, % of compute']} of its compute" in line
        a, b = seconds(put["median per chunk"]), seconds(duck["median per chunk"])
        ratio, word = re.search(r"SQLite ([\d.]+)x (faster|slower)", line).groups()
        assert word == ("faster" if a <= b else "slower"), line
        assert agrees(float(ratio), max(a, b) / min(a, b), rel=0.011, abs_=0.006), line
        wins.append(a <= b)
    if wins:
        verdict = ("SQLite committed faster than DuckDB" if all(wins) else "DuckDB committed faster than SQLite"
                   if not any(wins) else "neither store committed faster")
        assert f"On this machine {verdict} for every chunk measured." in md


def test_bench_sweep_quick_writes_a_consistent_table(sweep_run):
    check_sweep(*sweep_run)


def test_bench_sweep_checks_catch_wrong_tables(sweep_run):
    doc, _ = sweep_run

    def doctored(column: str, new: str, table_column: str = "networks/s", row: int = 0) -> tuple[str, str]:
        d = _doctor(doc, column, table_column, new, row)
        return d, section(d, "sweep")

    def replaced(old: str, new: str) -> tuple[str, str]:
        assert old in doc
        d = doc.replace(old, new)
        return d, section(d, "sweep")

    rows = table_with(section(doc, "sweep"), "networks/s")
    local = seconds(rows[0]["wall, median"]) / seconds(rows[-2]["wall, median"])
    put = next(r for r in table_with(section(doc, "sweep"), "operation") if r["operation"].startswith("SQLite: `Sw"))
    verdict = ("On this machine SQLite committed faster", "On this machine DuckDB committed faster")
    for case in (doctored("speed-up vs verify, 1 thread", f"{local * 1.1 + 0.05:.2f}x", row=len(rows) - 2),
                 doctored("networks/s", f"{num(rows[0]['networks/s']) * 2:,.0f}"),
                 doctored("chunks", "7"),
                 doctored("rounds", "1.00 µs", row=1),
                 doctored("median, % of compute", "99%", table_column="operation", row=2),
                 doctored("chunks timed", "19", table_column="operation"),
                 doctored("d", "768", table_column="payload (.npz)"),
                 doctored("per chunk in one measure() of the point", "1.00 µs (2 chunks)", table_column="payload (.npz)"),
                 replaced("sweep run were identical", "sweep run were NOT identical"),
                 replaced(f"SQLite commits it in a median {put['median per chunk']}",
                          f"SQLite commits it in a median {seconds(put['median per chunk']) * 2e3:.3g} ms"),
                 *([replaced(*verdict)] if verdict[0] in doc else [])):
        with pytest.raises(AssertionError):
            check_sweep(*case)
