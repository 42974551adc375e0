"""Calibration of the verdicts: size and power of the exact claim, and how often a correct run exits 1.

Usage::

    python benchmarks/calibration.py                        # full measurement (15-20 min on a shared 2-core CPU),
                                                            # writes docs/calibration.md
    python benchmarks/calibration.py --quick --out /tmp/c.md   # small configurations (< 1 min), smoke test only

Not run in CI (the full run takes minutes); ``tests/test_calibration_bench.py`` runs ``--quick``.

What it measures, for every configuration of :data:`FULL` (``--quick``: :data:`QUICK`):

1. **Size.**  ``R`` runs, each one measurement of ``nets`` independent networks with its own seed
   (``measure(target, MeasureOptions(nets=nets, seed=i))``, ``i = 0 .. R-1``).  The per-network
   values of ``||grad f||^2`` are tested with :func:`initstats.claims.exact_claim` (99 %) against
   the *correct* exact prediction (``analyse(target).outputs[0].grad_sq_total``).  Counted: the
   runs where the verdict is ``fail`` (false fails), where the prediction lies outside the
   claim's interval ``[ci_low, ci_high]`` (interval misses, split by side), and the inconclusive
   and passing runs.  Nominal: 1 % each.
2. **Power.**  The same samples against wrong predictions ``x1.05``, ``x0.95``, ``x1.3`` and
   ``x1/1.3``: how often each is rejected (verdict ``fail``), and how often it *passes* (a pass
   of a 30 %-wrong prediction is a defect, whatever its rate).
3. **Baseline.**  On the same samples, the plain normal interval ``mean +- 2.576 se`` (what the
   library used before its intervals were calibrated): its miss rate against the correct
   prediction and its rejection rate against the wrong ones.
4. **Run level.**  ``verify_family`` (Holm's correction on, every claim of the run including the
   scaling claims) on a circular 4-channel ``cnn`` and a small ``fc`` at two input sizes, with a
   fixed ``MeasureOptions(nets=N, seed=i)``: how often a whole run reports a failed claim (the
   CLI's exit status 1), the same without Holm's correction, and each claim's verdict counts.

Every rate comes with a 95 % Clopper-Pearson interval (:func:`rate_ci`).  The several
predictions of one run are tested on the *same* sample: one measurement per run, then one
``exact_claim`` per prediction.  ``exact_claim`` computes its interval (a bootstrap of 1,999
resamples) afresh for each prediction although the interval depends on the values, the level and
the seed only; :func:`one_interval_per_sample` computes it once per sample, and the first run of
every configuration checks that the verdicts are those of plain ``exact_claim`` calls.

The heavy-tailed configuration is :func:`random_relu_dag` with seed 0 (per-network
``||grad f||^2`` of mean 2, skewness about 50, tail index about 1.9).  CNNs run in float32 (the
default), the DAG in float64.  Torch runs on ``--threads`` threads (default 1: on a shared 2-core
machine one thread was several times faster than two).

The full run writes ``docs/calibration.md`` (``--out`` elsewhere); ``--quick`` writes to
``--out`` or to a temporary file whose path it prints.  The page's sentences are chosen from the
numbers: "within nominal" only where the 95 % interval of a rate reaches down to 1 %.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import torch
from scipy.stats import binomtest
from scipy.stats import skew as sample_skewness

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import load_average, machine_info, markdown_table, repo_path  # noqa: E402

import initstats.claims as claims_module  # noqa: E402
from initstats.claims import exact_claim  # noqa: E402
from initstats.empirical.measure import MeasureOptions, measure  # noqa: E402
from initstats.exact import analyse  # noqa: E402
from initstats.families import make_arch  # noqa: E402
from initstats.inference import z_value  # noqa: E402
from initstats.verify import VerifySettings, verify_family  # noqa: E402

DOC = "docs/calibration.md"
CONFIDENCE = 0.99
NOMINAL = 1 - CONFIDENCE
#: 95 % Clopper-Pearson intervals for every rate
CI_LEVEL = 0.95
#: (label, factor) of the predictions tested on every sample; the first is the correct one
FACTORS = (("x1", 1.0), ("x1.05", 1.05), ("x0.95", 0.95), ("x1.3", 1.3), ("x1/1.3", 1 / 1.3))
#: predictions whose passing is a defect at any rate
GROSSLY_WRONG = ("x1.3", "x1/1.3")
COMMAND = "python benchmarks/calibration.py"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the heavy-tailed network --------------------------------------------------------------------------------

def random_relu_dag(n_inputs: int = 8, n_hidden: int = 12, min_fan_in: int = 1, max_fan_in: int = 4,
                    window: int = 8, seed: int = 0) -> nx.DiGraph:
    """A random DAG of ReLU nodes whose per-network ``||grad f||^2`` is heavy-tailed.

    ``n_inputs`` input nodes ``x0..``, then ``n_hidden`` ReLU nodes ``h0..``; each draws a fan-in
    ``k`` uniformly in ``[min_fan_in, max_fan_in]`` and takes ``k`` distinct parents among the last
    ``window`` nodes created (inputs included).  One linear output ``o`` reads the last two nodes and
    every node nobody reads.  Every edge carries its own random weight (a node-link DAG), so no
    deterministic merge exists and the exact path sum is a theorem for the real networks
    (THEORY.md 4c).  With the defaults (seed 0): ``E||grad f||^2 = 2`` exactly, and the per-network
    values have skewness about 50 and a right tail of Hill index about 1.9 (narrow layers: a few
    networks whose gates all open along a long path carry much of the mean).
    """
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    names = [f"x{i}" for i in range(n_inputs)]
    for nm in names:
        g.add_node(nm, kind="input")
    for v in range(n_hidden):
        name = f"h{v}"
        g.add_node(name, kind="relu")
        k = int(rng.integers(min_fan_in, max_fan_in + 1))
        lo = max(0, len(names) - window)
        for p in rng.choice(np.arange(lo, len(names)), size=min(k, len(names) - lo), replace=False):
            g.add_edge(names[p], name)
        names.append(name)
    g.add_node("o", kind="linear")
    for p in names[-2:]:
        g.add_edge(p, "o")
    for s in [n for n in g if g.out_degree(n) == 0 and n != "o"]:
        g.add_edge(s, "o")
    return g


# -- configurations ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SizeConfig:
    """One configuration of the size and power tables: ``runs`` measurements of ``nets`` networks."""

    key: str
    family: str                      # "fc", "cnn" or "dag" (random_relu_dag with the defaults)
    px: int | None
    nets: int
    runs: int
    options: tuple[tuple[str, object], ...] = ()
    dtype: str = "float32"

    def target(self):
        if self.family == "dag":
            return random_relu_dag()
        return make_arch(self.family, self.px, **dict(self.options))

    def network(self) -> str:
        if self.family == "dag":
            return "random_relu_dag() (seed 0): 8 inputs, 12 ReLU nodes, fan-in 1-4"
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options)
        return f"make_arch({self.family!r}, {self.px}{', ' + opts if opts else ''})"


@dataclass(frozen=True)
class RunConfig:
    """One configuration of the run-level table: ``runs`` calls of ``verify_family``."""

    key: str
    family: str
    dims: tuple[int, ...]
    nets: int
    runs: int
    options: tuple[tuple[str, object], ...] = ()

    def call(self) -> str:
        opts = f", family_options={dict(self.options)}" if self.options else ""
        return (f"verify_family({self.family!r}, {list(self.dims)}{opts}, "
                f"options=MeasureOptions(nets={self.nets}, seed=i))")


CNN4C = (("channels", 4), ("padding", "circular"))
CNN4Z = (("channels", 4), ("padding", "zero"))
CNN16C = (("channels", 16), ("padding", "circular"))
CNN16Z = (("channels", 16), ("padding", "zero"))
FC_SMALL = (("width", 64), ("depth", 2))

FULL = {
    "size": (
        SizeConfig("fc", "fc", 8, nets=2000, runs=200, options=FC_SMALL),
        SizeConfig("cnn circular 4 ch", "cnn", 16, nets=2000, runs=200, options=CNN4C),
        SizeConfig("cnn zero 4 ch", "cnn", 16, nets=2000, runs=200, options=CNN4Z),
        SizeConfig("cnn circular 16 ch", "cnn", 8, nets=1000, runs=200, options=CNN16C),
        SizeConfig("cnn zero 16 ch", "cnn", 8, nets=1000, runs=200, options=CNN16Z),
        SizeConfig("heavy-tailed DAG", "dag", None, nets=2000, runs=400, dtype="float64"),
    ),
    "run": (
        RunConfig("cnn circular 4 ch", "cnn", (16, 32), nets=2000, runs=100, options=CNN4C),
        RunConfig("fc", "fc", (8, 16), nets=1000, runs=100, options=FC_SMALL),
    ),
}

QUICK = {
    "size": (
        SizeConfig("fc", "fc", 8, nets=1000, runs=10, options=FC_SMALL),
        SizeConfig("cnn circular 4 ch", "cnn", 8, nets=300, runs=8, options=CNN4C),
        SizeConfig("heavy-tailed DAG", "dag", None, nets=500, runs=10, dtype="float64"),
    ),
    "run": (
        RunConfig("cnn circular 4 ch", "cnn", (16, 32), nets=150, runs=3, options=CNN4C),
        RunConfig("fc", "fc", (8, 16), nets=300, runs=3, options=FC_SMALL),
    ),
}


# -- statistics ----------------------------------------------------------------------------------------------

def rate_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Clopper-Pearson (exact binomial) interval of the rate ``k / n``."""
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def ci_text(k: int, n: int) -> str:
    lo, hi = rate_ci(k, n)
    return f"{100 * lo:.2f}–{100 * hi:.2f} %"


