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

from collections.abc import Callable, Sequence
from dataclasses import replace
from fractions import Fraction

import networkx as nx
import numpy as np
import pandas as pd

from .claims import (Claim, combine_verdicts, exact_claim, excess_claim, holm, not_covered_claim,
                     scaling_claim)
from ._format import percent
from .errors import OptionError
from .exact import analyse
from .exact.results import OutputAnalysis
from .families import family_options as family_options_of
from .inference import MeanInterval, mean_interval
from .infinite import infinite_width_claim, with_infinite_width
from .points import border_rings, family_grid, graph_groups
from .scaling import ScalingPoint, scaling_claims
from .spec import Arch
from .verification import Verification, VerifySettings
from .width_trend import check_widths, width_trend

__all__ = ["VerifySettings", "Verification", "verify_family", "verify_archs", "verify_module", "verify_graph",
           "family_grid", "border_rings", "graph_groups"]



_NOT_COVERED = {"maxpool": "max pooling", "batchnorm": "BatchNorm"}
_MERGES = {"avgpool": "average pools", "sum": "residual sums", "sumrelu": "residual sums"}
#: what an exact claim rests on (THEORY.md section 4c)
EXACT_BASIS = "exact for real networks: symmetric weights, zero biases, no deterministic merge of ReLU paths"


def _reason_outside(out: OutputAnalysis) -> str:
    names = [r for k, r in _NOT_COVERED.items() if k in out.node_kinds]
    if names:
        return f"outside (H): {' and '.join(names)}; no theorem covers it"
    return out.grad_sq_reason or "outside (H): no annealed value; no theorem covers it"


def claim_kind(out: OutputAnalysis) -> str:
    """``'exact'``, ``'excess'`` or ``'not-covered'``: what the annealed value is for real networks.

    Without an annealed value: not covered.  With ReLU nodes and deterministic merges (average
    pools, sums) on the paths: the gates of merging paths are correlated, so real networks exceed
    the annealed value (excess).  Otherwise the annealed value is exact (THEORY.md section 4c).
    """
    if out.grad_sq is None:
        return "not-covered"
    if "relu" in out.node_kinds and out.node_kinds & set(_MERGES):
        return "excess"
    return "exact"


def _merge_cause(out: OutputAnalysis) -> str:
    names = " and ".join(dict.fromkeys(r for k, r in _MERGES.items() if k in out.node_kinds))
    cause = (f"{names} merge paths through deterministic weights after ReLUs: the gates of merging paths are "
             f"correlated in real networks (H1 fails there; THEORY.md 4b), so the annealed value is not exact")
    if "sumrelu" in out.node_kinds:
        cause += ("; a ReLU after a residual sum whose shortcut carries a post-ReLU (nonnegative) signal is active "
                  "more than half the time, above the annealed gate 1/2, and this compounds block by block")
    if not out.h5_holds:
        cause += "; H5 fails (a node has several deterministic out-edges): the annealed value includes their cross terms"
    return cause


def _per_network_claims(label: str, out: OutputAnalysis, m, index: int, groups: np.ndarray, group_labels: list[str],
                        settings: VerifySettings, seed: int, **fields) -> tuple[list[Claim], MeanInterval]:
    """Claims on E||grad f||^2 and its per-coordinate map for the measured output ``index``, and the interval of the total."""
    values = m.per_net["grad_logit_l2_sq"][:, index]
    ci = mean_interval(values, settings.confidence, seed=seed)
    d = m.d
    name = f"grad_sq_total[{label}]"
    fields = dict(statistic="grad_logit_l2_sq", d=d, **fields)
    kind = claim_kind(out)
    if kind == "not-covered":
        return [not_covered_claim(name, f"E||grad f||^2 at d={d} (measured only)",
                                  f"measured {ci.mean:.5g} ± {ci.stderr:.2g}; {_reason_outside(out)}",
                                  estimate=ci.mean, stderr=ci.stderr, **fields)], ci
    pred = float(out.grad_sq_total)  # type: ignore[arg-type]
    source = "He init: 2/prod a_i" if out.theorem_holds else "exact per-edge variances"
    if kind == "excess":
        statement = (f"E||grad f||^2 at d={d} is within {percent(settings.excess_tolerance)} of the annealed value "
                     f"{pred:.6g} ({source})")
        return _short_is_inconclusive(m, [excess_claim(
            name, statement, predicted=pred, values=values, tolerance=settings.excess_tolerance,
            cause=_merge_cause(out), confidence=settings.confidence, seed=seed, **fields)]), ci
    statement = f"E||grad f||^2 at d={d} equals the annealed prediction {pred:.6g} ({source}; {EXACT_BASIS})"
    claims = [exact_claim(name, statement, predicted=pred, values=values, confidence=settings.confidence,
                          detectable=settings.detectable, power=settings.power, seed=seed, **fields)]
    if len(group_labels) > 1:
        claims.append(_map_claim(label, out, m, index, groups, group_labels, settings, seed, fields))
    return _short_is_inconclusive(m, claims), ci


