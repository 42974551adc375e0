"""``benchmarks/calibration.py --quick`` runs, and its page is the arithmetic of what it counted.

The quick run (a few runs of small configurations) writes the page the full run writes to
``docs/calibration.md``.  Checked: the page is what the script printed; every table has one row per
configuration of ``QUICK`` with its sizes; every rate is its count over the runs as printed, with
the 95 % Clopper-Pearson interval recomputed here from beta quantiles (and containing the rate);
verdict counts add up to the runs; the readings ("within nominal" / "exceeds nominal") follow the
interval's lower end; a x1.3-wrong prediction never passes; the exact predictions are the
library's.  The counts of the heavy-tailed DAG are recomputed independently (fresh measurements,
plain ``exact_claim`` calls, the normal interval by hand).  ``test_checker_catches_doctored_pages``
feeds the checker altered copies of the page, so that the checks themselves can fail.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import beta, norm

from initstats.claims import exact_claim
from initstats.empirical.measure import MeasureOptions, measure
from initstats.exact import analyse
from .markdown import tables

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("calibration_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                      # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


CAL = load_bench()
QUICK = CAL.QUICK
WRONG = ("x1.05", "x0.95", "x1.3", "x1/1.3")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration") / "calibration.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(encoding="utf-8"), proc.stdout


# -- reading the page back -------------------------------------------------------------------------------

def section(page: str, heading: str) -> str:
    """The text under the ``## `` heading that starts with ``heading``, up to the next ``## ``."""
    m = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", page, re.S | re.M)
    assert m, f"no section {heading!r}"
    return m.group(1)



def table(page: str, heading: str, index: int = 0) -> list[dict[str, str]]:
    return tables(section(page, heading))[index]


def num(cell: str) -> int:
    return int(cell.replace(",", ""))


