"""The finite-width trend of the Theorems 7/11 page: pooled networks over widths, against 1/width.

The issue-13 networks (8x8x3 inputs, two circular 3x3 convolutions, a k x k average pool, a dense
head) are measured at each width of the profile; :func:`initstats.width_trend.width_trend` fits
their deviation from the infinite-width value against 1/width and tests that it extrapolates to 0,
and the same for the annealed value.  Frames only; no text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from ...empirical.measure import MeasureOptions
from ...verify import VerifySettings
from ...width_trend import width_trend
from ..profiles import Profile
from .measured import pool_arch

__all__ = ["WidthResult", "run_width_trend"]

#: inputs x ~ N(0, I) the infinite-width value is averaged over (its SE enters the fit)
WIDTH_TREND_INPUTS = 16


@dataclass(frozen=True, eq=False)
class WidthResult:
    """``frame``: one row per network and width (``network, width, networks, mean, se,
    infinite_width, infinite_width_se, annealed, deviation, deviation_se, fitted``; deviations
    relative to the infinite-width value); ``claims``: per network, the claim against the
    infinite-width value and the one against the annealed value (a ``network`` column first).

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> small = replace(PROFILES["quick"], width_trend_widths=(4, 8), width_trend_pools=(4,), width_trend_nets=300)
    >>> res = run_width_trend(small, MeasureOptions(seed=0, device="cpu"), VerifySettings())
    >>> res.frame[["network", "width", "networks"]].values.tolist()
    [['2 conv + pool 4x4', 4, 300], ['2 conv + pool 4x4', 8, 300]]
    >>> res.claims["claim"].tolist()
    ['width_trend:infinite_width[2 conv + pool 4x4]', 'width_trend:annealed[2 conv + pool 4x4]']
    """

    frame: pd.DataFrame
    claims: pd.DataFrame


def run_width_trend(profile: Profile, options: MeasureOptions, settings: VerifySettings) -> WidthResult:
    """Measure each pooled network at the profile's widths (``width_trend_nets`` networks each).

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> small = replace(PROFILES["quick"], width_trend_widths=(4, 8), width_trend_pools=(2, 4), width_trend_nets=200)
    >>> res = run_width_trend(small, MeasureOptions(seed=0, device="cpu"), VerifySettings())
    >>> res.frame.groupby("network", sort=False)["width"].apply(list).to_dict()
    {'2 conv + pool 2x2': [4, 8], '2 conv + pool 4x4': [4, 8]}
    """
    side = profile.width_trend_input
    opt = replace(options, nets=profile.width_trend_nets)
    frames, claims = [], []
    for k in profile.width_trend_pools:
        name = f"2 conv + pool {k}x{k}"
        trend = width_trend(lambda c, k=k: pool_arch(side, 2, (k,), channels=c), list(profile.width_trend_widths),
                            options=opt, confidence=settings.confidence, n_inputs=WIDTH_TREND_INPUTS, name=name)
        frames.append(trend.frame.assign(network=name))
        claims.append(trend.claims_frame().assign(network=name))
    first = lambda f: f[["network", *[c for c in f.columns if c != "network"]]]  # noqa: E731
    return WidthResult(first(pd.concat(frames, ignore_index=True)), first(pd.concat(claims, ignore_index=True)))
