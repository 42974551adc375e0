"""Exact per-input values of the exact engine: one Fraction per input coordinate, stored flat or on a grid.

:class:`ExplicitValues` keeps one value per input; :class:`GridValues` keeps a compressed
analysis's values as a channel-independent grid of per-axis factors, expanded only on demand, so
that totals, minima and maxima stay exact and cheap at any size.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from ..spec import node_id

__all__ = ["InputValues", "ExplicitValues", "GridValues"]


class InputValues(ABC):
    """Exact values, one per input coordinate, in input order.

    Use :meth:`items` to iterate ``(input id, value)``; ``total``, ``min`` and ``max`` are
    exact and cheap even when the values are stored in compressed form.

    Examples
    --------
    >>> r = ExplicitValues(("x0", "x1"), (Fraction(1, 4), Fraction(3, 4)))    # one implementation
    >>> isinstance(r, InputValues), r.total, r.uniform, r.to_dict()
    (True, Fraction(1, 1), False, {'x0': Fraction(1, 4), 'x1': Fraction(3, 4)})
    """

    total: Fraction
    min: Fraction
    max: Fraction

    @abstractmethod
    def items(self) -> Iterator[tuple[Hashable, Fraction]]:
        """``(input id, value)`` pairs in input order."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of input coordinates."""

    def values(self) -> Iterator[Fraction]:
        return (v for _, v in self.items())

    def to_numpy(self):
        """The values as a float64 numpy array, in input order (for plots and float comparisons)."""
        import numpy as np

        return np.fromiter((float(v) for v in self.values()), dtype=np.float64, count=len(self))

    def to_dict(self) -> dict[Hashable, Fraction]:
        return dict(self.items())

    @property
    def uniform(self) -> bool:
        """True when every input has the same value."""
        return self.min == self.max


@dataclass(frozen=True, eq=False)
class ExplicitValues(InputValues):
    """Values listed input by input (neuron-level analysis).

    Examples
    --------
    >>> r = ExplicitValues(("x0", "x1", "x2"), (Fraction(1, 6), Fraction(1, 3), Fraction(1, 2)))
    >>> r.total, r.min, r.max, len(r)
    (Fraction(1, 1), Fraction(1, 6), Fraction(1, 2), 3)
    >>> r.to_numpy().round(3).tolist()
    [0.167, 0.333, 0.5]
    """

    names: tuple[Hashable, ...]
    vals: tuple[Fraction, ...]

    def __post_init__(self) -> None:
        from .paths import exact_sum

        groups: dict[int, int] = {}
        for v in self.vals:
            groups[v.denominator] = groups.get(v.denominator, 0) + v.numerator
        object.__setattr__(self, "total", exact_sum(groups) if groups else Fraction(0))
        object.__setattr__(self, "min", min(self.vals, default=Fraction(0)))
        object.__setattr__(self, "max", max(self.vals, default=Fraction(0)))

    def items(self) -> Iterator[tuple[Hashable, Fraction]]:
        return zip(self.names, self.vals)

    def __len__(self) -> int:
        return len(self.vals)


@dataclass(frozen=True, eq=False)
class GridValues(InputValues):
    """Values on an input grid ``(channels, *spatial)``, equal across channels.

    Either ``factors`` (one vector per spatial axis; value = ``scalar * prod factors[a][i_a]``) or
    ``table`` (one value per position, row-major) is given.

    Examples
    --------
    >>> g = GridValues("x", (2, 2, 3), scalar=Fraction(1, 2),
    ...                factors=((Fraction(1), Fraction(2)), (Fraction(1), Fraction(1), Fraction(1))))
    >>> g.at((1, 2)), g.total, len(g)          # 1/2 * 2 * 1; both channels alike
    (Fraction(1, 1), Fraction(9, 1), 12)
    >>> list(g.items())[2:4]
    [('x[0,0,2]', Fraction(1, 2)), ('x[0,1,0]', Fraction(1, 1))]
    """

    stage: str
    shape: tuple[int, ...]
    scalar: Fraction = Fraction(1)
    factors: tuple[tuple[Fraction, ...], ...] | None = None
    table: tuple[Fraction, ...] | None = None

    def __post_init__(self) -> None:
        channels = self.shape[0]
        if self.factors is not None:
            if any(min(f) < 0 for f in self.factors):
                raise ValueError("GridValues factors must be non-negative")
            lo = self.scalar * math.prod((min(f) for f in self.factors), start=Fraction(1))
            hi = self.scalar * math.prod((max(f) for f in self.factors), start=Fraction(1))
            total = channels * self.scalar * math.prod((sum(f, Fraction(0)) for f in self.factors), start=Fraction(1))
            if self.scalar < 0:
                lo, hi = hi, lo
        else:
            assert self.table is not None
            lo, hi, total = min(self.table), max(self.table), channels * sum(self.table, Fraction(0))
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)
        object.__setattr__(self, "total", total)

    def at(self, pos: tuple[int, ...]) -> Fraction:
        """Value at spatial position ``pos`` (any channel)."""
        if self.factors is not None:
            return self.scalar * math.prod((f[p] for f, p in zip(self.factors, pos)), start=Fraction(1))
        flat = 0
        for p, n in zip(pos, self.shape[1:]):
            flat = flat * n + p
        return self.table[flat]  # type: ignore[index]

    def to_numpy(self):
        import numpy as np

        if self.factors is None:
            grid = np.array([float(v) for v in self.table], dtype=np.float64)  # type: ignore[union-attr]
        else:
            grid = np.array(float(self.scalar))
            for f in self.factors:
                grid = np.multiply.outer(grid, np.array([float(v) for v in f]))
            grid = grid.reshape(-1)
        return np.tile(grid, self.shape[0])

    def items(self) -> Iterator[tuple[Hashable, Fraction]]:
        spatial = self.shape[1:]
        positions = list(itertools.product(*(range(n) for n in spatial)))
        vals = [self.at(p) for p in positions]
        for c in range(self.shape[0]):
            for p, v in zip(positions, vals):
                yield node_id(self.stage, (c, *p)), v

    def __len__(self) -> int:
        return math.prod(self.shape)
