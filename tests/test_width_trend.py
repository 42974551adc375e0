"""The finite-width trend: deviations from the infinite-width value fitted against 1/width.

Calibration is measured on synthetic deviations drawn from the model the fit assumes (size over
2000 seeded replications; power against a reference a few percent off), then on real networks: the
issue's depth-2 pooled network tends to its infinite-width value and not to the annealed one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from initstats.empirical.measure import MeasureOptions
from initstats.errors import InitStatsError
from initstats.report.findings.width import finite_width
from initstats.spec import Arch, AvgPool, Conv, Dense
from initstats.width_trend import width_fit, width_trend, width_trend_claim

WIDTHS = [4, 8, 16, 32]


def synthetic(rng, reference_error: float, *, curvature: float = 0.0) -> tuple[list[float], list[float]]:
    """Means of networks of the given widths whose true limit is 1 + ``reference_error`` times the
    reference 1, with a 1/C slope of 0.3 (and ``curvature``/C^2), each with a 0.3 % standard error."""
    c = np.array(WIDTHS, dtype=float)
    truth = (1 + reference_error) * (1 + 0.3 / c + curvature / c**2)
    se = np.full(len(c), 0.003) * truth
    return list(truth + rng.normal(size=len(c)) * se), list(se)


def test_fit_recovers_intercept_and_slope_exactly():
    c = np.array([4, 8, 16])
    fit = width_fit(c, 2.0 * (1 + 0.01 + 0.25 / c), [0.001] * 3, reference=2.0)
    assert fit.intercept == pytest.approx(0.01, abs=1e-12) and fit.slope == pytest.approx(0.25, abs=1e-12)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-18) and fit.dof == 1
    # the reference's own error widens the intercept's interval, not the fit
    wider = width_fit(c, 2.0 * (1 + 0.01 + 0.25 / c), [0.001] * 3, reference=2.0, reference_se=0.004)
    assert wider.intercept == fit.intercept and wider.intercept_se > 3 * fit.intercept_se


def test_size_and_power_are_measured():
    """At 99 % confidence a correct reference is rejected in about 1 % of replications, one 2 % off
    in nearly all; a fit whose model is wrong (strong 1/C^2 terms) is not passed as a success."""
    rng = np.random.default_rng(0)
    reps = 2000
    verdicts = {err: [width_trend_claim("t", width_fit(WIDTHS, *synthetic(rng, err), reference=1.0)).verdict
                      for _ in range(reps)] for err in (0.0, 0.02)}
    size = np.mean([v == "fail" for v in verdicts[0.0]])
    power = np.mean([v == "fail" for v in verdicts[0.02]])
    assert size <= 0.02, size  # nominal 1 %; binomial SE 0.22 % over 2000 replications
    assert np.mean([v == "pass" for v in verdicts[0.0]]) > 0.9
    assert power > 0.95, power
    bent = [width_trend_claim("t", width_fit(WIDTHS, *synthetic(rng, 0.0, curvature=4.0), reference=1.0)).verdict
            for _ in range(200)]
    assert np.mean([v == "pass" for v in bent]) < 0.05


def test_imprecise_fits_are_inconclusive():
    fit = width_fit([4, 8], [1.30, 1.15], [0.03, 0.03], reference=1.0)
    claim = width_trend_claim("t", fit)
    assert claim.verdict == "inconclusive" and "too wide" in claim.detail


def test_bad_widths_are_refused():
    with pytest.raises(InitStatsError, match="two or more distinct"):
        width_fit([8, 8], [1.0, 1.0], [0.1, 0.1], reference=1.0)
    with pytest.raises(InitStatsError, match="widths"):
        width_trend(lambda c: None, [8])


def pooled(c: int) -> Arch:
    """The issue's depth-2 network: 8x8x3 inputs, two circular 3x3 convolutions, a 4x4 average pool."""
    return Arch((3, 8, 8), (Conv(c, padding="circular"), Conv(c, padding="circular"), AvgPool(4),
                            Dense(1, activation=None)), name="depth 2, pool 4")


def test_real_networks_tend_to_the_infinite_width_value_not_the_annealed_one():
    trend = width_trend(pooled, [4, 8, 16], options=MeasureOptions(nets=20000, seed=0, device="cpu"), n_inputs=16)
    assert trend.claim.verdict == "pass", trend.claim.detail
    assert trend.annealed_claim.verdict == "fail", trend.annealed_claim.detail
    assert 0.05 < trend.annealed_claim.estimate < 0.09  # about +7 %: the gate correlations, at every width
    frame = trend.frame
    assert frame["deviation"].is_monotonic_decreasing and (frame["deviation"] > 0).all()
    assert trend.fit.slope > 0 and not trend.exact


def _claims(iw: str, annealed: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame({"network": "n", "width": [4, 8, 16], "deviation": [0.077, 0.041, 0.017],
                          "deviation_se": [0.004, 0.003, 0.002]})
    claims = pd.DataFrame({"network": "n", "claim": ["width_trend:infinite_width[n]", "width_trend:annealed[n]"],
                           "verdict": [iw, annealed], "estimate": [-0.001, 0.068], "stderr": [0.003, 0.003]})
    return frame, claims


def test_the_finding_follows_the_verdicts():
    expected = finite_width(*_claims("pass", "fail"))
    assert expected.relation == "disagrees" and "does not vanish with width" in expected.text
    assert "extrapolates to -0.10 % ± 0.30 % at infinite width (pass: consistent with 0)" in expected.text
    both = finite_width(*_claims("pass", "pass"))
    assert both.relation == "agrees" and "does not vanish" not in both.text
    wrong = finite_width(*_claims("fail", "fail"))
    assert "do not approach the infinite-width value" in wrong.text and "does not vanish" not in wrong.text
    unsure = finite_width(*_claims("inconclusive", "inconclusive"))
    assert unsure.relation == "undecided" and "(inconclusive: undecided)" in unsure.text
    frame, claims = _claims("pass", "fail")
    rising = finite_width(frame.assign(deviation=[0.01, 0.02, 0.03]), claims)
    assert "does not fall with width" in rising.text