def reading(k: int, n: int, nominal: float = NOMINAL) -> str:
    """How a false-fail or miss rate compares with the nominal rate: by its 95 % interval.

    "within nominal" only where the interval reaches down to the nominal rate; a point estimate
    above it is said so even then (the runs could not tell).
    """
    lo, hi = rate_ci(k, n)
    if lo > nominal:
        return "**exceeds nominal**"
    if k / n > nominal:
        return "within nominal, but the point estimate is above it"
    if hi < nominal:
        return "within nominal (below it)"
    return "within nominal"


def hill_index(x: np.ndarray) -> float:
    """Hill's estimate of the right tail's index from the ``2 sqrt(n)`` largest values (the
    estimator of :func:`initstats.inference.mean_interval`, applied here to pooled values)."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    n = len(xs)
    k = int(min(max(10, round(2 * math.sqrt(n))), n // 4))
    u = xs[n - k - 1]
    if u <= 0:
        return math.nan
    gamma = float(np.mean(np.log(xs[n - k:] / u)))
    return 1 / gamma if gamma > 0 else math.inf


@contextlib.contextmanager
def one_interval_per_sample():
    """Within the block, ``exact_claim`` computes each distinct interval once.

    ``exact_claim(values=...)`` calls ``initstats.claims.mean_interval(values, confidence,
    seed=seed)``, a deterministic function of its arguments; the block swaps in a memoised wrapper
    (keyed on the bytes of the values), so testing five predictions on one sample costs one
    bootstrap instead of five.  The library itself is not changed; the original is restored on exit.
    """
    original = claims_module.mean_interval
    memo: dict = {}

    def memoised(values, confidence=0.99, *, seed=0, **kw):
        x = np.ascontiguousarray(values, dtype=np.float64)
        key = (hashlib.blake2b(x.tobytes(), digest_size=16).digest(), len(x), confidence, seed,
               tuple(sorted(kw.items())))
        if key not in memo:
            memo[key] = original(x, confidence, seed=seed, **kw)
        return memo[key]

    claims_module.mean_interval = memoised
    try:
        yield
    finally:
        claims_module.mean_interval = original


def _claims(values: np.ndarray, exact: float, seed: int) -> dict:
    return {label: exact_claim("grad_sq_total", f"E||grad f||^2 = {exact * f:.6g}", predicted=exact * f,
                               values=values, confidence=CONFIDENCE, seed=seed)
            for label, f in FACTORS}


@dataclass
class SizeResult:
    cfg: SizeConfig
    exact: float
    seconds: float = 0.0
    #: per prediction label: Counter of verdicts and of "miss_below"/"miss_above"/"normal_below"/"normal_above"
    counts: dict[str, Counter] = field(default_factory=dict)
    methods: Counter = field(default_factory=Counter)
    pooled: np.ndarray | None = None


def run_size(cfg: SizeConfig) -> SizeResult:
    target = cfg.target()
    exact = float(analyse(target).outputs[0].grad_sq_total)
    res = SizeResult(cfg, exact, counts={label: Counter() for label, _ in FACTORS})
    z = z_value(CONFIDENCE)
    pooled = []
    t0 = time.perf_counter()
    for i in range(cfg.runs):
        m = measure(target, MeasureOptions(nets=cfg.nets, seed=i, device="cpu", dtype=cfg.dtype, chunk=cfg.nets))
        v = np.asarray(m.per_net["grad_logit_l2_sq"][:, 0], dtype=np.float64)
        pooled.append(v)
        with one_interval_per_sample():
            cs = _claims(v, exact, i)
        if i == 0:  # the memoised interval gives the verdicts of plain exact_claim calls
            plain = _claims(v, exact, i)
            for label, _ in FACTORS:
                a, b = cs[label], plain[label]
                assert (a.verdict, a.ci_low, a.ci_high, a.p_value) == (b.verdict, b.ci_low, b.ci_high, b.p_value), \
                    (cfg.key, label, a, b)
        mean, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))
        res.methods[cs["x1"].interval] += 1
        for label, f in FACTORS:
            c, pred, cnt = cs[label], exact * f, res.counts[label]
            cnt[c.verdict] += 1
            if c.ci_high < pred:
                cnt["miss_below"] += 1       # the interval lies below the prediction
            elif c.ci_low > pred:
                cnt["miss_above"] += 1
            if mean + z * se < pred:
                cnt["normal_below"] += 1
            elif mean - z * se > pred:
                cnt["normal_above"] += 1
        if (i + 1) % max(1, cfg.runs // 4) == 0:
            log(f"  {cfg.key}: {i + 1}/{cfg.runs} runs, {time.perf_counter() - t0:.0f} s")
    res.seconds = time.perf_counter() - t0
    res.pooled = np.concatenate(pooled)
    return res


@dataclass
class RunResult:
    cfg: RunConfig
    seconds: float = 0.0
    exits: int = 0
    exits_unadjusted: int = 0
    #: (seed, failed claims) of every run that exited 1
    failures: list = field(default_factory=list)
    #: claim name -> Counter of verdicts, plus "fail before Holm"
    claims: dict[str, Counter] = field(default_factory=dict)


def _unadjusted_fail(c) -> bool:
    """Would this claim fail without Holm's correction?  (Holm only turns fails into inconclusive.)"""
    if c.verdict == "fail":
        return True
    return (c.verdict == "inconclusive" and c.p_value is not None and c.p_value < NOMINAL
            and c.p_adjusted is not None and c.p_adjusted >= NOMINAL)


