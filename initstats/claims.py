"""Claims, fits and verdicts: how a measurement is compared with a prediction.

Every claim has a *kind* and a *verdict* (``pass | fail | inconclusive | not-covered``):

``exact``
    Under (H) the annealed value is exact in expectation, so the measured mean over independent
    networks is tested against the exact prediction with a two-sided z-test at ``confidence``
    (corrected for the skewness of the per-network values, Johnson 1978):
    **fail** when ``|mean - pred| > z * se``; otherwise **inconclusive** when the test could not
    detect a relative error of ``detectable`` (5 %) with probability ``power``, i.e. when
    ``(z + z_power) * se > detectable * |pred|``; otherwise **pass**.  A correct prediction
    passes with probability ``confidence`` once enough networks are drawn, and a prediction
    off by 5 % is rejected with probability at least ``power``.
``approximate``
    With deterministic merges (average pooling, residual sums), H1 fails in real networks and
    the measured value exceeds the annealed one by a few per cent or more (THEORY.md section 4b).
    The measured excess ``mean / pred - 1`` is reported with its confidence interval and verdict
    ``not-covered``; with a stated ``tolerance``, the claim "within ``tolerance`` of the annealed
    value" is an equivalence test instead: **pass** when the interval lies inside
    ``[-tolerance, tolerance]``, **fail** when it lies outside, else **inconclusive**.  (Average
    pooling is tested as a scaling law in the pooling degree, Theorems 7 and 11.)
``scaling``
    A weighted least-squares fit of ``log(mean)`` on ``log(x)`` (weights from the standard errors,
    inflated by the Birge ratio when the points scatter more than their errors) gives an exponent
    with a confidence interval; the same equivalence test with an exponent ``tolerance``.
``not-covered``
    Max pooling and BatchNorm lie outside (H): the measurement is reported, no theorem is tested.

This module is pure arithmetic (numpy, scipy); it imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

__all__ = ["SCALING_LAWS", "VERDICTS", "KINDS", "Claim", "Fit", "exact_claim", "approximate_claim", "scaling_claim",
           "not_covered_claim", "loglog_fit", "combine_verdicts", "z_value"]

#: statistic -> (predicted exponent in d, divide by sqrt(2 ln d) first?, statement)
SCALING_LAWS: dict[str, tuple[float, bool, str]] = {
    "grad_logit_l2": (0.0, False, "||grad f_k||_2 is independent of d (Theorems 4, 5; Corollary 6)"),
    "grad_logit_l1": (0.5, False, "||grad f_k||_1 grows like d^(1/2) (Theorem 5)"),
    "grad_loss_l1": (0.5, False, "||grad L||_1 grows like d^(1/2) (eq. 7, q = 1)"),
    "grad_loss_linf": (-0.5, True, "||grad L||_inf / sqrt(2 ln d) decays like d^(-1/2) (eq. 7, q = inf)"),
    "damage_l1": (0.5, False, "first-order l_inf damage eps*||grad L||_1 grows like d^(1/2) (eq. 3, 7)"),
}

VERDICTS = ("pass", "fail", "inconclusive", "not-covered")
KINDS = ("exact", "approximate", "scaling", "not-covered")


def z_value(confidence: float) -> float:
    """Two-sided normal quantile: 2.576 for 99 %."""
    return float(norm.ppf(0.5 + confidence / 2))


@dataclass(frozen=True)
class Claim:
    """One tested statement and its verdict.

    ``estimate``/``ci_low``/``ci_high`` are on the scale of ``predicted`` (a value for exact
    claims, a relative excess for approximate ones, an exponent for scaling ones).
    """

    claim: str
    kind: str
    verdict: str
    statement: str
    predicted: float | None = None
    estimate: float | None = None
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    tolerance: float | None = None
    confidence: float | None = None
    d: int | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown claim kind {self.kind!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _johnson_t(z0: float, skewness: float | None, n: int | None) -> float:
    """Johnson's (1978) skewness-corrected t statistic, ``t + g (1 + 2 t^2) / (6 sqrt(n))``."""
    if skewness is None or n is None or not math.isfinite(skewness):
        return z0
    return z0 + skewness * (1 + 2 * z0 * z0) / (6 * math.sqrt(n))


