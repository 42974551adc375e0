"""How numbers are written in the report's sentences: values with their standard errors.

A measured value is always quoted with its standard error, the standard error to two
significant digits and the value to the same decimal place; exact values are quoted alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["decimals_for", "pm", "pct_pm", "num", "signed", "listing", "px_list", "spread"]


def decimals_for(se: float, digits: int = 2) -> int:
    """Decimal places that show ``se`` to ``digits`` significant digits (at least 0).

    Examples
    --------
    >>> decimals_for(0.0097), decimals_for(3.2), decimals_for(float("inf"))
    (4, 1, 4)
    """
    if not (math.isfinite(se) and se > 0):
        return 4
    return max(0, digits - 1 - math.floor(math.log10(se)))


def pm(value: float, se: float, *, sign: bool = False) -> str:
    """``value ± se``, e.g. ``0.7484 ± 0.0097``; ``sign`` writes ``+`` before positive values.

    Examples
    --------
    >>> pm(0.74841, 0.00973), pm(0.506, 0.0123, sign=True)
    ('0.7484 ± 0.0097', '+0.506 ± 0.012')
    >>> pm(1.0, float("inf"))                  # one network: no standard error
    '1 (no standard error)'
    """
    if not math.isfinite(se):
        return f"{value:{'+' if sign else ''}.4g} (no standard error)"
    dec = decimals_for(se)
    return f"{value:{'+' if sign else ''}.{dec}f} ± {se:.{dec}f}"


def pct_pm(value: float, se: float) -> str:
    """A relative value and its standard error in per cent, e.g. ``+30.7 % ± 4.4 %``.

    Examples
    --------
    >>> pct_pm(0.3071, 0.0442)
    '+30.7 % ± 4.4 %'
    """
    if not math.isfinite(se):
        return f"{100 * value:+.1f} % (no standard error)"
    dec = decimals_for(100 * se)
    return f"{100 * value:+.{dec}f} % ± {100 * se:.{dec}f} %"


def num(x: float) -> str:
    """An exact or derived value: 4 significant digits, integers without decimals.

    Examples
    --------
    >>> num(2.0), num(20000), num(0.752489)
    ('2', '20,000', '0.7525')
    """
    if float(x) == int(x) and abs(x) < 1e15:
        return f"{int(x):,}" if abs(x) >= 10_000 else str(int(x))
    return f"{x:.4g}"


def signed(x: float, digits: int = 3) -> str:
    """``+0.506``-style number for exponents.

    Examples
    --------
    >>> signed(0.50612), signed(-0.5, 1)
    ('+0.506', '-0.5')
    """
    return f"{x:+.{digits}f}"


def listing(items: Iterable[str], conj: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``.

    Examples
    --------
    >>> listing(["H3"]), listing(["H3", "(S)"]), listing(["avg", "stride", "max"], "or")
    ('H3', 'H3 and (S)', 'avg, stride or max')
    """
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def px_list(px: Sequence[int]) -> str:
    """``32, 64 and 128 px``.

    Examples
    --------
    >>> px_list([32, 64, 128])
    '32, 64 and 128 px'
    """
    return listing([str(int(p)) for p in px]) + " px"


def spread(values: Sequence[float], rel_tol: float = 1e-12) -> bool:
    """Whether ``values`` differ by more than ``rel_tol`` relative (exact values compared as floats).

    Examples
    --------
    >>> spread([2.0, 2.0, 2.0]), spread([0.7525, 1.3015])
    (False, True)
    """
    vals = [float(v) for v in values]
    return bool(vals) and max(vals) - min(vals) > rel_tol * max(abs(v) for v in vals)
