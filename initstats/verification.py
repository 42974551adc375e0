"""The results of a verification, and the settings of its tests: frozen, keyword-only records.

:class:`VerifySettings` holds the confidence, detectable errors and tolerances every claim of a
run is tested with; :class:`Verification` holds what a run produced (tidy rows, claims with
verdicts, the measurements and exact analyses behind them, warnings) and serialises it.
:mod:`initstats.verify` produces them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .claims import Claim, combine_verdicts
from .errors import OptionError
from .exact.results import GraphAnalysis

__all__ = ["VerifySettings", "Verification"]


@dataclass(frozen=True, kw_only=True)
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
    excess_tolerance : float
        With deterministic merges the real value exceeds the annealed one (H1 fails in real
        networks); an excess claim passes when the excess's interval lies within this band.
    exponent_tolerance : float
        Tolerance of exponents tested against asymptotic laws without an exact finite-d reference
        (the pooling law of Theorems 7/11; the d-exponent of networks with deterministic merges).
    detectable_exponent : float
        Exponent error that a scaling claim with an exact reference must be able to detect.
    bridge_tolerance : float
        Tolerance of exponents tested against the finite-d Gaussian references of the l1 and
        l_inf norms (:mod:`initstats.scaling`).
    holm : bool
        Holm's correction over the run's point tests (default on): a correct implementation then
        fails one of them with probability at most ``1 - confidence``; equivalence tests (excess,
        bridge and pooling exponents) carry no p-value and stay outside this guarantee.
    infinite_width : int
        Inputs ``x ~ N(0, I)`` over which the infinite-width prediction is averaged (0: not
        computed).  Where merges make the annealed value inexact, the measurement is then also
        tested against it (:func:`initstats.infinite.infinite_width_claim`).

    Examples
    --------
    >>> VerifySettings().confidence, VerifySettings(detectable=0.02).detectable
    (0.99, 0.02)
    >>> VerifySettings(confidence=1.5)
    Traceback (most recent call last):
        ...
    initstats.errors.OptionError: confidence=1.5 is invalid; expected a number in (0, 1)
    """

    confidence: float = 0.99
    detectable: float = 0.05
    map_detectable: float = 0.10
    power: float = 0.8
    excess_tolerance: float = 0.10
    exponent_tolerance: float = 0.1
    detectable_exponent: float = 0.05
    bridge_tolerance: float = 0.05
    holm: bool = True
    infinite_width: int = 0

    def __post_init__(self) -> None:
        for name in ("confidence", "detectable", "map_detectable", "power", "excess_tolerance", "exponent_tolerance",
                     "detectable_exponent", "bridge_tolerance"):
            v = getattr(self, name)
            upper = math.inf if name == "excess_tolerance" else 1  # an excess may be tolerated beyond 100 %
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v < upper):
                raise OptionError(f"{name}={v!r} is invalid; expected a number in (0, {upper})")
        if not isinstance(self.holm, bool):
            raise OptionError(f"holm={self.holm!r} is invalid; expected True or False")
        if isinstance(self.infinite_width, bool) or not isinstance(self.infinite_width, int) or self.infinite_width < 0:
            raise OptionError(f"infinite_width={self.infinite_width!r} is invalid; expected a number of inputs (0 = off)")


@dataclass(frozen=True, kw_only=True, eq=False)
class Verification:
    """Measured rows (tidy), claims with verdicts, and the objects behind them.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import verify_family
    >>> res = verify_family("fc", [4], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> res.claims_frame()[["claim", "kind"]].values.tolist()
    [['grad_sq_total[px=4]', 'exact'], ['grad_sq_map[px=4]', 'exact']]
    >>> res.verdict == combine_verdicts([c.verdict for c in res.claims]), list(res.to_dict())
    (True, ['rows', 'claims', 'warnings'])
    """

    rows: pd.DataFrame
    claims: tuple[Claim, ...]
    measurements: tuple = field(repr=False, default=())
    analyses: tuple[GraphAnalysis, ...] = field(repr=False, default=())
    labels: tuple[str, ...] = ()  # one per measurement, e.g. "px=32" or "px=32,pool=2"
    warnings: tuple[str, ...] = ()  # e.g. precision targets not reached
    width_trends: tuple = field(repr=False, default=())  # WidthTrend per size (verify_family(widths=...))

    def width_frame(self) -> pd.DataFrame:
        """One row per (size, width) of the width trends (empty without ``widths``): the measured
        mean and SE, the infinite-width and annealed values, the deviation and the fitted line."""
        if not self.width_trends:
            return pd.DataFrame()
        return pd.concat([t.frame.assign(label=t.name) for t in self.width_trends], ignore_index=True)

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
        """``{"rows": [...], "claims": [...], "warnings": [...]}`` and, with width trends, ``"widths"``
        (JSON-ready; NaN become None)."""
        rows = [{k: _clean(v) for k, v in r.items() if not (k in ("predicted", "output", "pool") and _clean(v) is None)}
                for r in self.rows.to_dict(orient="records")]
        out = {"rows": rows, "claims": [{k: _clean(v) for k, v in c.to_dict().items()} for c in self.claims],
               "warnings": list(self.warnings)}
        if self.width_trends:
            out["widths"] = [{k: _clean(v) for k, v in r.items()} for r in self.width_frame().to_dict(orient="records")]
        return out


def _clean(v: object) -> object:
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v