def _short_is_inconclusive(m, claims: list[Claim]) -> list[Claim]:
    """A pass needs the precision the run asked for: short of its ``rel_se`` target it is inconclusive."""
    if not m.short:
        return claims
    note = (f"; sampling stopped short of the requested precision (relative SE {m.rel_se_reached:.2%} from the calibrated interval > "
            f"{m.rel_se:.2%}), so it cannot pass")
    return [replace(c, verdict="inconclusive", detail=c.detail + note) if c.verdict == "pass" else c for c in claims]


def _map_claim(label: str, out: OutputAnalysis, m, index: int, groups: np.ndarray, group_labels: list[str],
               settings: VerifySettings, seed: int, fields: dict) -> Claim:
    """The per-coordinate map on groups of coordinates, Bonferroni over the groups."""
    pred_map = out.grad_sq.to_numpy()  # type: ignore[union-attr]
    pred_groups = np.bincount(groups, weights=pred_map, minlength=len(group_labels))
    conf = 1 - (1 - settings.confidence) / len(group_labels)
    sums = m.group_sums[:, index, :]
    parts = [exact_claim("", "", predicted=float(pred_groups[i]), values=sums[:, i], confidence=conf,
                         detectable=settings.map_detectable, power=settings.power, seed=seed + i)
             for i in range(len(group_labels))]
    verdict = combine_verdicts([p.verdict for p in parts])
    worst = max(range(len(parts)), key=lambda i: abs(parts[i].estimate / parts[i].predicted - 1))
    detail = "; ".join(f"{lab}: {p.estimate / p.predicted - 1:+.1%} ± {p.stderr / p.predicted:.1%} ({p.verdict})"
                       for lab, p in zip(group_labels, parts))
    p_value = min(1.0, len(parts) * min(p.p_value for p in parts))  # type: ignore[type-var]
    w = parts[worst]
    return Claim(name=f"grad_sq_map[{label}]", kind="exact", verdict=verdict,
                 statement=f"the per-coordinate map E(df/dx_i)^2 at d={m.d} matches the exact one on {len(parts)} "
                           f"coordinate groups ({EXACT_BASIS})",
                 predicted=w.predicted, estimate=w.estimate, stderr=w.stderr, ci_low=w.ci_low, ci_high=w.ci_high,
                 detectable=settings.map_detectable, confidence=settings.confidence, detail=detail, n_nets=m.n_nets,
                 p_value=p_value, interval=w.interval, **{**fields, "statistic": "grad_logit_sq_map"})


def _precision_warnings(label: str, m) -> list[str]:
    if not m.short:
        return []
    why = "the network cap (--max-nets)" if m.stopped == "max_nets" else "the time budget (--max-time)"
    return [f"{label}: stopped at {why} after {m.n_nets} networks with a relative standard error of "
            f"{m.rel_se_reached:.2%} (from the calibrated interval), short of the target {m.rel_se:.2%}"]


def _measure_rows(m, px: int | None, pool: int | None, predicted_total: float | None,
                  infinite: float | None = None) -> pd.DataFrame:
    frame = m.to_frame()
    frame["px"] = px
    frame["predicted"] = [predicted_total if s == "grad_logit_l2_sq" else None for s in frame["statistic"]]
    if infinite is not None:
        frame["predicted_infinite_width"] = [infinite if s == "grad_logit_l2_sq" else None for s in frame["statistic"]]
    if pool is not None:
        frame["pool"] = pool
    return frame