def cp(k: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95 % interval from beta quantiles (independent of the script's binomtest)."""
    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return lo, hi


def check_rate(count: str, runs: str, rate: str, ci: str) -> tuple[int, int]:
    """``rate`` is ``count / runs`` as printed, ``ci`` its Clopper-Pearson interval, and contains it."""
    k, n = num(count), num(runs)
    assert 0 <= k <= n, (count, runs)
    assert rate == f"{100 * k / n:.2f} %", (count, runs, rate)
    lo, hi = cp(k, n)
    assert ci == f"{100 * lo:.2f}–{100 * hi:.2f} %", (count, runs, ci)
    m = re.fullmatch(r"([\d.]+)–([\d.]+) %", ci)
    assert float(m.group(1)) <= 100 * k / n <= float(m.group(2)), (rate, ci)
    return k, n


def expected_reading(k: int, n: int) -> str:
    lo, hi = cp(k, n)
    if lo > 0.01:
        return "**exceeds nominal**"
    if k > 0.01 * n:
        return "within nominal, but the point estimate is above it"
    return "within nominal (below it)" if hi < 0.01 else "within nominal"


def check_page(page: str, stdout: str) -> None:
    assert page == stdout, "the page written is not the page printed"
    assert "`python benchmarks/calibration.py --quick`" in page
    size_cfgs, run_cfgs = QUICK["size"], QUICK["run"]

    conf = table(page, "Configurations")
    assert [r["configuration"] for r in conf] == [c.key for c in size_cfgs]
    for r, c in zip(conf, size_cfgs):
        assert (num(r["nets per run"]), num(r["runs"]), r["dtype"]) == (c.nets, c.runs, c.dtype), r
        exact = float(analyse(c.target()).outputs[0].grad_sq_total)
        assert r["exact E‖∇f‖²"] == f"{exact:.6g}", (r, exact)
        methods = re.findall(r"([\w-]+) (\d+)", r["intervals (runs)"])
        assert sum(int(k) for _, k in methods) == c.runs, r

    size = table(page, "Size")
    assert [r["configuration"] for r in size] == [c.key for c in size_cfgs]
    for r, c in zip(size, size_cfgs):
        assert num(r["runs"]) == c.runs
        k, n = check_rate(r["false fails"], r["runs"], r["false-fail rate"], r["95 % CI"])
        assert r["reading"] == expected_reading(k, n), r
        assert k + num(r["inconclusive"]) + num(r["pass"]) == n, r
        below, above = (int(v) for v in r["below / above"].split(" / "))
        assert below + above == num(r["interval misses"]), r
        check_rate(r["interval misses"], r["runs"], r["miss rate"], r["miss 95 % CI"])
        below, above = (int(v) for v in r["normal below / above"].split(" / "))
        assert below + above == num(r["normal-interval misses"]), r
        check_rate(r["normal-interval misses"], r["runs"], r["normal miss rate"], r["normal 95 % CI"])

    power = table(page, "Power")
    assert [(r["configuration"], r["prediction"].split()[0]) for r in power] == \
        [(c.key, w) for c in size_cfgs for w in WRONG]
    passes = 0
    for r in power:
        check_rate(r["rejected"], r["runs"], r["rejection rate"], r["95 % CI"])
        assert r["pass rate"] == f"{100 * num(r['passed']) / num(r['runs']):.2f} %", r
        assert num(r["rejected"]) + num(r["inconclusive"]) + num(r["passed"]) == num(r["runs"]), r
        if r["prediction"].split()[0] in ("x1.3", "x1/1.3"):
            assert num(r["passed"]) == 0, f"a 30 %-wrong prediction passed: {r}"
            passes += num(r["passed"])
    tests = 2 * sum(c.runs for c in size_cfgs)
    assert (f"never passed** ({tests} tests" in page) == (passes == 0)

    runs = table(page, "Run level", 0)
    per_claim = table(page, "Run level", 1)
    assert [r["configuration"] for r in runs] == [c.key for c in run_cfgs]
    for r, c in zip(runs, run_cfgs):
        assert num(r["runs"]) == c.runs and f"nets={c.nets}," in r["call"] and str(list(c.dims)) in r["call"], r
        k, n = check_rate(r["exit 1 (Holm)"], r["runs"], r["rate"], r["95 % CI"])
        assert r["reading"] == expected_reading(k, n), r
        k0, _ = check_rate(r["exit 1 without Holm"], r["runs"], r["rate without Holm"], r["95 % CI without Holm"])
        assert k <= k0, r                      # Holm only turns fails into inconclusive
        rows = [q for q in per_claim if q["configuration"] == c.key]
        names = [q["claim"] for q in rows]
        assert len(names) == len(set(names)) and "`scaling:grad_logit_l2`" in names, names
        for q in rows:
            assert num(q["runs"]) == c.runs
            assert sum(num(q[v]) for v in ("fail", "inconclusive", "pass", "not covered")) == c.runs, q
            assert num(q["fail"]) <= num(q["fail before Holm"]) <= c.runs, q
        assert sum(num(q["fail"]) for q in rows) >= k, (r, rows)          # every exit 1 has a failed claim
        assert max((num(q["fail"]) for q in rows), default=0) <= k, (r, rows)
        listed = re.findall(rf"^- {re.escape(c.key)}, seed (\d+): (.*)$", section(page, "Run level"), re.M)
        assert len(listed) == k and len({s for s, _ in listed}) == k, (r, listed)
        assert all(0 <= int(s) < c.runs for s, _ in listed), listed
        fails = Counter(name for _, text in listed for name in re.findall(r"`([^`]+)` \(", text))
        assert fails == Counter({q["claim"].strip("`"): num(q["fail"]) for q in rows if num(q["fail"])}), (fails, rows)
        assert (f"- {c.key}: none in {c.runs} runs." in page) == (k == 0)


def test_quick_page_is_consistent(quick_run):
    check_page(*quick_run)


def _doctor(page: str, heading: str, row: int, column: str, new: str) -> str:
    """``page`` with one cell of the first table under ``heading`` replaced."""
    lines = page.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {heading}"))
    top = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    header = [c.strip() for c in lines[top].strip().strip("|").split("|")]
    at = top + 2 + row
    cells = lines[at].rstrip("\n").strip().strip("|").split("|")
    cells[header.index(column)] = f" {new} "
    lines[at] = "|" + "|".join(cells) + "|\n"
    return "".join(lines)


def a_30_percent_error_passes(page: str, row: int, r: dict[str, str]) -> str:
    """The page with one run of a x1.3 prediction turned into a pass, every sum and rate kept consistent."""
    n = num(r["runs"])
    page = _doctor(page, "Power", row, "passed", "1")
    page = _doctor(page, "Power", row, "pass rate", f"{100 / n:.2f} %")
    if num(r["inconclusive"]):
        return _doctor(page, "Power", row, "inconclusive", str(num(r["inconclusive"]) - 1))
    k = num(r["rejected"]) - 1
    lo, hi = cp(k, n)
    page = _doctor(page, "Power", row, "rejected", str(k))
    page = _doctor(page, "Power", row, "rejection rate", f"{100 * k / n:.2f} %")
    return _doctor(page, "Power", row, "95 % CI", f"{100 * lo:.2f}–{100 * hi:.2f} %")


def test_checker_catches_doctored_pages(quick_run):
    page, _ = quick_run
    size, power = table(page, "Size"), table(page, "Power")
    k, n = num(size[0]["false fails"]), num(size[0]["runs"])
    x13 = next(i for i, r in enumerate(power) if r["prediction"].startswith("x1.3 "))
    cases = [
        _doctor(page, "Size", 0, "false fails", str(k + 1)),                              # rate no longer count/R
        _doctor(page, "Size", 0, "95 % CI", "0.00–1.00 %"),                               # not Clopper-Pearson
        _doctor(page, "Size", 0, "reading", "**exceeds nominal**" if k == 0 else "within nominal (below it)"),
        _doctor(page, "Power", x13, "passed", "1"),                                        # counts no longer add up
        a_30_percent_error_passes(page, x13, power[x13]),                                   # sums and rates kept
        _doctor(page, "Configurations", 0, "exact E‖∇f‖²", "2.1"),                        # not the library's value
        _doctor(page, "Run level", 0, "exit 1 without Holm", "0") if num(table(page, "Run level")[0]["exit 1 (Holm)"])
        else _doctor(page, "Run level", 0, "runs", "4"),
    ]
    fc_none = f"- {QUICK['run'][-1].key}: none in {QUICK['run'][-1].runs} runs."
    if fc_none in page:                                                                   # a failure not counted
        cases.append(page.replace(fc_none, f"- {QUICK['run'][-1].key}, seed 1: `grad_sq_total[px=8]` (exact) "
                                           "measured 1.5 ± 0.01 against 2."))
    for doctored in cases:
        assert doctored != page
        with pytest.raises(AssertionError):
            check_page(doctored, doctored)
    with pytest.raises(AssertionError):                                                    # file != printed page
        check_page(page, page.replace("within nominal", "inside nominal", 1))


def test_dag_counts_recomputed_independently(quick_run):
    """Fresh measurements of the quick DAG runs, plain ``exact_claim`` (no memoised interval) and the
    normal interval by hand give the counts the page shows."""
    page, _ = quick_run
    cfg = next(c for c in QUICK["size"] if c.family == "dag")
    g = cfg.target()
    exact = float(analyse(g).outputs[0].grad_sq_total)
    assert exact == 2.0                                   # the documented property of random_relu_dag()
    fails = misses = normal = passes13 = rejected13 = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                              # as the script runs (bit-identical float64 sums)
    try:
        for i in range(cfg.runs):
            m = measure(g, MeasureOptions(nets=cfg.nets, seed=i, device="cpu", dtype=cfg.dtype, chunk=cfg.nets))
            v = m.per_net["grad_logit_l2_sq"][:, 0]
            c = exact_claim("t", "", predicted=exact, values=v, seed=i)
            fails += c.verdict == "fail"
            misses += not (c.ci_low <= exact <= c.ci_high)
            se = v.std(ddof=1) / math.sqrt(len(v))
            normal += abs(v.mean() - exact) > norm.ppf(0.995) * se
            w = exact_claim("t", "", predicted=1.3 * exact, values=v, seed=i)
            passes13 += w.verdict == "pass"
            rejected13 += w.verdict == "fail"
    finally:
        torch.set_num_threads(threads)
    row = next(r for r in table(page, "Size") if r["configuration"] == cfg.key)
    assert (num(row["false fails"]), num(row["interval misses"]), num(row["normal-interval misses"])) == \
        (fails, misses, normal)
    p13 = next(r for r in table(page, "Power") if r["configuration"] == cfg.key and r["prediction"].startswith("x1.3 "))
    assert (num(p13["passed"]), num(p13["rejected"])) == (passes13, rejected13)


def test_random_relu_dag_is_the_documented_generator():
    """Seed 0: 8 inputs, 12 ReLU nodes, one linear output reading every sink; heavy right tail."""
    g = CAL.random_relu_dag()
    kinds = [g.nodes[n]["kind"] for n in g]
    assert kinds.count("input") == 8 and kinds.count("relu") == 12 and kinds.count("linear") == 1
    assert [n for n in g if g.out_degree(n) == 0] == ["o"]
    assert all(1 <= g.in_degree(f"h{v}") <= 4 for v in range(12))
    x = np.sort(np.random.default_rng(0).pareto(1.9, 20000) + 1)
    assert abs(CAL.hill_index(x) - 1.9) < 0.2           # the script's tail-index estimator on a known tail
