"""Claims, fits and verdicts: how a measurement is compared with a prediction.

Every claim has a *kind* and a *verdict* (``pass | fail | inconclusive | not-covered``):

``exact``
    The prediction is a theorem for real networks (THEORY.md section 4c: symmetric weights, zero
    bias, no deterministic merge), so the mean over independent networks is tested against it.
    The interval is :func:`initstats.inference.mean_interval` (the normal interval widened for
    heavy right tails by a studentized bootstrap whose world extrapolates the tail); the
    p-value is the smallest level whose interval excludes the prediction.  **fail** when
    ``p < 1 - confidence``; otherwise **inconclusive** when the interval is too wide to detect a
    relative error of ``detectable`` (5 %) with probability ``power``, i.e. when
    ``max half-width * (1 + z_power / z) > detectable * |mean|``; otherwise **pass**.  The verdict
    is monotone in the size of the error: moving the prediction away from the mean can only
    turn pass into inconclusive into fail (``inconclusive`` does not depend on the prediction).
``excess``
    With deterministic merges (average pooling, residual sums) the gates of paths that merge again
    are correlated in real networks, so the real ``E||grad f||^2`` exceeds the annealed value
    (section 4b).  The relative excess ``mean / annealed - 1`` with its interval is tested for
    equivalence within ``tolerance``: **pass** when the interval lies inside
    ``[-tolerance, tolerance]``, **fail** when it lies outside, else **inconclusive**.  It counts
    in the run's verdict like any other claim.
``scaling``
    A weighted least-squares fit of ``log(mean)`` on ``log(x)`` gives an exponent with an interval.
    Against an exponent the exact engine implies (``tolerance=None``) the test is two-sided and
    can fail on any error it can detect (inconclusive when the interval could not detect an
    exponent error of ``detectable``); against an asymptotic exponent (``tolerance`` given) it is
    an equivalence test within the tolerance.
``not-covered``
    Max pooling and BatchNorm lie outside (H): the measurement is reported, no theorem is tested.

:func:`holm` adjusts the p-values of the claims of one run (Holm's step-down) and turns a claim
that fails only at the per-claim level into ``inconclusive``: a correct implementation then fails
one of the run's *point tests* (exact claims, exact-reference scaling claims) with probability at
most ``1 - confidence``, however many it tests.  Equivalence tests (excess claims, bridge and
pooling exponents) have no p-value and are not part of that guarantee.

This module is pure arithmetic (numpy, scipy); it imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.stats import norm

from ._format import percent, signed
from .inference import MeanInterval, mean_interval, normal_interval, z_value
from .inference import holm as holm_p_values

__all__ = ["SCALING_LAWS", "VERDICTS", "KINDS", "Claim", "Fit", "exact_claim", "excess_claim", "approximate_claim",
           "scaling_claim", "not_covered_claim", "loglog_fit", "combine_verdicts", "z_value", "holm"]

#: statistic -> (predicted exponent in d, divide by sqrt(2 ln d) first?, statement)
SCALING_LAWS: dict[str, tuple[float, bool, str]] = {
    "grad_logit_l2": (0.0, False, "||grad f_k||_2 is independent of d (Theorems 4, 5; Corollary 6)"),
    "grad_logit_l1": (0.5, False, "||grad f_k||_1 grows like d^(1/2) (Theorem 5)"),
    "grad_loss_l1": (0.5, False, "||grad L||_1 grows like d^(1/2) (eq. 7, q = 1)"),
    "grad_loss_linf": (-0.5, True, "||grad L||_inf / sqrt(2 ln d) decays like d^(-1/2) (eq. 7, q = inf)"),
    "damage_l1": (0.5, False, "first-order l_inf damage eps*||grad L||_1 grows like d^(1/2) (eq. 3, 7)"),
}

VERDICTS = ("pass", "fail", "inconclusive", "not-covered")
KINDS = ("exact", "excess", "scaling", "not-covered")


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One tested statement and its verdict.

    ``estimate``/``ci_low``/``ci_high`` are on the scale of ``predicted`` (a value for exact
    claims, a relative excess for excess claims, an exponent for scaling ones).  ``statistic``,
    ``d``, ``output`` and ``pool`` say what was measured; ``p_value`` is the per-claim p-value
    (None for equivalence tests) and ``p_adjusted`` its Holm-adjusted value over the run.
    ``tolerance`` is the band of an equivalence test (excess claims, exponents against asymptotic
    laws), None for point tests; ``detectable`` is the error a point test must be able to detect
    (relative for exact claims, an exponent error for scaling ones), None for equivalence tests.
    ``name`` is the claim's name (``"claim"`` in :meth:`to_dict`, JSON and CSV).

    Examples
    --------
    >>> c = Claim(name="grad_sq_total[px=32]", kind="exact", verdict="pass", statement="E||grad f||^2 = 2",
    ...           predicted=2.0, estimate=2.01, stderr=0.01)
    >>> c.to_dict()["claim"], c.to_dict()["verdict"]
    ('grad_sq_total[px=32]', 'pass')
    >>> Claim(name="c", kind="exact", verdict="ok", statement="")
    Traceback (most recent call last):
        ...
    ValueError: unknown verdict 'ok'
    """

    name: str
    kind: str
    verdict: str
    statement: str
    predicted: float | None = None
    estimate: float | None = None
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    tolerance: float | None = None
    detectable: float | None = None
    confidence: float | None = None
    d: int | None = None
    detail: str = ""
    statistic: str | None = None
    output: str | None = None
    pool: int | None = None
    n_nets: int | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    interval: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown claim kind {self.kind!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def to_dict(self) -> dict:
        """The fields as a dict, the name under ``"claim"`` (the key of the JSON and CSV outputs)."""
        fields = asdict(self)
        return {"claim": fields.pop("name"), **fields}


def _interval(mean: float | None, se: float | None, values, confidence: float, seed: int) -> MeanInterval:
    if values is not None:
        return mean_interval(values, confidence, seed=seed)
    if mean is None or se is None:
        raise ValueError("give either values or mean and se")
    return normal_interval(mean, se, confidence)


def exact_claim(name: str, statement: str, mean: float | None = None, se: float | None = None,
                predicted: float = math.nan, *, values: Sequence[float] | np.ndarray | None = None,
                confidence: float = 0.99, detectable: float = 0.05, power: float = 0.8, d: int | None = None,
                n: int | None = None, min_n: int = 30, seed: int = 0, predicted_se: float | None = None,
                **fields) -> Claim:
    """Two-sided test of ``E[X] = predicted`` (see the module docstring).

    Give the per-network ``values`` for the interval calibrated under heavy tails; with only
    ``mean`` and ``se`` the normal interval is used.  Fewer than ``min_n`` networks give no
    pass/fail verdict (unless every network gave the same value).  ``predicted_se``: the standard
    error of a prediction that was itself estimated (independent of the networks); the test then
    compares the difference with both errors combined (:func:`_with_prediction_error`).  Extra
    keyword ``fields`` (``statistic``, ``output``, ``pool``) are stored on the claim.

    Examples
    --------
    >>> exact_claim("total", "E||grad f||^2 = 2", 2.01, 0.02, 2.0).verdict
    'pass'
    >>> exact_claim("total", "E||grad f||^2 = 2", 2.20, 0.02, 2.0).verdict
    'fail'
    """
    ci = _interval(mean, se, values, confidence, seed)
    n = ci.n if ci.n >= 0 else n
    mean, se = ci.mean, ci.stderr
    rel = mean / predicted - 1 if predicted else math.nan
    p, (lo_w, hi_w) = _with_prediction_error(ci, predicted, predicted_se, confidence)
    z = z_value(confidence)
    if predicted_se:
        ci = replace(ci, low=mean - lo_w, high=mean + hi_w)
    if not math.isfinite(se) or (n is not None and n < min_n and se > 0):
        verdict = "inconclusive"
        why = f"only {n} networks: too few for an interval (need {min_n})" if math.isfinite(se) \
            else "too few networks for a standard error"
    elif p < 1 - confidence:
        verdict = "fail"
        why = (f"measured {mean:.5g} ± {se:.2g} differs from {predicted:.5g} by {rel:+.2%} "
               f"({abs(mean - predicted) / se if se > 0 else math.inf:.1f} standard errors; p = {p:.2g})")
    elif max(lo_w, hi_w) * (1 + float(norm.ppf(power)) / z) > detectable * abs(mean) or not math.isfinite(hi_w):
        verdict = "inconclusive"
        why = (f"consistent ({rel:+.2%}), but the {percent(confidence)} interval {ci.low:.4g} .. {ci.high:.4g} is too wide "
               f"to detect a {percent(detectable)} error with {percent(power)} power; draw more networks")
    else:
        verdict = "pass"
        why = (f"measured {mean:.5g} ± {se:.2g}, {rel:+.2%} from the prediction, inside the {percent(confidence)} "
               f"interval {ci.low:.5g} .. {ci.high:.5g}")
    if ci.method == "tail-bootstrap" and ci.tail_index is not None and ci.high - mean > 1.2 * z * se:
        why += f" (right tail of index {ci.tail_index:.2g}: the interval is widened above the mean)"
    elif ci.method == "too-heavy":
        why += f" (right tail of index {ci.tail_index:.2g}: the mean has no upper bound from these networks)"
    if predicted_se:
        why += f"; the interval includes the prediction's own standard error {predicted_se:.2g}"
    return Claim(name=name, kind="exact", verdict=verdict, statement=statement, predicted=predicted, estimate=mean,
                 stderr=se, ci_low=ci.low, ci_high=ci.high, detectable=detectable, confidence=confidence, d=d,
                 detail=why, n_nets=n, p_value=p, interval=ci.method, **fields)


def _with_prediction_error(ci: MeanInterval, predicted: float, predicted_se: float | None,
                           confidence: float) -> tuple[float, tuple[float, float]]:
    """The p-value of ``E[X] = predicted`` and the interval's half widths, with an estimated
    prediction's independent standard error ``predicted_se`` added in quadrature: the deviation is
    scaled by ``se / sqrt(se^2 + predicted_se^2)`` before the interval's own test (exact for the
    normal interval), and each half width becomes ``sqrt(w^2 + (z predicted_se)^2)``."""
    lo_w, hi_w = ci.half_widths()
    if not predicted_se or not math.isfinite(ci.stderr):
        return ci.p_value(predicted), (lo_w, hi_w)
    z = z_value(confidence)
    shrink = ci.stderr / math.hypot(ci.stderr, predicted_se)
    p = ci.p_value(ci.mean - (ci.mean - predicted) * shrink)
    return p, (math.hypot(lo_w, z * predicted_se), math.hypot(hi_w, z * predicted_se))


def _equivalence(lo: float, hi: float, centre: float, tolerance: float) -> str:
    if centre - tolerance <= lo and hi <= centre + tolerance:
        return "pass"
    if hi < centre - tolerance or lo > centre + tolerance:
        return "fail"
    return "inconclusive"


def excess_claim(name: str, statement: str, mean: float | None = None, se: float | None = None,
                 predicted: float = math.nan, *, values: Sequence[float] | np.ndarray | None = None,
                 tolerance: float = 0.1, cause: str = "deterministic merges", confidence: float = 0.99,
                 d: int | None = None, seed: int = 0, predicted_se: float | None = None, reference: str = "annealed",
                 **fields) -> Claim:
    """The excess ``mean / predicted - 1`` over an annealed value, tested for equivalence within ``tolerance``.

    ``cause`` names why the annealed value is not exact for real networks (it goes into the detail).
    ``predicted_se``: the standard error of an estimated ``predicted``, added to the interval in
    quadrature (as in :func:`exact_claim`); ``reference`` names ``predicted`` in the detail.

    Examples
    --------
    >>> c = excess_claim("pooled", "within 10 %", 0.0322, 0.0002, 0.03125)
    >>> c.kind, c.verdict, round(c.estimate, 4)
    ('excess', 'pass', 0.0304)
    """
    if tolerance is None or not tolerance > 0:
        raise ValueError(f"tolerance={tolerance!r}: an excess claim needs a positive tolerance")
    ci = _interval(mean, se, values, confidence, seed)
    _, (lo_w, hi_w) = _with_prediction_error(ci, predicted, predicted_se, confidence)
    excess, excess_se = ci.mean / predicted - 1, ci.stderr / abs(predicted)
    lo, hi = (ci.mean - lo_w) / predicted - 1, (ci.mean + hi_w) / predicted - 1
    verdict = _equivalence(lo, hi, 0.0, tolerance)
    why = (f"measured/{reference} - 1 = {excess:+.2%} (CI {lo:+.2%} .. {hi:+.2%}), tested against ±{percent(tolerance)}; "
           f"{cause}")
    if predicted_se:
        why += f"; the interval includes the prediction's own standard error {predicted_se:.2g}"
    return Claim(name=name, kind="excess", verdict=verdict, statement=statement, predicted=0.0, estimate=excess,
                 stderr=excess_se, ci_low=lo, ci_high=hi, tolerance=tolerance, confidence=confidence, d=d,
                 detail=why, n_nets=ci.n if ci.n >= 0 else None, interval=ci.method, **fields)


def approximate_claim(name: str, statement: str, mean: float, se: float, predicted: float, *,
                      tolerance: float | None = None, confidence: float = 0.99, d: int | None = None) -> Claim:
    """Deprecated name of :func:`excess_claim` (a missing tolerance means 10 %).

    Examples
    --------
    >>> c = approximate_claim("pooled", "within 10 % of the annealed value", 0.0322, 0.0002, 0.03125)
    >>> c.kind, c.tolerance, c.verdict
    ('excess', 0.1, 'pass')
    """
    return excess_claim(name, statement, mean, se, predicted, tolerance=0.1 if tolerance is None else tolerance,
                        confidence=confidence, d=d)


@dataclass(frozen=True)
class Fit:
    """A log-log fit ``log y = intercept + exponent * log x``.

    Examples
    --------
    >>> fit = loglog_fit([1, 2, 4], [3.0, 6.0, 12.0], [0.03, 0.06, 0.12])
    >>> isinstance(fit, Fit), round(fit.exponent, 6), round(math.exp(fit.intercept), 6), fit.dof
    (True, 1.0, 3.0, 1)
    """

    exponent: float
    stderr: float
    intercept: float
    chi2: float
    dof: int
    birge: float


def loglog_fit(x: Sequence[float], mean: Sequence[float], se: Sequence[float]) -> Fit:
    """Weighted least squares of ``log(mean)`` on ``log(x)`` with ``var(log mean) = (se/mean)^2``.

    The exponent's standard error comes from the known errors, multiplied by the Birge ratio
    ``sqrt(chi2/dof)`` when that exceeds 1 (points scattering beyond their errors, e.g. curvature).

    Examples
    --------
    >>> d = [768, 3072, 12288]
    >>> fit = loglog_fit(d, [v ** 0.5 for v in d], [0.01 * v ** 0.5 for v in d])   # ||grad||_1 ~ d^(1/2)
    >>> round(fit.exponent, 6), fit.dof, fit.stderr < 0.01
    (0.5, 1, True)
    """
    x_, m, s = (np.asarray(v, dtype=float) for v in (x, mean, se))
    if len(x_) < 2 or len(np.unique(x_)) < 2:
        raise ValueError("a log-log fit needs at least two distinct x values")
    if np.any(m <= 0):
        raise ValueError("a log-log fit needs positive means")
    y = np.log(m)
    if not np.all(np.isfinite(s)):  # a point without a standard error (one network): the exponent's error is unknown
        slope, intercept = np.polyfit(np.log(x_), y, 1)
        return Fit(float(slope), math.inf, float(intercept), math.nan, len(x_) - 2, math.nan)
    sigma = np.maximum(s / m, 1e-12)
    w = 1.0 / sigma ** 2
    a = np.column_stack([np.ones_like(x_), np.log(x_)])
    cov = np.linalg.inv(a.T @ (a * w[:, None]))
    beta = cov @ (a.T @ (w * y))
    resid = y - a @ beta
    chi2 = float(np.sum(w * resid ** 2))
    dof = len(x_) - 2
    birge = math.sqrt(chi2 / dof) if dof > 0 else 1.0
    return Fit(float(beta[1]), float(math.sqrt(cov[1, 1]) * max(1.0, birge)), float(beta[0]), chi2, dof, birge)


def scaling_claim(name: str, statement: str, x: Sequence[float], mean: Sequence[float], se: Sequence[float],
                  exponent: float, *, tolerance: float | None = 0.1, detectable: float = 0.05, power: float = 0.8,
                  confidence: float = 0.99, **fields) -> Claim:
    """Fitted exponent against a predicted one.

    With ``tolerance=None`` the predicted exponent is exact (implied by exact finite-d values): the
    claim fails when it lies outside the interval, and is inconclusive when the interval could not
    detect an exponent error of ``detectable`` with ``power``.  With a ``tolerance`` (asymptotic
    exponents) it is an equivalence test: pass inside ``exponent +- tolerance``, fail outside.

    Examples
    --------
    >>> x = [768, 3072, 12288]
    >>> scaling_claim("l2", "d^0", x, [2.0, 2.0, 2.0], [0.02, 0.02, 0.02], 0.0, tolerance=None).verdict
    'pass'
    >>> scaling_claim("l2", "d^0", x, [2.0 * v ** 0.05 for v in x], [0.02, 0.02, 0.02], 0.0, tolerance=None).verdict
    'fail'
    """
    fit = loglog_fit(x, mean, se)
    z = z_value(confidence)
    lo, hi = fit.exponent - z * fit.stderr, fit.exponent + z * fit.stderr
    scatter = f"; points scatter {fit.birge:.1f}x their errors" if fit.birge > 1.5 else ""
    p_value = None
    if tolerance is None:
        p_value = 2 * float(norm.sf(abs(fit.exponent - exponent) / fit.stderr)) if fit.stderr > 0 else \
            float(fit.exponent != exponent)
        if not math.isfinite(fit.stderr):
            verdict, p_value = "inconclusive", 1.0
        elif p_value < 1 - confidence:
            verdict = "fail"
        elif z * fit.stderr * (1 + float(norm.ppf(power)) / z) > detectable:
            verdict = "inconclusive"
        else:
            verdict = "pass"
        why = (f"fitted exponent {fit.exponent:+.4f} ± {fit.stderr:.4f} (CI {lo:+.4f} .. {hi:+.4f}) over {len(x)} "
               f"points, exact exponent {signed(exponent)}" + scatter)
        if verdict == "inconclusive" and math.isfinite(fit.stderr):
            why += f"; the interval cannot detect an exponent error of {detectable:g}"
        bounds = dict(detectable=detectable)
    else:
        verdict = _equivalence(lo, hi, exponent, tolerance)
        why = (f"fitted exponent {fit.exponent:+.3f} ± {fit.stderr:.3f} (CI {lo:+.3f} .. {hi:+.3f}) over {len(x)} "
               f"points, predicted {signed(exponent, 3)} ± {tolerance:.3g}" + scatter)
        bounds = dict(tolerance=tolerance)
    if verdict == "inconclusive" and len(x) < 3:
        why += "; give more dimensions"
    return Claim(name=name, kind="scaling", verdict=verdict, statement=statement, predicted=exponent,
                 estimate=fit.exponent, stderr=fit.stderr, ci_low=lo, ci_high=hi, **bounds,
                 confidence=confidence, detail=why, p_value=p_value, **fields)


def not_covered_claim(name: str, statement: str, reason: str, *, estimate: float | None = None,
                      stderr: float | None = None, d: int | None = None, **fields) -> Claim:
    """A measurement outside the theory's hypotheses: reported, not tested.

    Examples
    --------
    >>> c = not_covered_claim("grad_sq_total[px=32]", "E||grad f||^2 at d=3072 (measured only)",
    ...                       "outside (H): max pooling; no theorem covers it", estimate=0.41, stderr=0.01)
    >>> c.kind, c.verdict, c.p_value
    ('not-covered', 'not-covered', None)
    >>> combine_verdicts(["pass", c.verdict])      # reported, but it does not count in the run's verdict
    'pass'
    """
    return Claim(name=name, kind="not-covered", verdict="not-covered", statement=statement, estimate=estimate,
                 stderr=stderr, d=d, detail=reason, **fields)


def holm(claims: Sequence[Claim], confidence: float = 0.99) -> tuple[Claim, ...]:
    """Holm's step-down correction over the claims of one run that carry a p-value.

    Each such claim gets ``p_adjusted``; one that failed at its own level but not after the
    adjustment becomes ``inconclusive`` (its interval excludes the prediction, yet over this many
    claims a correct implementation would show one such miss too often).  Family-wise: a correct
    implementation fails any claim of the run with probability at most ``1 - confidence``.

    Examples
    --------
    >>> cs = [exact_claim(f"c{i}", "", 1.0 + 2.7 * 0.01, 0.01, 1.0) for i in range(3)]
    >>> [c.verdict for c in cs], [c.verdict for c in holm(cs)]
    (['fail', 'fail', 'fail'], ['inconclusive', 'inconclusive', 'inconclusive'])
    """
    tested = [i for i, c in enumerate(claims) if c.p_value is not None and c.verdict != "not-covered"]
    adjusted = holm_p_values([claims[i].p_value for i in tested])  # type: ignore[misc]
    out = list(claims)
    alpha = 1 - confidence
    for i, p_adj in zip(tested, adjusted):
        c = out[i]
        if c.verdict == "fail" and p_adj >= alpha:
            c = replace(c, verdict="inconclusive",
                        detail=c.detail + f"; not significant after Holm's correction over {len(tested)} claims "
                                          f"(adjusted p = {p_adj:.2g})")
        out[i] = replace(c, p_adjusted=p_adj)
    return tuple(out)


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """``fail`` if any fails, else ``inconclusive`` if any is, else ``pass`` (not-covered ignored).

    Examples
    --------
    >>> combine_verdicts(["pass", "inconclusive", "not-covered"])
    'inconclusive'
    >>> combine_verdicts(["pass", "fail", "inconclusive"]), combine_verdicts(["not-covered"])
    ('fail', 'not-covered')
    """
    tested = [v for v in verdicts if v != "not-covered"]
    if not tested:
        return "not-covered"
    if "fail" in tested:
        return "fail"
    if "inconclusive" in tested:
        return "inconclusive"
    return "pass"
