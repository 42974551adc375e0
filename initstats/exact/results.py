"""Frozen result objects of the exact engine, with tidy DataFrames and JSON-ready dicts."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd

from ..spec import node_id

__all__ = ["InputValues", "ExplicitValues", "GridValues", "Witness", "OutputAnalysis", "GraphAnalysis",
           "frac_str"]


def frac_str(x: Fraction | None) -> str | None:
    """``"p/q"`` (or ``"p"``) for a Fraction, None for None."""
    return None if x is None else str(Fraction(x))


class InputValues(ABC):
    """Exact values, one per input coordinate, in input order.

    Use :meth:`items` to iterate ``(input id, value)``; ``total``, ``min`` and ``max`` are
    exact and cheap even when the values are stored in compressed form.
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
    """Values listed input by input (neuron-level analysis)."""

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


@dataclass(frozen=True)
class Witness:
    """Two inputs whose path-degree profiles differ, and the first multiset where they do.

    ``path_degree`` is the ascending tuple of in-degrees along a path (the smallest such tuple,
    in lexicographic order, on which the counts differ); ``counts`` are the numbers of paths
    from each input to the output with that path-degree.
    """

    inputs: tuple[str, str]
    path_degree: tuple[int, ...]
    counts: tuple[int, int]

    def to_dict(self) -> dict:
        return {"inputs": list(self.inputs), "path_degree": list(self.path_degree), "counts": list(self.counts)}


@dataclass(frozen=True, eq=False)
class OutputAnalysis:
    """Everything the exact engine says about one output ``o``.

    Attributes
    ----------
    output : str
        The output's node id.
    d : int
        Number of input coordinates.
    lemma8_sum : Fraction
        ``sum_x r(x)``; Lemma 8 says it is 1.
    walk : InputValues
        The walk probabilities ``r(x)``.
    lemma9_holds : bool
        ``r(x) == 1/d`` for every input.
    lemma9_max_dev : Fraction
        ``max_x |d r(x) - 1|``.
    symmetric : bool
        Assumption (S) relative to ``o``.
    witness : Witness or None
        Why (S) fails, when it does.
    hypothesis : str
        ``'H'`` (only ReLU/linear random-weight nodes), ``"H'"`` (also average pools or residual
        sums: deterministic merges, which break H1 in real networks) or ``'outside'`` (max
        pooling or BatchNorm; no annealed prediction).
    h3_holds : bool
        Every random weight on a path to ``o`` has variance ``2 / in-degree``.
    grad_sq : InputValues or None
        Annealed ``E(d f_o / d x)^2`` per input (None outside (H')).
    grad_sq_total : Fraction or None
        Its sum ``E ||grad_x f_o||_2^2``.
    pool_degrees : tuple of int or None
        Average-pooling degrees crossed by every path (None if paths cross different ones).
    theorem_total : Fraction or None
        What Theorems 4/5/7/11 state for ``E ||grad_x f_o||^2``: ``2 / prod a_i`` (``1 / prod a_i``
        with a ReLU on the logit); None where no theorem applies (residual sums, hidden linear
        nodes, max pooling, BatchNorm, non-uniform pooling).
    """

    output: str
    d: int
    lemma8_sum: Fraction
    walk: InputValues
    lemma9_holds: bool
    lemma9_max_dev: Fraction
    symmetric: bool
    witness: Witness | None
    hypothesis: str
    h3_holds: bool
    grad_sq: InputValues | None
    pool_degrees: tuple[int, ...] | None
    theorem_total: Fraction | None

    @property
    def grad_sq_total(self) -> Fraction | None:
        return None if self.grad_sq is None else self.grad_sq.total

    @property
    def pooling_uniform(self) -> bool:
        return self.pool_degrees is not None

    @property
    def theorem_holds(self) -> bool | None:
        """Whether the exact annealed total equals the theorem's value (None if either is absent)."""
        if self.theorem_total is None or self.grad_sq_total is None:
            return None
        return self.grad_sq_total == self.theorem_total

    def to_dict(self) -> dict:
        """JSON-ready summary; fractions as ``"p/q"`` strings."""
        g = self.grad_sq
        return {
            "lemma8_sum": frac_str(self.lemma8_sum),
            "symmetric": self.symmetric,
            "lemma9_holds": self.lemma9_holds,
            "grad_sq_total": frac_str(self.grad_sq_total),
            "witness": None if self.witness is None else self.witness.to_dict(),
            "within_H": self.hypothesis,
            "h3_holds": self.h3_holds,
            "lemma9_max_dev": frac_str(self.lemma9_max_dev),
            "walk_min": frac_str(self.walk.min),
            "walk_max": frac_str(self.walk.max),
            "grad_sq_min": None if g is None else frac_str(g.min),
            "grad_sq_max": None if g is None else frac_str(g.max),
            "pool_degrees": None if self.pool_degrees is None else list(self.pool_degrees),
            "pooling_uniform": self.pooling_uniform,
            "theorem_total": frac_str(self.theorem_total),
            "theorem_holds": self.theorem_holds,
        }


