"""Number formatting shared by results, verdicts and reports (no dependencies beyond the standard library).

One place decides how a level, an exact value or a signed exponent is written, so the CLI,
the JSON details and the generated Markdown agree.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["percent", "signed", "fraction_text", "show_fraction"]


def percent(x: float) -> str:
    """A level or tolerance as a percentage with the digits it needs.

    Examples
    --------
    >>> percent(0.99), percent(0.999), percent(0.05), percent(0.125)
    ('99%', '99.9%', '5%', '12.5%')
    """
    return f"{x * 100:.4g}%"


def signed(x: float, decimals: int = 4) -> str:
    """``x`` with an explicit sign and ``decimals`` decimals; a value that rounds to zero is ``+0``.

    Examples
    --------
    >>> signed(0.50771), signed(-1e-17), signed(-0.4373, 3)
    ('+0.5077', '+0.0000', '-0.437')
    """
    s = f"{x:+.{decimals}f}"
    return "+" + s[1:] if float(s) == 0 else s


def fraction_text(x: Fraction | int | None) -> str | None:
    """``"p/q"`` (or ``"p"``) for an exact value, None for None (JSON and CSV cells).

    Examples
    --------
    >>> fraction_text(Fraction(6, 8)), fraction_text(2), fraction_text(None)
    ('3/4', '2', None)
    """
    return None if x is None else str(Fraction(x))


def show_fraction(x: Fraction | int | None, width: int = 10) -> str:
    """Short display of an exact value: ``'2'``, ``'1/32'``, or 5 significant digits when long; ``'-'`` for None.

    Examples
    --------
    >>> show_fraction(Fraction(1, 32)), show_fraction(Fraction(12345, 678901)), show_fraction(None)
    ('1/32', '0.018184', '-')
    """
    if x is None:
        return "-"
    s = str(Fraction(x))
    return s if len(s) <= width else f"{float(x):.5g}"