def exact_claim(name: str, statement: str, mean: float, se: float, predicted: float, *, confidence: float = 0.99,
                detectable: float = 0.05, power: float = 0.8, d: int | None = None, n: int | None = None,
                skewness: float | None = None, min_n: int = 30) -> Claim:
    """Two-sided test of ``E[X] = predicted`` (see the module docstring).

    With ``n`` and the sample ``skewness`` of the per-network values, the z statistic is
    corrected for skewness (Johnson 1978): per-network gradient norms are right-skewed, and the
    plain z-test rejects a correct prediction too often with a few hundred networks.  Fewer than
    ``min_n`` networks give no pass/fail verdict (unless every network gave the same value).
    """
    z = z_value(confidence)
    lo, hi = mean - z * se, mean + z * se
    rel = mean / predicted - 1 if predicted else math.nan
    if math.isfinite(se) and se == 0:
        t = 0.0 if mean == predicted else math.inf
    else:
        t = _johnson_t((mean - predicted) / se, skewness, n) if math.isfinite(se) else math.nan
    if not math.isfinite(se) or (n is not None and n < min_n and se > 0):
        verdict = "inconclusive"
        why = f"only {n} networks: too few for a normal approximation (need {min_n})" if math.isfinite(se) \
            else "too few networks for a standard error"
    elif abs(t) > z:
        verdict = "fail"
        why = (f"measured {mean:.5g} ± {se:.2g} differs from {predicted:.5g} by {rel:+.2%} "
               f"({abs(mean - predicted) / se if se > 0 else math.inf:.1f} standard errors)")
    elif (z + float(norm.ppf(power))) * se > detectable * abs(predicted):
        verdict = "inconclusive"
        why = (f"consistent ({rel:+.2%}), but the standard error {se / abs(predicted):.2%} is too large to detect a "
               f"{detectable:.0%} error with {power:.0%} power; draw more networks")
    else:
        verdict = "pass"
        why = f"measured {mean:.5g} ± {se:.2g}, {rel:+.2%} from the prediction, within {z:.2f} standard errors"
    if skewness is not None and n is not None and verdict in ("pass", "fail"):
        why += f" (skewness-corrected test, skewness {skewness:.2g} over {n} networks)"
    return Claim(name, "exact", verdict, statement, predicted, mean, se, lo, hi, detectable, confidence, d, why)


def _equivalence(lo: float, hi: float, centre: float, tolerance: float) -> str:
    if centre - tolerance <= lo and hi <= centre + tolerance:
        return "pass"
    if hi < centre - tolerance or lo > centre + tolerance:
        return "fail"
    return "inconclusive"


def approximate_claim(name: str, statement: str, mean: float, se: float, predicted: float, *,
                      tolerance: float | None = None, confidence: float = 0.99, d: int | None = None) -> Claim:
    """The excess ``mean / predicted - 1`` over an annealed value, with its confidence interval.

    Without ``tolerance`` the excess is reported with verdict ``not-covered``: where deterministic
    merges break H1 the annealed value is not an exact prediction of real networks, and no
    theorem says by how much they differ.  With a ``tolerance`` the claim "within ``tolerance``
    of the annealed value" is tested for equivalence.
    """
    z = z_value(confidence)
    excess, excess_se = mean / predicted - 1, se / abs(predicted)
    lo, hi = excess - z * excess_se, excess + z * excess_se
    why = f"measured/annealed - 1 = {excess:+.2%} (CI {lo:+.2%} .. {hi:+.2%}); deterministic merges break H1"
    if tolerance is None:
        verdict = "not-covered"
        why += ", so the annealed value is not exact for real networks (reported, not tested)"
    else:
        verdict = _equivalence(lo, hi, 0.0, tolerance)
        why += f"; tested against a tolerance of ±{tolerance:.0%}"
    return Claim(name, "approximate", verdict, statement, 0.0, excess, excess_se, lo, hi, tolerance, confidence, d, why)


@dataclass(frozen=True)
class Fit:
    """A log-log fit ``log y = intercept + exponent * log x``."""

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
                  exponent: float, *, tolerance: float = 0.1, confidence: float = 0.99) -> Claim:
    """Fitted exponent against a predicted one, equivalence within ``tolerance``."""
    fit = loglog_fit(x, mean, se)
    z = z_value(confidence)
    lo, hi = fit.exponent - z * fit.stderr, fit.exponent + z * fit.stderr
    verdict = _equivalence(lo, hi, exponent, tolerance)
    why = (f"fitted exponent {fit.exponent:+.3f} ± {fit.stderr:.3f} (CI {lo:+.3f} .. {hi:+.3f}) over {len(x)} points, "
           f"predicted {exponent:+.3f} ± {tolerance}" + (f"; points scatter {fit.birge:.1f}x their errors"
                                                          if fit.birge > 1.5 else ""))
    if verdict == "inconclusive" and len(x) < 3:
        why += "; give more dimensions"
    return Claim(name, "scaling", verdict, statement, exponent, fit.exponent, fit.stderr, lo, hi, tolerance,
                 confidence, None, why)


def not_covered_claim(name: str, statement: str, reason: str, *, estimate: float | None = None,
                      stderr: float | None = None, d: int | None = None) -> Claim:
    """A measurement outside the theory's hypotheses: reported, not tested."""
    return Claim(name, "not-covered", "not-covered", statement, None, estimate, stderr, None, None, None, None, d,
                 reason)


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """``fail`` if any fails, else ``inconclusive`` if any is, else ``pass`` (not-covered ignored)."""
    tested = [v for v in verdicts if v != "not-covered"]
    if not tested:
        return "not-covered"
    if "fail" in tested:
        return "fail"
    if "inconclusive" in tested:
        return "inconclusive"
    return "pass"