#: quantities listed by :meth:`GraphAnalysis.to_frame`, in order
FRAME_QUANTITIES: tuple[str, ...] = (
    "lemma8_sum", "symmetric", "lemma9_holds", "lemma9_max_dev", "grad_sq_total", "grad_sq_min",
    "grad_sq_max", "theorem_total", "theorem_holds", "within_H", "h3_holds", "pooling_uniform",
)


@dataclass(frozen=True, eq=False)
class GraphAnalysis:
    """The exact analysis of one network: one :class:`OutputAnalysis` per output.

    ``method`` says how it was computed: ``'neuron'`` (the neuron-level graph), ``'factorized'``
    (channel quotient and per-axis product) or ``'quotient'`` (channel quotient only).
    """

    arch: str
    d: int
    px: int | None
    method: str
    outputs: tuple[OutputAnalysis, ...]

    def output(self, name: str) -> OutputAnalysis:
        for out in self.outputs:
            if out.output == name:
                return out
        raise KeyError(f"no output {name!r}; outputs are {[o.output for o in self.outputs][:5]}...")

    def to_dict(self) -> dict:
        """``{"d": d, "px": px, "arch": ..., "outputs": {id: {...}}}`` (JSON-ready)."""
        return {"d": self.d, "px": self.px, "arch": self.arch, "method": self.method,
                "outputs": {o.output: o.to_dict() for o in self.outputs}}

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: one row per (output, quantity); exact values in ``value`` (Fraction/bool/str)."""
        rows = []
        for out in self.outputs:
            summary = out.to_dict()
            exact = {"lemma8_sum": out.lemma8_sum, "lemma9_max_dev": out.lemma9_max_dev,
                     "grad_sq_total": out.grad_sq_total, "theorem_total": out.theorem_total,
                     "grad_sq_min": None if out.grad_sq is None else out.grad_sq.min,
                     "grad_sq_max": None if out.grad_sq is None else out.grad_sq.max}
            for q in FRAME_QUANTITIES:
                rows.append({"arch": self.arch, "d": self.d, "px": self.px, "output": out.output,
                             "quantity": q, "value": exact.get(q, summary[q])})
        return pd.DataFrame(rows)

    def inputs_frame(self, output: str | None = None) -> pd.DataFrame:
        """One row per input coordinate: walk probability ``r``, ``d*r`` and annealed ``grad_sq``."""
        out = self.outputs[0] if output is None else self.output(output)
        grad = out.grad_sq.values() if out.grad_sq is not None else itertools.repeat(None)
        rows = [{"arch": self.arch, "d": self.d, "output": out.output, "input": str(name), "r": r,
                 "d_r": self.d * r, "grad_sq": gv} for (name, r), gv in zip(out.walk.items(), grad)]
        return pd.DataFrame(rows)
