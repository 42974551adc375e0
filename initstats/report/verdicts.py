"""Claims as tidy verdict frames, read only through the claims' stable fields.

The findings of the report are selected from these frames, never from claim names or prose:
``kind``, ``verdict``, ``estimate``, ``stderr``, ``ci_low``, ``ci_high``, ``predicted`` and ``d``
of :class:`initstats.claims.Claim`.  The one place that needs to know *which* statistic a claim
is about is :func:`claim_statistic`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from ..claims import Claim

__all__ = ["VERDICT_COLUMNS", "claim_statistic", "claims_frame", "is_map_claim"]

#: the columns of a verdict frame, in order (plus any labels given to :func:`claims_frame`)
VERDICT_COLUMNS = ("kind", "statistic", "d", "verdict", "estimate", "stderr", "ci_low", "ci_high", "predicted",
                   "tolerance", "detectable")


def claim_statistic(claim: Claim) -> str:
    """The statistic a claim is about.

    ``Claim.statistic`` when the claims carry that structured field; otherwise the claim's name
    up to its first ``[`` with a leading ``scaling:`` removed (``grad_sq_total[px=32]`` ->
    ``grad_sq_total``, ``scaling:grad_logit_l2`` -> ``grad_logit_l2``).

    Examples
    --------
    >>> from initstats.claims import exact_claim, scaling_claim
    >>> claim_statistic(exact_claim("grad_sq_total[px=32]", "", 2.01, 0.02, 2.0))
    'grad_sq_total'
    >>> claim_statistic(exact_claim("grad_sq_total[px=32]", "", 2.01, 0.02, 2.0, statistic="grad_logit_l2_sq"))
    'grad_logit_l2_sq'
    >>> claim_statistic(scaling_claim("scaling:grad_logit_l2", "", [1, 2], [2.0, 2.0], [0.01, 0.01], 0.0))
    'grad_logit_l2'
    """
    stat = getattr(claim, "statistic", None)
    if stat:
        return str(stat)
    name = claim.name
    if name.startswith("scaling:"):
        name = name[len("scaling:"):]
    return name.split("[", 1)[0]


def is_map_claim(claim: Claim) -> bool:
    """Whether a claim is about the per-coordinate map rather than the total.

    Examples
    --------
    >>> from initstats.claims import exact_claim
    >>> names = ("grad_sq_map[px=32]", "grad_sq_total[px=32]")
    >>> [is_map_claim(exact_claim(name, "", 2.01, 0.02, 2.0)) for name in names]
    [True, False]
    """
    return "map" in claim_statistic(claim) or claim.name.startswith("grad_sq_map")


def _num(v: object) -> float:
    return math.nan if v is None else float(v)  # type: ignore[arg-type]


def claims_frame(claims: Iterable[Claim], **labels: object) -> pd.DataFrame:
    """One row per claim with the columns :data:`VERDICT_COLUMNS` and ``labels`` (constants).

    ``statistic`` is :func:`claim_statistic`, suffixed ``:map`` for per-coordinate map claims.

    Examples
    --------
    >>> from initstats.claims import exact_claim
    >>> claims = [exact_claim("grad_sq_total[px=32]", "", 2.01, 0.02, 2.0, d=3072),
    ...           exact_claim("grad_sq_map[px=32]", "", 2.20, 0.02, 2.0, d=3072)]
    >>> frame = claims_frame(claims, family="cnn")
    >>> list(frame.columns) == ["family", *VERDICT_COLUMNS]
    True
    >>> frame[["family", "statistic", "d", "verdict"]].values.tolist()
    [['cnn', 'grad_sq_total', 3072, 'pass'], ['cnn', 'grad_sq_map', 3072, 'fail']]
    """
    rows = []
    for c in claims:
        stat = claim_statistic(c)
        if is_map_claim(c) and "map" not in stat:
            stat += ":map"
        rows.append({**labels, "kind": c.kind, "statistic": stat, "d": c.d, "verdict": c.verdict,
                     "estimate": _num(c.estimate), "stderr": _num(c.stderr), "ci_low": _num(c.ci_low),
                     "ci_high": _num(c.ci_high), "predicted": _num(c.predicted),
                     "tolerance": _num(getattr(c, "tolerance", None)),
                     "detectable": _num(getattr(c, "detectable", None))})
    return pd.DataFrame(rows, columns=[*labels, *VERDICT_COLUMNS])
