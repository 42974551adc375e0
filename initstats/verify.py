"""Verification: measure initialised networks, predict exactly, and give every claim a verdict.

:func:`verify_family` runs a named family over input sizes (and average-pooling degrees);
:func:`verify_graph` runs a node-link DAG.  For each network the exact engine
(:func:`initstats.exact.analyse`) gives the annealed ``E||grad f||^2`` per input and in total,
the Monte Carlo engine (:func:`initstats.empirical.measure`) draws independent networks, and
:mod:`initstats.claims` turns the two into verdicts:

- per input size: ``E||grad f||^2`` against the exact prediction -- *exact* under (H) (zero
  padding's per-edge variances included), *approximate* with deterministic merges (the measured
  excess over the annealed value is reported), *not-covered* with max pooling or BatchNorm;
- per input size, under (H): the per-coordinate map, tested on rings of coordinates by their
  distance to the border (corners and edges against the interior);
- across input sizes: ``||grad f||_2 ~ d^0`` (Theorems 4, 5, Corollary 6), ``||grad f||_1``,
  ``||grad L||_1`` and the l_inf damage ``~ d^{1/2}``, ``||grad L||_inf / sqrt(2 ln d) ~ d^{-1/2}``
  (eq. 7; the ``sqrt(2 ln d)`` is the maximum of d Gaussian coordinates);
- across pooling degrees ``a``: ``E||grad f||^2 ~ a^{-1}`` (Theorems 7, 11).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import networkx as nx
import numpy as np
import pandas as pd

from .claims import (SCALING_LAWS, Claim, approximate_claim, combine_verdicts, exact_claim, loglog_fit,
                     not_covered_claim, scaling_claim)
from .errors import OptionError
from .exact import analyse
from .exact.results import GraphAnalysis, OutputAnalysis
from .families import make_arch, with_avgpool, with_logit_relu
from .spec import Arch

__all__ = ["VerifySettings", "Verification", "verify_family", "verify_graph", "border_rings", "SCALING_LAWS"]



@dataclass(frozen=True)
class VerifySettings:
    """Confidence levels and tolerances of the verdicts (see :mod:`initstats.claims`).

    Parameters
    ----------
    confidence : float
        Confidence level of every test and interval.
    detectable : float
        Relative error an exact claim must be able to detect (5 %), with ``power``.
    map_detectable : float
        The same for each ring of the per-coordinate map (fewer coordinates, more noise).
    approx_tolerance : float, optional
        With deterministic merges H1 breaks and the excess over the annealed value is reported
        (verdict ``not-covered``); give a tolerance to test "within tolerance" instead.
    exponent_tolerance : float
        Tolerance on fitted exponents.
    """

    confidence: float = 0.99
    detectable: float = 0.05
    map_detectable: float = 0.10
    power: float = 0.8
    approx_tolerance: float | None = None
    exponent_tolerance: float = 0.1

    def __post_init__(self) -> None:
        for name in ("confidence", "detectable", "map_detectable", "power", "approx_tolerance", "exponent_tolerance"):
            v = getattr(self, name)
            if v is None and name == "approx_tolerance":
                continue
            if not (isinstance(v, (int, float)) and 0 < v < 1):
                raise OptionError(f"{name}={v!r} is invalid; expected a number in (0, 1)")


@dataclass(frozen=True, eq=False)
class Verification:
    """Measured rows (tidy), claims with verdicts, and the objects behind them."""

    rows: pd.DataFrame
    claims: tuple[Claim, ...]
    measurements: tuple = field(repr=False, default=())
    analyses: tuple[GraphAnalysis, ...] = field(repr=False, default=())
    labels: tuple[str, ...] = ()  # one per measurement, e.g. "px=32" or "px=32,pool=2"

    @property
    def verdict(self) -> str:
        """``fail`` if any claim fails, else ``inconclusive`` if any is, else ``pass``."""
        return combine_verdicts([c.verdict for c in self.claims])

    @property
    def failed(self) -> bool:
        return any(c.verdict == "fail" for c in self.claims)

    def claims_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.to_dict() for c in self.claims])

    def to_dict(self) -> dict:
        """``{"rows": [...], "claims": [...]}`` (JSON-ready; NaN become None)."""
        rows = [{k: _clean(v) for k, v in r.items() if not (k in ("predicted", "output", "pool") and _clean(v) is None)}
                for r in self.rows.to_dict(orient="records")]
        return {"rows": rows, "claims": [{k: _clean(v) for k, v in c.to_dict().items()} for c in self.claims]}


def _clean(v: object) -> object:
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def border_rings(input_shape: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    """Group input coordinates by their distance to the nearest border of the spatial grid.

    Rings ``0``, ``1``, ``2-3`` and ``>=4`` (those that occur), the same for every channel.
    Without spatial axes every coordinate is in one group.
    """
    spatial = input_shape[1:]
    if not spatial:
        return np.zeros(math.prod(input_shape), dtype=np.int64), ["all"]
    grids = np.meshgrid(*(np.minimum(np.arange(n), n - 1 - np.arange(n)) for n in spatial), indexing="ij")
    dist = np.minimum.reduce([g for g in grids]).reshape(-1)
    bins = np.digitize(dist, [1, 2, 4])  # 0 | 1 | 2-3 | >=4
    labels_all = ["border", "ring 1", "rings 2-3", "interior"]
    present = sorted(set(bins.tolist()))
    remap = {b: i for i, b in enumerate(present)}
    groups = np.array([remap[b] for b in bins.tolist()], dtype=np.int64)
    return np.tile(groups, input_shape[0]), [labels_all[b] for b in present]


def _value_groups(pred: np.ndarray, max_groups: int = 4) -> tuple[np.ndarray, list[str]]:
    """Group coordinates of a DAG by quantiles of their predicted value."""
    distinct = np.unique(pred)
    if len(distinct) == 1:
        return np.zeros(len(pred), dtype=np.int64), ["all"]
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, max_groups + 1)[1:-1]))
    groups = np.searchsorted(edges, pred, side="right")
    present = sorted(set(groups.tolist()))
    remap = {b: i for i, b in enumerate(present)}
    return np.array([remap[b] for b in groups.tolist()], dtype=np.int64), [f"quantile group {i + 1}" for i in range(len(present))]


_NOT_COVERED = {"maxpool": "max pooling", "batchnorm": "BatchNorm"}


def _reason_outside(out: OutputAnalysis, kinds: set[str]) -> str:
    names = [r for k, r in _NOT_COVERED.items() if k in kinds]
    return f"outside (H): {' and '.join(names) or 'unsupported nodes'}; no theorem covers it"


def _why_no_theorem(kinds: set[str]) -> str:
    if "sum" in kinds:
        return "residual sums (paths of different lengths)"
    if "linear" in kinds:
        return "hidden layers without ReLU"
    return "non-uniform pooling degrees"


def _per_network_claims(label: str, out: OutputAnalysis, m, output: int, groups: np.ndarray, group_labels: list[str],
                        kinds: set[str], settings: VerifySettings) -> list[Claim]:
    """Claims on E||grad f||^2 and its per-coordinate map for one measured output."""
    mean, se = m.mean_se("grad_logit_l2_sq", output)
    d = m.d
    if out.hypothesis == "outside" or out.grad_sq is None:
        return [not_covered_claim(f"grad_sq_total[{label}]", f"E||grad f||^2 at d={d} (measured only)",
                                  f"measured {mean:.5g} ± {se:.2g}; {_reason_outside(out, kinds)}",
                                  estimate=mean, stderr=se, d=d)]
    pred = float(out.grad_sq_total)  # type: ignore[arg-type]
    source = "He init: 2/prod a_i" if out.theorem_holds else "exact per-edge variances"
    statement = f"E||grad f||^2 at d={d} equals the annealed prediction {pred:.6g} ({source})"
    if out.hypothesis == "H'":
        return [approximate_claim(f"grad_sq_total[{label}]", statement, mean, se, pred,
                                  tolerance=settings.approx_tolerance, confidence=settings.confidence, d=d)]
    claims = [exact_claim(f"grad_sq_total[{label}]", statement, mean, se, pred, confidence=settings.confidence,
                          detectable=settings.detectable, power=settings.power, d=d, n=m.n_nets,
                          skewness=m.skewness("grad_logit_l2_sq", output))]
    if len(group_labels) > 1:
        pred_map = out.grad_sq.to_numpy()
        pred_groups = np.bincount(groups, weights=pred_map, minlength=len(group_labels))
        g_mean, g_se = m.group_mean_se(output)
        g_skew = m.group_skewness(output)
        # Bonferroni over the groups keeps the claim's overall confidence
        conf = 1 - (1 - settings.confidence) / len(group_labels)
        parts = [exact_claim("", "", float(g_mean[i]), float(g_se[i]), float(pred_groups[i]), confidence=conf,
                             detectable=settings.map_detectable, power=settings.power, n=m.n_nets,
                             skewness=float(g_skew[i]))
                 for i in range(len(group_labels))]
        verdict = combine_verdicts([p.verdict for p in parts])
        worst = max(range(len(parts)), key=lambda i: abs(parts[i].estimate / parts[i].predicted - 1))
        detail = "; ".join(f"{lab}: {p.estimate / p.predicted - 1:+.1%} ± {p.stderr / p.predicted:.1%} ({p.verdict})"
                           for lab, p in zip(group_labels, parts))
        claims.append(Claim(f"grad_sq_map[{label}]", "exact", verdict,
                            f"the per-coordinate map E(df/dx_i)^2 at d={d} matches the exact one on "
                            f"{len(parts)} coordinate groups", parts[worst].predicted, parts[worst].estimate,
                            parts[worst].stderr, parts[worst].ci_low, parts[worst].ci_high, settings.map_detectable,
                            settings.confidence, d, detail))
    return claims


def _scaling_claims(points: list[tuple[int, object]], covered: bool, reason: str,
                    settings: VerifySettings, exact_totals: Sequence[float | None] = ()) -> list[Claim]:
    """Exponents in d for the statistics of :data:`SCALING_LAWS`.

    ``exact_totals`` are the exact ``E||grad f||^2`` at each d.  Where they change with d (zero
    padding: H3 fails near the border) each claim's detail says by how much, since the theorems'
    exponents then hold only once the border is negligible.
    """
    claims = []
    ds = [d for d, _ in points]
    note = ""
    if len(exact_totals) == len(ds) and all(t is not None and t > 0 for t in exact_totals) \
            and max(exact_totals) > min(exact_totals) * (1 + 1e-9):  # type: ignore[type-var, operator]
        slope = float(np.polyfit(np.log(ds), np.log(np.asarray(exact_totals, dtype=float)), 1)[0])
        note = (f"; the exact E||grad f||^2 itself changes with d here ({exact_totals[0]:.4g} .. "
                f"{exact_totals[-1]:.4g}, exponent {slope:+.3f}: H3 fails near the border), so the "
                "theorems' exponents hold only where the border is negligible")
    for stat, (exponent, log_corrected, statement) in SCALING_LAWS.items():
        means, ses = [], []
        for d, m in points:
            mean, se = m.mean_se(stat)  # type: ignore[attr-defined]
            scale = math.sqrt(2 * math.log(d)) if log_corrected else 1.0
            means.append(mean / scale)
            ses.append(se / scale)
        name = f"scaling:{stat}"
        if not covered:
            fit = loglog_fit(ds, means, ses)
            claims.append(not_covered_claim(name, statement, f"fitted exponent {fit.exponent:+.3f} ± {fit.stderr:.3f} "
                                            f"(theory {exponent:+g}); {reason}", estimate=fit.exponent,
                                            stderr=fit.stderr))
            continue
        claim = scaling_claim(name, statement, ds, means, ses, exponent,
                              tolerance=settings.exponent_tolerance, confidence=settings.confidence)
        claims.append(replace(claim, detail=claim.detail + note))
    return claims


def _measure_rows(m, px: int | None, pool: int | None, predicted_total: float | None) -> pd.DataFrame:
    frame = m.to_frame()
    frame["px"] = px
    frame["predicted"] = [predicted_total if s == "grad_logit_l2_sq" else None for s in frame["statistic"]]
    if pool is not None:
        frame["pool"] = pool
    return frame


def verify_family(name: str, dims: Sequence[int], *, pools: Sequence[int] = (1,), family_options: dict | None = None,
                  options=None, literal_h1: bool = False, settings: VerifySettings | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> Verification:
    """Verify the paper's claims on family ``name`` at input sizes ``dims`` (pixels).

    Parameters
    ----------
    name : str
        A family of :mod:`initstats.families`.
    dims : sequence of int
        Input sizes in pixels; at least two for the scaling claims.
    pools : sequence of int
        Average-pooling sizes inserted before the head (:func:`~initstats.families.with_avgpool`);
        two or more add the Theorem 7/11 claim on the pooling degree.
    family_options : dict
        Options of the family (``channels``, ``padding``, ...).
    options : MeasureOptions
        Sampling, seed, device, dtype, initialisation.
    literal_h1 : bool
        Put a ReLU on the logits (H1 taken literally: the prediction halves).
    settings : VerifySettings
    progress : callable, optional
        ``progress(label, nets_done, nets_target)``.

    Returns
    -------
    Verification
    """
    from .empirical.measure import MeasureOptions, measure

    opt = options or MeasureOptions()
    settings = settings or VerifySettings()
    if not dims:
        raise OptionError("give at least one input size, e.g. dims=[32, 64]")
    if len(set(dims)) != len(dims) or len(set(pools)) != len(pools):
        raise OptionError(f"dims {list(dims)} and pools {list(pools)} must not repeat values")
    var_scale = Fraction(1) if opt.init == "he" else Fraction(1, 2)
    rows, claims, measurements, analyses, run_labels = [], [], [], [], []
    by_pool: dict[int, list[tuple[int, object]]] = {}
    covered_all, reasons = True, set()
    grid: list[tuple[int, int, Arch]] = []
    for px in dims:
        base = make_arch(name, px, **(family_options or {}))
        for a in pools:
            arch = with_avgpool(base, a)
            grid.append((px, a, with_logit_relu(arch) if literal_h1 else arch))
    for px, a, arch in grid:
        exact = analyse(arch, var_scale=var_scale)
        out = exact.outputs[0]
        groups, labels = border_rings(arch.input_shape)
        label = f"px={px}" + (f",pool={a}" if len(pools) > 1 else "")
        cb = (lambda done, total, _l=label: progress(_l, done, total)) if progress else None
        m = measure(arch, opt, progress=cb, coord_groups=groups)
        kinds = set(arch.node_kinds)
        claims += _per_network_claims(label, out, m, 0, groups, labels, kinds, settings)
        rows.append(_measure_rows(m, px, a if len(pools) > 1 else None,
                                  None if out.grad_sq_total is None else float(out.grad_sq_total)))
        by_pool.setdefault(a, []).append((m.d, m))
        measurements.append(m)
        analyses.append(exact)
        run_labels.append(label)
        if out.hypothesis == "outside":
            covered_all = False
            reasons.add(_reason_outside(out, kinds))
        elif out.theorem_total is None:  # residual sums, hidden linear nodes: no theorem on the d-scaling
            covered_all = False
            reasons.add(f"no theorem covers {_why_no_theorem(kinds)}")
    if len(dims) >= 2:
        totals = [None if x.outputs[0].grad_sq_total is None else float(x.outputs[0].grad_sq_total)
                  for x, (_, a, _) in zip(analyses, grid) if a == pools[0]]
        claims += _scaling_claims(by_pool[pools[0]], covered_all, "; ".join(sorted(reasons)), settings, totals)
    if len(pools) >= 2:
        for i, px in enumerate(dims):
            ms = [measurements[i * len(pools) + j] for j in range(len(pools))]
            degrees = [a ** (len(grid[i * len(pools)][2].input_shape) - 1) for a in pools]
            stat = [m.mean_se("grad_logit_l2_sq") for m in ms]
            statement = f"E||grad f||^2 at {px} px decays like 1/a in the average-pooling degree a (Theorems 7, 11)"
            name_ = f"scaling:pool[px={px}]"
            if covered_all:
                claims.append(scaling_claim(name_, statement, degrees, [s[0] for s in stat], [s[1] for s in stat],
                                            -1.0, tolerance=settings.exponent_tolerance,
                                            confidence=settings.confidence))
            else:
                claims.append(not_covered_claim(name_, statement, "; ".join(sorted(reasons))))
    return Verification(pd.concat(rows, ignore_index=True), tuple(claims), tuple(measurements), tuple(analyses),
                        tuple(run_labels))


def verify_graph(g: nx.DiGraph, *, options=None, settings: VerifySettings | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> Verification:
    """Verify the exact prediction on the real networks of a node-link DAG, output by output."""
    from .empirical.measure import measure

    settings = settings or VerifySettings()
    opt = options
    var_scale = Fraction(1) if opt is None or opt.init == "he" else Fraction(1, 2)
    exact = analyse(g, var_scale=var_scale)
    first = exact.outputs[0]
    pred0 = first.grad_sq.to_numpy() if first.grad_sq is not None else np.zeros(exact.d)
    groups, labels = _value_groups(pred0)
    cb = (lambda done, total: progress("graph", done, total)) if progress else None
    m = measure(g, opt, progress=cb, coord_groups=groups)
    kinds = {k for _, k in g.nodes(data="kind")}
    claims: list[Claim] = []
    rows = []
    by_name = {o.output: o for o in exact.outputs}
    for k, name in enumerate(m.outputs):
        out = by_name[name]
        out_groups, out_labels = (groups, labels) if k == 0 else (np.zeros(exact.d, dtype=np.int64), ["all"])
        claims += _per_network_claims(f"output={name}", out, m, k, out_groups, out_labels, kinds, settings)
    frame = m.to_frame()
    frame["px"] = None
    totals = {o.output: (None if o.grad_sq_total is None else float(o.grad_sq_total)) for o in exact.outputs}
    frame["predicted"] = [totals.get(o) if s == "grad_logit_l2_sq" else None
                          for s, o in zip(frame["statistic"], frame["output"])]
    rows.append(frame)
    return Verification(pd.concat(rows, ignore_index=True), tuple(claims), (m,), (exact,), ("graph",))