def verify_family(name: str, dims: Sequence[int], *, pools: Sequence[int] = (1,), family_options: dict | None = None,
                  options=None, literal_h1: bool = False, settings: VerifySettings | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  measurer: Callable | None = None, widths: Sequence[int] | None = None) -> Verification:
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
    measurer : callable, optional
        Replaces :func:`initstats.empirical.measure.measure` (same signature), called once per
        network in the order of :func:`family_grid`: a sweep (:mod:`initstats.sweep`) passes one
        that returns measurements assembled from its store.
    widths : sequence of int, optional
        Two or more widths (``channels``, or ``width`` for ``fc``): each network is also measured at
        each of them and its deviation from the infinite-width value fitted against ``1/width``
        (:func:`initstats.width_trend.width_trend`, with ``settings.infinite_width`` inputs, 8 if
        0): claims ``width_trend:*`` and :meth:`Verification.width_frame`.

    Returns
    -------
    Verification

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> res = verify_family("fc", [4, 8], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=200, seed=0, device="cpu"))
    >>> sorted({c.kind for c in res.claims}), res.labels
    (['exact', 'scaling'], ('px=4', 'px=8'))
    >>> totals = res.rows.query("statistic == 'grad_logit_l2_sq'")
    >>> print(totals[["px", "d", "n_nets", "predicted"]].to_string(index=False))
     px   d  n_nets  predicted
      4  48     200        2.0
      8 192     200        2.0
    >>> res.verdict in ("pass", "inconclusive"), res.failed      # 200 networks decide little, but nothing fails
    (True, False)
    """
    from .empirical.measure import MeasureOptions

    opt = options or MeasureOptions()
    settings = settings or VerifySettings()
    grid = family_grid(name, dims, pools=pools, family_options=family_options, literal_h1=literal_h1)
    key = "width" if name == "fc" else "channels"
    if widths is not None:
        check_widths(widths)
        if key not in family_options_of(name):
            raise OptionError(f"widths: family {name!r} has no width option ('channels' or 'width')")

    def trend_at(label: str, px: int, a: int) -> object:
        def make(c: int) -> Arch:
            return family_grid(name, [px], pools=[a], family_options={**(family_options or {}), key: c},
                               literal_h1=literal_h1)[0][2]
        return width_trend(make, list(widths or ()), options=opt, confidence=settings.confidence,
                           n_inputs=settings.infinite_width or 8, name=label)
    return _verify_grid(grid, list(dims), list(pools), opt, settings, progress, measurer=measurer,
                        trends=trend_at if widths is not None else None)


def verify_archs(archs: Sequence[Arch], *, options=None, settings: VerifySettings | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 measurer: Callable | None = None) -> Verification:
    """Verify the claims on given specs, one per input size: a user model's, say.

    Sizes are the specs' ``px`` (``d`` for specs without spatial axes); two or more add the
    scaling claims.  Claims, rows and verdicts are those of :func:`verify_family`; ``measurer``
    as there (called once per spec, in order).

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.empirical.modules import module_archs
    >>> res = verify_archs(module_archs("tests/models.py:vgg_like", [8, 16]),
    ...                    options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> res.labels, sorted({c.kind for c in res.claims}), res.verdict      # max pooling: measured only
    (('px=8', 'px=16'), ['not-covered'], 'not-covered')
    """
    from .empirical.measure import MeasureOptions

    if not archs:
        raise OptionError("give at least one spec")
    sizes = [a.px if a.px is not None else a.d for a in archs]
    if len(set(sizes)) != len(sizes):
        raise OptionError(f"the specs' input sizes {sizes} must not repeat")
    grid = [(size, 1, arch) for size, arch in zip(sizes, archs)]
    return _verify_grid(grid, sizes, [1], options or MeasureOptions(), settings or VerifySettings(), progress,
                        size_name="px" if all(a.px is not None for a in archs) else "d", measurer=measurer)


def verify_module(source, dims: Sequence[int] | None = None, *, input_shape: tuple[int, ...] | None = None,
                  options=None, settings: VerifySettings | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  measurer: Callable | None = None) -> Verification:
    """:func:`verify_archs` on a PyTorch model: ``"SRC:FACTORY"``, a factory or an ``nn.Module``
    (traced per size by :func:`initstats.empirical.modules.module_archs`).

    Examples
    --------
    >>> from torch import nn
    >>> from initstats.empirical.measure import MeasureOptions
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    >>> res = verify_module(model, options=MeasureOptions(nets=300, seed=0, device="cpu"))
    >>> [(c.name, c.kind, c.predicted) for c in res.claims][:1]
    [('grad_sq_total[d=10]', 'exact', 2.0)]
    """
    from .empirical.modules import module_archs

    return verify_archs(module_archs(source, dims, input_shape=input_shape), options=options, settings=settings,
                        progress=progress, measurer=measurer)


def _verify_grid(grid: list[tuple[int, int, Arch]], dims: list[int], pools: list[int], opt, settings: VerifySettings,
                 progress: Callable[[str, int, int], None] | None, size_name: str = "px",
                 measurer: Callable | None = None, trends: Callable | None = None) -> Verification:
    """Measure, predict and test every ``(size, pool, spec)`` of ``grid``; then the claims across sizes
    (and, with ``trends(label, px, pool)``, the width trend of each)."""
    from .empirical.measure import measure

    measure = measurer or measure
    var_scale = Fraction(1) if opt.init == "he" else Fraction(1, 2)
    rows, claims, measurements, analyses, run_labels, warnings = [], [], [], [], [], []
    points: dict[int, list[ScalingPoint]] = {}
    budget = _Budget(opt.max_time, len(grid))
    for px, a, arch in grid:
        exact = analyse(arch, var_scale=var_scale)
        if settings.infinite_width:
            exact = with_infinite_width(exact, arch, n_inputs=settings.infinite_width, seed=opt.seed, init=opt.init)
        out = exact.outputs[0]
        groups, labels = border_rings(arch.input_shape)
        label = f"{size_name}={px}" + (f",pool={a}" if len(pools) > 1 else "")
        cb = (lambda done, total, _l=label: progress(_l, done, total)) if progress else None
        m = measure(arch, budget.options(opt), progress=cb, coord_groups=groups)
        budget.spent(m.seconds)
        new, ci = _per_network_claims(label, out, m, 0, groups, labels, settings, opt.seed,
                                      pool=a if len(pools) > 1 else None)
        claims += new
        if claim_kind(out) == "excess":
            iw = infinite_width_claim(label, out, m.per_net["grad_logit_l2_sq"][:, 0], confidence=settings.confidence,
                                      detectable=settings.detectable, power=settings.power,
                                      tolerance=settings.excess_tolerance, seed=opt.seed,
                                      pool=a if len(pools) > 1 else None)
            claims += _short_is_inconclusive(m, [iw]) if iw is not None else []
        warnings += _precision_warnings(label, m)
        rows.append(_measure_rows(m, arch.px, a if len(pools) > 1 else None,
                                  None if out.grad_sq_total is None else float(out.grad_sq_total),
                                  out.grad_sq_infinite_width))
        points.setdefault(a, []).append(ScalingPoint(d=m.d, measurement=m, grad_sq=ci, kind=claim_kind(out),
                                                     exact_map=None if out.grad_sq is None else out.grad_sq.to_numpy()))
        measurements.append(m)
        analyses.append(exact)
        run_labels.append(label)
    if len(dims) >= 2:
        first = points[pools[0]]
        reasons = sorted({_reason_outside(x.outputs[0]) for x, (_, a, _) in zip(analyses, grid)
                          if a == pools[0] and x.outputs[0].grad_sq is None})
        claims += scaling_claims(first, confidence=settings.confidence, detectable=settings.detectable_exponent,
                                 power=settings.power, bridge_tolerance=settings.bridge_tolerance,
                                 exponent_tolerance=settings.exponent_tolerance, reason="; ".join(reasons))
    if len(pools) >= 2:
        claims += _pool_claims(dims, pools, grid, measurements, analyses, settings)
    width_trends = [trends(label, px, a) for label, (px, a, _) in zip(run_labels, grid)] if trends else []
    claims += [c for t in width_trends for c in (t.claim, t.annealed_claim) if c is not None]
    if settings.holm:
        claims = list(holm(claims, settings.confidence))
    return Verification(rows=pd.concat(rows, ignore_index=True), claims=tuple(claims), measurements=tuple(measurements),
                        analyses=tuple(analyses), labels=tuple(run_labels), warnings=tuple(warnings),
                        width_trends=tuple(width_trends))


class _Budget:
    """Splits a run's time budget (``max_time``) over its measurements, carrying unused time forward."""

    def __init__(self, total: float | None, runs: int) -> None:
        self.left, self.runs = total, runs

    def options(self, opt):
        if self.left is None:
            return opt
        return replace(opt, max_time=max(self.left / max(self.runs, 1), 1e-3))

    def spent(self, seconds: float) -> None:
        self.runs -= 1
        if self.left is not None:
            self.left = max(self.left - seconds, 0.0)


def _pool_claims(dims, pools, grid, measurements, analyses, settings: VerifySettings) -> list[Claim]:
    """Theorems 7/11: E||grad f||^2 ~ 1/a in the average-pooling degree a, per input size."""
    claims = []
    for i, px in enumerate(dims):
        idx = range(i * len(pools), (i + 1) * len(pools))
        outs = [analyses[j].outputs[0] for j in idx]
        degrees = [a ** (len(grid[i * len(pools)][2].input_shape) - 1) for a in pools]
        stat = [measurements[j].mean_se("grad_logit_l2_sq") for j in idx]
        statement = f"E||grad f||^2 at {px} px decays like 1/a in the average-pooling degree a (Theorems 7, 11)"
        name = f"scaling:pool[px={px}]"
        if all(o.theorem_total is not None for o in outs):
            claims.append(scaling_claim(name, statement, degrees, [s[0] for s in stat], [s[1] for s in stat], -1.0,
                                        tolerance=settings.exponent_tolerance, confidence=settings.confidence,
                                        statistic="grad_logit_l2_sq", d=measurements[idx[0]].d))
        else:
            why = sorted({_reason_outside(o) if o.grad_sq is None else "no theorem value (paths cross different "
                          "pooling degrees, residual sums, hidden linear nodes or H5 fails)" for o in outs
                          if o.theorem_total is None})
            claims.append(not_covered_claim(name, statement, "; ".join(why), statistic="grad_logit_l2_sq",
                                            d=measurements[idx[0]].d))
    return claims


def verify_graph(g: nx.DiGraph, *, options=None, settings: VerifySettings | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 measurer: Callable | None = None) -> Verification:
    """Verify the exact prediction on the real networks of a node-link DAG, output by output.

    ``measurer`` replaces :func:`initstats.empirical.measure.measure`, as in :func:`verify_family`.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.graph.io import from_node_link
    >>> g = from_node_link({"nodes": [{"id": "x0", "kind": "input"}, {"id": "x1", "kind": "input"},
    ...                               {"id": "h", "kind": "relu"}, {"id": "y", "kind": "linear"}],
    ...                     "links": [{"source": "x0", "target": "h"}, {"source": "x1", "target": "h"},
    ...                               {"source": "h", "target": "y"}]})
    >>> res = verify_graph(g, options=MeasureOptions(nets=500, seed=0, device="cpu"))
    >>> [(c.name, c.kind, c.predicted) for c in res.claims]
    [('grad_sq_total[output=y]', 'exact', 2.0)]
    >>> res.failed
    False
    """
    from .empirical.measure import MeasureOptions, measure

    settings = settings or VerifySettings()
    opt = options or MeasureOptions()
    var_scale = Fraction(1) if opt.init == "he" else Fraction(1, 2)
    exact = analyse(g, var_scale=var_scale)
    groups, labels = graph_groups(exact)
    cb = (lambda done, total: progress("graph", done, total)) if progress else None
    m = (measurer or measure)(g, opt, progress=cb, coord_groups=groups)
    claims: list[Claim] = []
    by_name = {o.name: o for o in exact.outputs}
    for k, name in enumerate(m.outputs):
        out = by_name[name]
        out_groups, out_labels = (groups, labels) if k == 0 else (np.zeros(exact.d, dtype=np.int64), ["all"])
        claims += _per_network_claims(f"output={name}", out, m, k, out_groups, out_labels, settings, opt.seed,
                                      output=name)[0]
    if settings.holm:
        claims = list(holm(claims, settings.confidence))
    frame = m.to_frame()
    frame["px"] = None
    totals = {o.name: (None if o.grad_sq_total is None else float(o.grad_sq_total)) for o in exact.outputs}
    frame["predicted"] = [totals.get(o) if s == "grad_logit_l2_sq" else None
                          for s, o in zip(frame["statistic"], frame["output"])]
    return Verification(rows=frame, claims=tuple(claims), measurements=(m,), analyses=(exact,), labels=("graph",),
                        warnings=tuple(_precision_warnings("graph", m)))