def run_level(cfg: RunConfig) -> RunResult:
    res = RunResult(cfg)
    settings = VerifySettings(confidence=CONFIDENCE, holm=True)
    t0 = time.perf_counter()
    for i in range(cfg.runs):
        out = verify_family(cfg.family, list(cfg.dims), family_options=dict(cfg.options),
                            options=MeasureOptions(nets=cfg.nets, seed=i, device="cpu"), settings=settings)
        res.exits += out.failed
        if out.failed:
            res.failures.append((i, [c for c in out.claims if c.verdict == "fail"]))
        res.exits_unadjusted += any(_unadjusted_fail(c) for c in out.claims)
        for c in out.claims:
            cnt = res.claims.setdefault(c.name, Counter())
            cnt[c.verdict] += 1
            cnt["unadjusted"] += _unadjusted_fail(c)
        if (i + 1) % max(1, cfg.runs // 4) == 0:
            log(f"  run level {cfg.key}: {i + 1}/{cfg.runs} runs, {time.perf_counter() - t0:.0f} s")
    res.seconds = time.perf_counter() - t0
    return res


# -- the page ------------------------------------------------------------------------------------------------

def _factor_text(label: str, exact: float) -> str:
    f = dict(FACTORS)[label]
    return f"{label} ({exact * f:.5g})"


def _width(c: SizeConfig) -> str:
    o = dict(c.options)
    if c.family == "cnn":
        return f"{o.get('channels', 'default')} channels, {o.get('padding', 'default')} padding"
    if c.family == "fc":
        return f"width {o.get('width', 'default')}, depth {o.get('depth', 'default')}"
    return "–"


def config_rows(results: list[SizeResult]) -> list[dict]:
    rows = []
    for r in results:
        c, v = r.cfg, r.pooled
        n = len(v)
        methods = ", ".join(f"{m} {k}" for m, k in r.methods.most_common())
        rows.append({
            "configuration": c.key, "network": f"`{c.network()}`", "px": c.px if c.px is not None else "–",
            "channels / width": _width(c),
            "nets per run": c.nets, "runs": c.runs, "dtype": c.dtype,
            "exact E‖∇f‖²": f"{r.exact:.6g}",
            "pooled mean ± se": f"{v.mean():.5g} ± {v.std(ddof=1) / math.sqrt(n):.2g}",
            "skewness (pooled)": f"{sample_skewness(v):.1f}",
            "Hill index (pooled)": f"{hill_index(v):.2f}",
            "intervals (runs)": methods,
            "seconds": f"{r.seconds:.0f}",
        })
    return rows


def size_rows(results: list[SizeResult]) -> list[dict]:
    rows = []
    for r in results:
        R, cnt = r.cfg.runs, r.counts["x1"]
        miss = cnt["miss_below"] + cnt["miss_above"]
        normal = cnt["normal_below"] + cnt["normal_above"]
        rows.append({
            "configuration": r.cfg.key, "runs": R,
            "false fails": cnt["fail"], "false-fail rate": pct(cnt["fail"] / R), "95 % CI": ci_text(cnt["fail"], R),
            "reading": reading(cnt["fail"], R),
            "interval misses": miss, "below / above": f"{cnt['miss_below']} / {cnt['miss_above']}",
            "miss rate": pct(miss / R), "miss 95 % CI": ci_text(miss, R),
            "inconclusive": cnt["inconclusive"], "pass": cnt["pass"],
            "normal-interval misses": normal, "normal below / above": f"{cnt['normal_below']} / {cnt['normal_above']}",
            "normal miss rate": pct(normal / R), "normal 95 % CI": ci_text(normal, R),
        })
    return rows


def power_rows(results: list[SizeResult]) -> list[dict]:
    rows = []
    for r in results:
        R = r.cfg.runs
        for label, _ in FACTORS[1:]:
            cnt = r.counts[label]
            normal = cnt["normal_below"] + cnt["normal_above"]
            rows.append({
                "configuration": r.cfg.key, "prediction": _factor_text(label, r.exact), "runs": R,
                "rejected": cnt["fail"], "rejection rate": pct(cnt["fail"] / R), "95 % CI": ci_text(cnt["fail"], R),
                "inconclusive": cnt["inconclusive"], "passed": cnt["pass"], "pass rate": pct(cnt["pass"] / R),
                "normal interval rejects": normal,
            })
    return rows


def run_rows(results: list[RunResult]) -> list[dict]:
    rows = []
    for r in results:
        c = r.cfg
        rows.append({
            "configuration": c.key, "call": f"`{c.call()}`", "runs": c.runs,
            "exit 1 (Holm)": r.exits, "rate": pct(r.exits / c.runs), "95 % CI": ci_text(r.exits, c.runs),
            "reading": reading(r.exits, c.runs),
            "exit 1 without Holm": r.exits_unadjusted, "rate without Holm": pct(r.exits_unadjusted / c.runs),
            "95 % CI without Holm": ci_text(r.exits_unadjusted, c.runs),
            "seconds": f"{r.seconds:.0f}",
        })
    return rows


def claim_rows(results: list[RunResult]) -> list[dict]:
    rows = []
    for r in results:
        for name, cnt in r.claims.items():
            rows.append({"configuration": r.cfg.key, "claim": f"`{name}`", "runs": r.cfg.runs,
                         "fail": cnt["fail"], "fail before Holm": cnt["unadjusted"],
                         "inconclusive": cnt["inconclusive"], "pass": cnt["pass"],
                         "not covered": cnt["not-covered"]})
    return rows


def _number(x) -> str:
    return "–" if x is None else f"{x:.4g}"


def failure_lines(results: list[RunResult]) -> list[str]:
    lines = []
    for r in results:
        if not r.failures:
            lines.append(f"- {r.cfg.key}: none in {r.cfg.runs} runs.")
        for seed, failed in r.failures:
            lines.append(f"- {r.cfg.key}, seed {seed}: " + "; ".join(
                f"`{c.name}` ({c.kind}) measured {_number(c.estimate)} ± {_number(c.stderr)} against "
                f"{_number(c.predicted)}, interval {_number(c.ci_low)} .. {_number(c.ci_high)}, "
                f"p = {_number(c.p_value)}, Holm-adjusted {_number(c.p_adjusted)}" for c in failed) + ".")
    return lines


def _rate_phrase(k: int, n: int) -> str:
    return f"{k} of {n} runs ({pct(k / n)}, 95 % CI {ci_text(k, n)})"


def summary(size: list[SizeResult], runs: list[RunResult]) -> list[str]:
    """Sentences chosen from the numbers."""
    lines = []
    for r in size:
        R, cnt = r.cfg.runs, r.counts["x1"]
        miss = cnt["miss_below"] + cnt["miss_above"]
        normal = cnt["normal_below"] + cnt["normal_above"]
        fail_read, miss_read = reading(cnt["fail"], R), reading(miss, R)
        s = (f"- **{r.cfg.key}** ({r.cfg.nets} networks per run): a correct prediction failed in "
             f"{_rate_phrase(cnt['fail'], R)}, {fail_read}; the claim's interval missed the exact value in "
             f"{_rate_phrase(miss, R)}, {miss_read}")
        if normal == miss:
            s += "; the plain normal interval missed as often"
        else:
            s += f"; the plain normal interval missed in {_rate_phrase(normal, R)}, {reading(normal, R)}"
        s += "."
        if cnt["pass"] == 0:
            s += (f" No run passed (inconclusive in {cnt['inconclusive']}): the interval is too wide to detect a 5 % "
                  "error at this sample size.")
        lines.append(s)
    lines.append("")
    for r in size:
        R = r.cfg.runs
        parts = []
        for small, big, size_txt in (("x1.05", "x0.95", "5 %"), ("x1.3", "x1/1.3", "30 %")):
            up, down = r.counts[small]["fail"], r.counts[big]["fail"]
            (ulo, uhi), (dlo, dhi) = rate_ci(up, R), rate_ci(down, R)
            if up == down == 0:
                how = "no power at this sample size"
            elif ulo <= dhi and dlo <= uhi:
                how = "symmetric within their 95 % CIs"
            else:
                how = "**asymmetric** (their 95 % CIs do not overlap)"
            parts.append(f"against a {size_txt} error, {small} was rejected in {pct(up / R)} and {big} in "
                         f"{pct(down / R)}: {how}")
        lines.append(f"- **{r.cfg.key}**: " + "; ".join(parts) + ".")
    lines.append("")
    passes = {(r.cfg.key, label): r.counts[label]["pass"] for r in size for label in GROSSLY_WRONG}
    total = sum(r.cfg.runs for r in size) * len(GROSSLY_WRONG)
    bad = {k: v for k, v in passes.items() if v}
    if not bad:
        lines.append(f"- A x1.3 or x1/1.3 prediction **never passed** ({total} tests over all configurations).")
    else:
        lines.append("- **A 30 %-wrong prediction passed**: " + "; ".join(
            f"{key} {label}: {v} runs" for (key, label), v in bad.items()) + f" (of {total} tests): a defect.")
    for r in runs:
        c = r.cfg
        lines.append(f"- **Run level, {c.key}** at {', '.join(map(str, c.dims))} px, {c.nets} networks per size: "
                     f"a whole `verify_family` run reported a failed claim (exit 1) in {_rate_phrase(r.exits, c.runs)}, "
                     f"{reading(r.exits, c.runs)}; without Holm's correction in {r.exits_unadjusted}.")
    return lines


def render(size: list[SizeResult], runs: list[RunResult], quick: bool, info: str, seconds: float,
           loads: tuple[str, str], threads: int) -> str:
    cmd = f"`{COMMAND} --quick` (smoke-test sizes, not the measurement)" if quick else f"`{COMMAND}`"
    parts = [
        "# Calibration of the verdicts",
        "",
        f"Generated by {cmd}; do not edit by hand, rerun the script (15–20 minutes on a shared 2-core CPU, see *Machine*; "
        "not run in CI, where `tests/test_calibration_bench.py` runs `--quick`). Source: "
        "[benchmarks/calibration.py](../benchmarks/calibration.py).",
        "",
        "## Method",
        "",
        "An exact claim tests the mean of a per-network statistic (here ‖∇ₓf‖², one value per independently "
        "initialised network) against the exact prediction, at 99 % confidence: it **fails** when the prediction "
        "lies outside the claim's 99 % interval (the normal interval widened by a studentized bootstrap whose world "
        "extrapolates a Pareto right tail, [initstats/inference.py](../initstats/inference.py)), is **inconclusive** "
        "when it does not fail but the interval is too wide to detect a 5 % error with 80 % power, and **passes** "
        "otherwise.",
        "",
        "- A *run* is one measurement of `nets` networks with its own seed (`MeasureOptions(nets=..., seed=i)`, "
        "i = 0 .. R−1); all predictions of a run are tested on that same sample.",
        "- **Size**: against the *correct* exact prediction, the rate of false fails and the rate at which the "
        "claim's interval misses the exact value (split by side: *below* = the whole interval lies below it). "
        "Nominal: 1 % each (99 % confidence). A rate is read as **within nominal** when the lower end of its 95 % "
        "interval is at most 1 %, as **exceeds nominal** otherwise.",
        "- **Power**: against predictions off by ×1.05, ×0.95, ×1.3 and ×1/1.3, the rate at which the claim fails "
        "(rejects). A pass of a ×1.3 or ×1/1.3 prediction is a defect at any rate.",
        "- **Baseline**: on the same samples, the plain normal interval mean ± 2.576·se, which the calibrated "
        "interval replaces.",
        "- **Run level**: `verify_family` with Holm's correction over all claims of the run (the default), "
        "scaling claims included; *exit 1* is a run with any failed claim (the CLI's exit status). *Without Holm* "
        "counts runs in which some claim would fail at its own 99 % level.",
        "- Every rate has a 95 % Clopper–Pearson (exact binomial) interval. Skewness and Hill's tail index "
        "(from the 2√n largest values, as in `mean_interval`) are those of all runs' values pooled.",
        "",
        "## Summary",
        "",
        *summary(size, runs),
        "",
        "## Configurations",
        "",
        markdown_table(config_rows(size)),
        "",
        "## Size: the correct prediction (nominal 1 %)",
        "",
        markdown_table(size_rows(size)),
        "",
        "## Power: wrong predictions",
        "",
        markdown_table(power_rows(size)),
        "",
        "## Run level: whole `verify_family` runs on correct networks",
        "",
        markdown_table(run_rows(runs)),
        "",
        "Verdict counts per claim over the same runs:",
        "",
        markdown_table(claim_rows(runs)),
        "",
        "Runs that exited 1 (seed `i` reproduces them with the call above):",
        "",
        *failure_lines(runs),
        "",
        "## Machine",
        "",
        f"{info}; torch threads {threads}; load average {loads[0]} at the start, {loads[1]} at the end; "
        f"{seconds / 60:.1f} min in all.",
        "",
        f"Regenerate with `{COMMAND}{' --quick' if quick else ''}`.",
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few runs of small configurations (< 1 min), smoke test")
    ap.add_argument("--out", default=None,
                    help=f"the page to write (default {DOC}; with --quick a temporary file)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    info = machine_info()
    log(info)
    load_start = load_average()
    t0 = time.perf_counter()
    size = []
    for cfg in plan["size"]:
        log(f"size/power: {cfg.key} ({cfg.runs} runs of {cfg.nets} networks)")
        size.append(run_size(cfg))
    runs = []
    for cfg in plan["run"]:
        log(f"run level: {cfg.key} ({cfg.runs} runs)")
        runs.append(run_level(cfg))
    page = render(size, runs, args.quick, info, time.perf_counter() - t0, (load_start, load_average()),
                  torch.get_num_threads())
    print(page, end="")
    if args.out is not None:
        out = repo_path(args.out)
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="calibration-quick-")) / "calibration.md"
    else:
        out = repo_path(DOC)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
