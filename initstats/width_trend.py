"""How real networks approach the infinite-width prediction: the deviation against 1/width.

Deeper than one hidden layer, the infinite-width (NNGP) value of ``E ||grad_x f||^2``
(:mod:`initstats.empirical.infinite_width`) is a limit: a network of width ``C`` differs from it
by a finite-width correction of order ``1/C``.  Writing the relative deviation of the measured
mean from a reference value ``r`` as

    delta(C) = mean(C) / r - 1 = alpha + beta / C + O(1/C^2),

the reference is the right limit exactly when ``alpha = 0``.  :func:`width_fit` fits ``alpha``
and ``beta`` by weighted least squares over the widths measured (weights ``1/se^2``, standard
errors over independent networks); the reference's own standard error (the infinite-width value
is averaged over sampled inputs) shifts every deviation alike, so it enters ``alpha``'s.

:func:`width_trend_claim` tests ``alpha = 0`` as a claim of kind ``scaling`` (a fit across
widths, two-sided): **fail** when ``0`` lies outside the interval (``p < 1 - confidence``);
**inconclusive** when the interval could not detect an extrapolated deviation of ``detectable``
with probability ``power`` (the rule of exact claims, :mod:`initstats.claims`), or when, with three
or more widths, the deviations do not follow ``alpha + beta / C`` (a chi-square test at the same
level); **pass** otherwise.  :func:`width_trend` measures the networks ``make(C)`` over the widths,
computes the infinite-width value once (it does not depend on ``C``) and returns the table and
the claims against the infinite-width value and, for comparison, the annealed one.

Assumptions: the networks differ only in width, and the widths are large enough for the
``1/C`` term to dominate (smaller widths add ``O(1/C^2)`` terms that bias ``alpha``; use widths of
4 and more).  Imports torch only inside :func:`width_trend`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.stats import chi2 as chi2_dist
from scipy.stats import norm

from ._format import percent
from .claims import Claim
from .errors import OptionError
from .inference import z_value

__all__ = ["WidthFit", "WidthTrend", "width_fit", "width_trend_claim", "width_trend", "check_widths"]


@dataclass(frozen=True, kw_only=True)
class WidthFit:
    """``delta(C) = intercept + slope / C`` fitted over ``widths`` (see the module docstring).

    ``chi2`` and ``dof`` (widths - 2) measure how well the deviations follow the model; with two
    widths the fit is exact (``dof = 0``).

    Examples
    --------
    >>> fit = width_fit([4, 8, 16, 32], [1.31, 1.14, 1.08, 1.04], [0.01] * 4, reference=1.0)
    >>> f"{fit.intercept:+.3f} ± {fit.intercept_se:.3f}", fit.dof, round(fit.fit_p_value, 2)
    ('-0.001 ± 0.009', 2, 0.37)
    """

    widths: tuple[int, ...]
    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    chi2: float
    dof: int

    @property
    def fit_p_value(self) -> float | None:
        """The chi-square test of the model (None with two widths)."""
        return None if self.dof < 1 else float(chi2_dist.sf(self.chi2, self.dof))


def width_fit(widths: Sequence[int], means: Sequence[float], ses: Sequence[float], reference: float,
              reference_se: float = 0.0) -> WidthFit:
    """Fit the relative deviation ``mean / reference - 1`` against ``1 / width``.

    Parameters
    ----------
    widths, means, ses
        The widths measured, the means over independent networks and their standard errors.
    reference, reference_se
        The value the means are compared with and its standard error (0 for an exact value).

    Examples
    --------
    >>> fit = width_fit([4, 8, 16], [1.30, 1.15, 1.075], [0.01, 0.01, 0.01], reference=1.0)
    >>> round(fit.intercept, 6), round(fit.slope, 6), round(fit.chi2, 9), fit.dof  # delta = 1.2 / C exactly
    (0.0, 1.2, 0.0, 1)
    """
    c = np.asarray(widths, dtype=float)
    y = np.asarray(means, dtype=float) / reference - 1
    s = np.asarray(ses, dtype=float) / abs(reference)
    if len(c) < 2 or len(set(c.tolist())) != len(c):
        raise OptionError(f"widths {list(widths)}: a fit against 1/width needs two or more distinct widths")
    if not (np.all(c > 0) and np.all(s > 0) and np.all(np.isfinite(y))):
        raise OptionError("a fit against 1/width needs positive widths and standard errors and finite means")
    x = np.column_stack([np.ones_like(c), 1 / c])
    w = 1 / s**2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    coef = cov @ (x.T @ (w * y))
    resid = (y - x @ coef) / s
    rel_ref = reference_se / abs(reference)
    intercept_se = math.sqrt(cov[0, 0] + (rel_ref * (1 + coef[0])) ** 2)
    slope_se = math.sqrt(cov[1, 1] + (rel_ref * coef[1]) ** 2)
    return WidthFit(widths=tuple(int(v) for v in widths), intercept=float(coef[0]), intercept_se=intercept_se,
                    slope=float(coef[1]), slope_se=slope_se, chi2=float(resid @ resid), dof=len(c) - 2)


def width_trend_claim(name: str, fit: WidthFit, *, reference_name: str = "the infinite-width prediction",
                      confidence: float = 0.99, detectable: float = 0.02, power: float = 0.8,
                      statistic: str = "grad_logit_l2_sq") -> Claim:
    """Test that the deviation from the reference extrapolates to 0 at infinite width (module docstring).

    Examples
    --------
    >>> good = width_fit([4, 8, 16], [1.300, 1.152, 1.074], [0.003, 0.003, 0.002], reference=1.0)
    >>> width_trend_claim("trend", good).verdict
    'pass'
    >>> wrong = width_fit([4, 8, 16], [1.300, 1.152, 1.074], [0.003, 0.003, 0.002], reference=0.95)
    >>> c = width_trend_claim("trend", wrong, reference_name="a value 5 % too low")
    >>> c.verdict, round(c.estimate, 3)                           # extrapolates to +5 %: rejected
    ('fail', 0.052)
    """
    z = z_value(confidence)
    a, se = fit.intercept, fit.intercept_se
    p = float(2 * norm.sf(abs(a) / se)) if se > 0 else (0.0 if a else 1.0)
    lo, hi = a - z * se, a + z * se
    over = f"widths {', '.join(map(str, fit.widths))}"
    est = (f"deviation {a:+.2%} ± {se:.2%} at infinite width (CI {lo:+.2%} .. {hi:+.2%}), "
           f"slope {fit.slope:+.3g} ± {fit.slope_se:.2g} per 1/width over {over}")
    fit_p = fit.fit_p_value
    if fit_p is not None and fit_p < 1 - confidence:
        verdict = "inconclusive"
        why = (f"{est}; the deviations do not follow a + b/width (chi2 = {fit.chi2:.3g} on {fit.dof} degrees of freedom, "
               f"p = {fit_p:.2g}): higher-order terms matter at these widths")
    elif p < 1 - confidence:
        verdict = "fail"
        why = f"{est}: not 0 (p = {p:.2g})"
    elif z * se * (1 + float(norm.ppf(power)) / z) > detectable:
        verdict = "inconclusive"
        why = (f"{est}: consistent with 0, but too wide to detect a {percent(detectable)} deviation with "
               f"{percent(power)} power; measure more networks or wider networks")
    else:
        verdict = "pass"
        why = f"{est}: consistent with 0"
    return Claim(name=name, kind="scaling", verdict=verdict,
                 statement=f"E||grad f||^2 tends to {reference_name} as the width grows (deviation ~ 1/width)",
                 predicted=0.0, estimate=a, stderr=se, ci_low=lo, ci_high=hi, detectable=detectable,
                 confidence=confidence, detail=why, statistic=statistic, p_value=p)


def check_widths(widths: Sequence[int]) -> list[int]:
    """``widths`` as a list, or :class:`~initstats.errors.OptionError` unless two or more distinct
    positive integers.

    Examples
    --------
    >>> check_widths((4, 16))
    [4, 16]
    >>> check_widths([4])
    Traceback (most recent call last):
        ...
    initstats.errors.OptionError: widths [4] are invalid; expected two or more distinct positive integers
    """
    widths = list(widths)
    if len(widths) < 2 or len(set(widths)) != len(widths) or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in widths):
        raise OptionError(f"widths {widths} are invalid; expected two or more distinct positive integers")
    return [int(c) for c in widths]


@dataclass(frozen=True, kw_only=True)
class WidthTrend:
    """What :func:`width_trend` measured and concluded.

    ``frame``: one row per width (``width, networks, mean, se, infinite_width, infinite_width_se,
    annealed, deviation, deviation_se, fitted``; deviations relative to the infinite-width value);
    ``fit`` and ``claim`` against the infinite-width value; ``annealed_fit`` and ``annealed_claim``
    against the paper's annealed value (None where it has none).

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> def net(c):
    ...     return Arch((3, 4, 4), (Conv(c, padding="circular"), Conv(c, padding="circular"), AvgPool(2),
    ...                             Dense(1, activation=None)))
    >>> trend = width_trend(net, [4, 8], options=MeasureOptions(nets=500, seed=0, device="cpu"), n_inputs=4)
    >>> list(trend.claims_frame()["claim"]), trend.exact, trend.d
    (['width_trend:infinite_width[custom]', 'width_trend:annealed[custom]'], False, 48)
    """

    name: str
    frame: pd.DataFrame = field(repr=False)
    fit: WidthFit
    claim: Claim
    annealed_fit: WidthFit | None = None
    annealed_claim: Claim | None = None
    exact: bool = False
    d: int = 0

    def claims_frame(self) -> pd.DataFrame:
        claims = [c for c in (self.claim, self.annealed_claim) if c is not None]
        return pd.DataFrame([c.to_dict() for c in claims])


def width_trend(make: Callable[[int], object], widths: Sequence[int], *, options=None, confidence: float = 0.99,
                detectable: float = 0.02, n_inputs: int = 32, name: str | None = None) -> WidthTrend:
    """Measure ``make(C)`` for each width ``C`` and fit its deviation from the infinite-width value.

    Parameters
    ----------
    make : callable
        ``width -> Arch``: the same network at each width.
    widths : sequence of int
        Two or more widths (4 and more: see the module docstring).
    options : MeasureOptions
        The Monte Carlo's options (``nets`` or ``rel_se``: the fit needs standard errors well below
        the deviations, a fraction of a percent).
    n_inputs : int
        Inputs the infinite-width value is averaged over (its standard error enters the fit).

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> def net(c):
    ...     return Arch((3, 8, 8), (Conv(c, padding="circular"), Conv(c, padding="circular"), AvgPool(4),
    ...                             Dense(1, activation=None)))
    >>> trend = width_trend(net, [4, 16], options=MeasureOptions(nets=4000, seed=0, device="cpu"), n_inputs=8)
    >>> trend.frame["width"].tolist(), bool(trend.frame["deviation"].is_monotonic_decreasing)
    ([4, 16], True)
    >>> trend.claim.kind, trend.annealed_claim.statement.split(" as ")[0]
    ('scaling', 'E||grad f||^2 tends to the annealed value')
    """
    from .empirical.infinite_width import equals_annealed, infinite_width
    from .empirical.measure import MeasureOptions, measure
    from .exact import analyse

    widths = check_widths(widths)
    opt = options or MeasureOptions()
    archs = [make(c) for c in widths]
    var_scale = Fraction(1) if opt.init == "he" else Fraction(1, 2)
    annealed_total = analyse(archs[-1], var_scale=var_scale).outputs[0].grad_sq_total
    annealed = None if annealed_total is None else float(annealed_total)
    if annealed is not None and equals_annealed(archs[-1]):  # no merge: the annealed value, exactly
        iw_total, iw_se, iw_exact = annealed, None, True
    else:
        res = infinite_width(archs[-1], n_inputs=n_inputs, seed=opt.seed, init=opt.init)
        iw_total, iw_se, iw_exact = res.grad_sq_total, res.grad_sq_total_se, res.exact
    rows = []
    for c, arch in zip(widths, archs):
        m = measure(arch, opt)
        mean, se = m.mean_se("grad_logit_l2_sq")
        rows.append({"width": c, "networks": m.n_nets, "mean": mean, "se": se, "infinite_width": iw_total,
                     "infinite_width_se": iw_se, "annealed": annealed})
    frame = pd.DataFrame(rows)
    fit = width_fit(widths, frame["mean"], frame["se"], iw_total, iw_se or 0.0)
    frame["deviation"] = frame["mean"] / iw_total - 1
    frame["deviation_se"] = frame["se"] / iw_total
    frame["fitted"] = fit.intercept + fit.slope / frame["width"]
    label = name or getattr(archs[-1], "name", "") or "network"
    claim = width_trend_claim(f"width_trend:infinite_width[{label}]", fit, confidence=confidence,
                              detectable=detectable)
    annealed_fit = annealed_claim = None
    if annealed:
        annealed_fit = width_fit(widths, frame["mean"], frame["se"], annealed)
        annealed_claim = width_trend_claim(f"width_trend:annealed[{label}]", annealed_fit,
                                           reference_name="the annealed value", confidence=confidence,
                                           detectable=detectable)
    return WidthTrend(name=label, frame=frame, fit=fit, claim=claim, annealed_fit=annealed_fit,
                      annealed_claim=annealed_claim, exact=iw_exact, d=archs[-1].d)
