"""Frozen result objects of the exact engine, with tidy DataFrames and JSON-ready dicts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from fractions import Fraction

import pandas as pd

from .._format import fraction_text, show_fraction
from .values import ExplicitValues, GridValues, InputValues

__all__ = ["InputValues", "ExplicitValues", "GridValues", "Witness", "HypothesisCheck", "OutputAnalysis",
           "GraphAnalysis", "derive_label", "HYPOTHESES", "NO_ANNEALED_KINDS", "MERGE_KINDS"]

#: the checks every output carries, in order: the paper's H1-H5 and assumption (S)
HYPOTHESES: tuple[str, ...] = ("H1", "H2", "H3", "H4", "H5", "S")
#: node kinds without an annealed model (H1 fails there and the network is outside (H'))
NO_ANNEALED_KINDS = frozenset({"maxpool", "batchnorm"})
#: node kinds with deterministic weights that (H') admits: average pools and residual sums
MERGE_KINDS = frozenset({"avgpool", "sum", "sumrelu"})


@dataclass(frozen=True)
class Witness:
    """Two inputs whose path-degree profiles differ, and the first multiset where they do.

    ``path_degree`` is the ascending tuple of in-degrees along a path (the smallest such tuple,
    in lexicographic order, on which the counts differ); ``counts`` are the numbers of paths
    from each input to the output with that path-degree.

    Where the profiles are too large to enumerate (a deep residual network at a large input
    size), a compressed analysis proves the difference from the walk probabilities instead:
    ``r(x)`` is a function of the profile (Lemma 8), so ``walk = (r(x0), r(x1))`` with
    ``r(x0) != r(x1)`` shows the profiles differ; ``path_degree`` and ``counts`` are then None and
    ``inputs[1]`` is the first input whose *walk probability* differs from ``inputs[0]``'s.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> w = a.outputs[0].witness             # the border input is on fewer paths of path-degree {3, 8}
    >>> w
    Witness(inputs=('x[0,0]', 'x[0,1]'), path_degree=(3, 8), counts=(2, 4))
    >>> w.to_dict()
    {'inputs': ['x[0,0]', 'x[0,1]'], 'path_degree': [3, 8], 'counts': [2, 4]}
    """

    inputs: tuple[str, str]
    path_degree: tuple[int, ...] | None
    counts: tuple[int, int] | None
    walk: tuple[Fraction, Fraction] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path_degree is None) != (self.counts is None) or (self.path_degree is None and self.walk is None):
            raise ValueError("a Witness needs path_degree and counts, or the walk probabilities that differ")

    def to_dict(self) -> dict:
        out: dict = {"inputs": list(self.inputs),
                     "path_degree": None if self.path_degree is None else list(self.path_degree),
                     "counts": None if self.counts is None else list(self.counts)}
        if self.walk is not None:
            out["walk"] = [fraction_text(v) for v in self.walk]
        return out

    def text(self) -> str:
        """One line: the two inputs and what differs between their profiles.

        Examples
        --------
        >>> Witness(("x0", "x1"), (2, 3), (1, 2)).text()
        'x0 vs x1: 1 vs 2 paths of path-degree {2,3}'
        >>> Witness(("x0", "x1"), None, None, walk=(Fraction(1, 4), Fraction(1, 3))).text()
        'x0 vs x1: walk probabilities r = 1/4 vs 1/3 (their path-degree multisets differ)'
        """
        a, b = self.inputs
        if self.path_degree is None:
            r0, r1 = self.walk  # type: ignore[misc]
            return (f"{a} vs {b}: walk probabilities r = {show_fraction(r0)} vs {show_fraction(r1)} "
                    "(their path-degree multisets differ)")
        return (f"{a} vs {b}: {self.counts[0]} vs {self.counts[1]} paths of path-degree "  # type: ignore[index]
                "{" + ",".join(map(str, self.path_degree)) + "}")


@dataclass(frozen=True)
class HypothesisCheck:
    """One hypothesis of the paper checked on the paths to one output.

    Attributes
    ----------
    name : str
        ``'H1'`` ... ``'H5'`` or ``'S'``.
    holds : bool
        Whether it holds for the nodes on paths to the output.
    witness : str or None
        Where it fails, naming concrete node ids and edges; None when it holds.
    detail : str
        What was checked, or why it holds.
    nodes : tuple of str
        The node ids the witness names (source first), for programs.

    Examples
    --------
    >>> c = HypothesisCheck("H5", False, "node 'z' has two deterministic out-edges", nodes=("z", "p", "q"))
    >>> c.to_dict()["holds"], c.renamed("q", "r").nodes
    (False, ('z', 'p', 'r'))
    """

    name: str
    holds: bool
    witness: str | None = None
    detail: str = ""
    nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.name not in HYPOTHESES:
            raise ValueError(f"unknown hypothesis {self.name!r}; expected one of {', '.join(HYPOTHESES)}")
        if self.holds != (self.witness is None):
            raise ValueError(f"{self.name}: a check that fails needs a witness, one that holds has none")

    def to_dict(self) -> dict:
        return {"holds": self.holds, "witness": self.witness, "detail": self.detail, "nodes": list(self.nodes)}

    def renamed(self, old: str, new: str) -> "HypothesisCheck":
        """The same check for an output ``new`` that is the image of ``old`` under a graph automorphism."""
        quoted_old, quoted_new = f"'{old}'", f"'{new}'"
        witness = None if self.witness is None else self.witness.replace(quoted_old, quoted_new)
        nodes = tuple(new if n == old else n for n in self.nodes)
        return HypothesisCheck(self.name, self.holds, witness, self.detail.replace(quoted_old, quoted_new), nodes)


def derive_label(checks: tuple[HypothesisCheck, ...], node_kinds: frozenset[str]) -> str:
    """The ``'H'`` / ``"H'"`` / ``'outside'`` label of an output, from its checks.

    ``'outside'`` when H2, H4 or H5 fails, or when H1 fails at a node without annealed model
    (max pool, BatchNorm); otherwise ``"H'"`` when an average pool or residual sum lies on a path
    to the output (H1 and H3 are then read in their (H') form), else ``'H'``.  H1 failing only at
    hidden linear nodes and H3 failing do not move the label: the exact engine computes with
    each node's gate (1/2 for a ReLU, 1 without) and each edge's variance, so they change the
    theorems' constant (``theorem_total``), not whether the annealed model describes the network.

    Examples
    --------
    >>> ok = tuple(HypothesisCheck(n, True) for n in HYPOTHESES)
    >>> derive_label(ok, frozenset({"relu", "linear"})), derive_label(ok, frozenset({"relu", "avgpool"}))
    ('H', "H'")
    >>> bad = ok[:4] + (HypothesisCheck("H5", False, "node 'u' ..."),) + ok[5:]
    >>> derive_label(bad, frozenset({"avgpool", "linear"}))
    'outside'
    """
    holds = {c.name: c.holds for c in checks}
    if not (holds["H2"] and holds["H4"] and holds["H5"]) or node_kinds & NO_ANNEALED_KINDS:
        return "outside"
    return "H'" if node_kinds & MERGE_KINDS else "H"


@dataclass(frozen=True, kw_only=True, eq=False)
class OutputAnalysis:
    """Everything the exact engine says about one output ``o``.

    Attributes
    ----------
    name : str
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
    hypotheses : tuple of HypothesisCheck
        H1, H2, H3, H4, H5 and (S), checked on the nodes on paths to ``o`` (:data:`HYPOTHESES` order).
    node_kinds : frozenset of str
        Kinds of the non-input nodes on paths to ``o`` (``o`` included).
    grad_sq : InputValues or None
        The exact annealed ``E(d f_o / d x)^2`` per input: the path sum where H5 holds, with the
        cross terms of deterministic fan-out where it fails (independent edge weights); None where
        there is no annealed model (max pool, BatchNorm) or where shared convolution weights add
        cross terms that are not computed (see ``grad_sq_reason``).
    grad_sq_reason : str or None
        None when ``grad_sq`` is the plain path sum under H5; otherwise how it was obtained, or
        why there is no value.
    path_sum_total : Fraction or None
        ``sum_x sum_p prod c`` over paths, the total of the path sum; equal to ``grad_sq_total``
        where H5 holds, shown for comparison where it fails (it is then not the annealed value).
    pool_degrees : tuple of int or None
        Average-pooling degrees crossed by every path (None if paths cross different ones).
    theorem_total : Fraction or None
        What Theorems 4/5/7/11 state for ``E ||grad_x f_o||^2``: ``2 / prod a_i`` (``1 / prod a_i``
        with a ReLU on the logit); None where no theorem applies (H5 fails, residual sums, hidden
        linear nodes, max pooling, BatchNorm, non-uniform pooling).
    grad_sq_infinite_width, grad_sq_infinite_width_se : float or None
        The infinite-width (NNGP) prediction of ``E ||grad_x f_o||^2``, gate correlations included,
        and its standard error over sampled inputs; None unless requested
        (:func:`initstats.infinite.with_infinite_width`).  Floats: a float64 recursion, not exact.
    infinite_width_exact : bool or None
        Whether that value is exact at every width (one hidden layer, or no merge after a ReLU).
    infinite_width_note : str or None
        Where it is exact or the infinite-width limit, or why it was not computed.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.families import make_arch
    >>> out = analyse(make_arch("fc", 4, width=8)).outputs[0]
    >>> out.name, out.lemma8_sum, out.lemma9_holds, out.hypothesis_set
    ('logits[0]', Fraction(1, 1), True, 'H')
    >>> out.check("H3").holds, out.grad_sq_total, out.theorem_total, out.theorem_holds
    (True, Fraction(2, 1), Fraction(2, 1), True)
    >>> out.to_dict()["grad_sq_total"]
    '2'
    """

    name: str
    d: int
    lemma8_sum: Fraction
    walk: InputValues
    lemma9_holds: bool
    lemma9_max_dev: Fraction
    symmetric: bool
    witness: Witness | None
    hypotheses: tuple[HypothesisCheck, ...]
    node_kinds: frozenset[str]
    grad_sq: InputValues | None
    grad_sq_reason: str | None
    path_sum_total: Fraction | None
    pool_degrees: tuple[int, ...] | None
    theorem_total: Fraction | None
    grad_sq_infinite_width: float | None = None
    grad_sq_infinite_width_se: float | None = None
    infinite_width_exact: bool | None = None
    infinite_width_note: str | None = None

    def __post_init__(self) -> None:
        if tuple(c.name for c in self.hypotheses) != HYPOTHESES:
            raise ValueError(f"hypotheses must be checked in the order {HYPOTHESES}")

    def check(self, name: str) -> HypothesisCheck:
        """The check of hypothesis ``name`` (``'H1'`` ... ``'H5'``, ``'S'``)."""
        for c in self.hypotheses:
            if c.name == name:
                return c
        raise KeyError(f"no hypothesis {name!r}; expected one of {', '.join(HYPOTHESES)}")

    @property
    def hypothesis_set(self) -> str:
        """``'H'``, ``"H'"`` or ``'outside'``, derived from the checks (:func:`derive_label`)."""
        return derive_label(self.hypotheses, self.node_kinds)

    @property
    def h3_holds(self) -> bool:
        """Every random weight on a path to ``o`` has variance ``2 / in-degree``."""
        return self.check("H3").holds

    @property
    def h5_holds(self) -> bool:
        return self.check("H5").holds

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

    def renamed(self, name: str) -> "OutputAnalysis":
        """The analysis of an output ``name`` that is the image of this one under a graph automorphism."""
        checks = tuple(c.renamed(self.name, name) for c in self.hypotheses)
        return replace(self, name=name, hypotheses=checks)

    def to_dict(self) -> dict:
        """JSON-ready summary; fractions as ``"p/q"`` strings."""
        g = self.grad_sq
        out = {
            "lemma8_sum": fraction_text(self.lemma8_sum),
            "symmetric": self.symmetric,
            "lemma9_holds": self.lemma9_holds,
            "grad_sq_total": fraction_text(self.grad_sq_total),
            "grad_sq_reason": self.grad_sq_reason,
            "path_sum_total": fraction_text(self.path_sum_total),
            "witness": None if self.witness is None else self.witness.to_dict(),
            "hypothesis_set": self.hypothesis_set,
            "hypotheses": {c.name: c.to_dict() for c in self.hypotheses},
            "h3_holds": self.h3_holds,
            "lemma9_max_dev": fraction_text(self.lemma9_max_dev),
            "walk_min": fraction_text(self.walk.min),
            "walk_max": fraction_text(self.walk.max),
            "grad_sq_min": None if g is None else fraction_text(g.min),
            "grad_sq_max": None if g is None else fraction_text(g.max),
            "pool_degrees": None if self.pool_degrees is None else list(self.pool_degrees),
            "pooling_uniform": self.pooling_uniform,
            "theorem_total": fraction_text(self.theorem_total),
            "theorem_holds": self.theorem_holds,
        }
        if self.infinite_width_note is not None:        # requested: value (or None) and why
            out |= {"grad_sq_infinite_width": self.grad_sq_infinite_width,
                    "grad_sq_infinite_width_se": self.grad_sq_infinite_width_se,
                    "infinite_width_exact": self.infinite_width_exact,
                    "infinite_width_note": self.infinite_width_note}
        return out


#: quantities listed by :meth:`GraphAnalysis.to_frame`, in order
FRAME_QUANTITIES: tuple[str, ...] = (
    "lemma8_sum", "symmetric", "lemma9_holds", "lemma9_max_dev", "grad_sq_total", "grad_sq_min",
    "grad_sq_max", "grad_sq_reason", "path_sum_total", "theorem_total", "theorem_holds", "hypothesis_set", "h3_holds",
    "pooling_uniform", *(f"{h}_holds" for h in HYPOTHESES), *(f"{h}_witness" for h in HYPOTHESES),
)


@dataclass(frozen=True, kw_only=True, eq=False)
class GraphAnalysis:
    """The exact analysis of one network: one :class:`OutputAnalysis` per output.

    ``name`` is the network's name (an architecture's, or the DAG's ``name`` attribute; ``"arch"``
    in :meth:`to_dict` and the frames).  ``method`` says how it was computed: ``'neuron'`` (the
    neuron-level graph), ``'factorized'`` (channel quotient and per-axis product) or
    ``'quotient'`` (channel quotient only).

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> a.name, a.d, a.method, [o.name for o in a.outputs]
    ('conv', 4, 'factorized', ['logits[0]', 'logits[1]', 'logits[2]'])
    >>> a.to_frame().query("quantity == 'grad_sq_total'")["value"].tolist()
    [Fraction(5, 3), Fraction(5, 3), Fraction(5, 3)]
    >>> print(a.inputs_frame()[["input", "r", "d_r", "grad_sq"]].to_string(index=False))
     input    r d_r grad_sq
    x[0,0] 5/24 5/6     1/3
    x[0,1] 7/24 7/6     1/2
    x[0,2] 7/24 7/6     1/2
    x[0,3] 5/24 5/6     1/3
    """

    name: str
    d: int
    px: int | None
    method: str
    outputs: tuple[OutputAnalysis, ...]

    def output(self, name: str) -> OutputAnalysis:
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(f"no output {name!r}; outputs are {[o.name for o in self.outputs][:5]}...")

    def to_dict(self) -> dict:
        """``{"d": d, "px": px, "arch": ..., "outputs": {id: {...}}}`` (JSON-ready)."""
        return {"d": self.d, "px": self.px, "arch": self.name, "method": self.method,
                "outputs": {o.name: o.to_dict() for o in self.outputs}}

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame: one row per (output, quantity); exact values in ``value`` (Fraction/bool/str)."""
        rows = []
        for out in self.outputs:
            summary = out.to_dict()
            exact = {"lemma8_sum": out.lemma8_sum, "lemma9_max_dev": out.lemma9_max_dev,
                     "grad_sq_total": out.grad_sq_total, "theorem_total": out.theorem_total,
                     "path_sum_total": out.path_sum_total,
                     **{f"{c.name}_holds": c.holds for c in out.hypotheses},
                     **{f"{c.name}_witness": c.witness for c in out.hypotheses},
                     "grad_sq_min": None if out.grad_sq is None else out.grad_sq.min,
                     "grad_sq_max": None if out.grad_sq is None else out.grad_sq.max}
            for q in FRAME_QUANTITIES:
                rows.append({"arch": self.name, "d": self.d, "px": self.px, "output": out.name,
                             "quantity": q, "value": exact[q] if q in exact else summary[q]})
        return pd.DataFrame(rows)

    def inputs_frame(self, output: str | None = None) -> pd.DataFrame:
        """One row per input coordinate: walk probability ``r``, ``d*r`` and annealed ``grad_sq``."""
        out = self.outputs[0] if output is None else self.output(output)
        grad = out.grad_sq.values() if out.grad_sq is not None else itertools.repeat(None)
        rows = [{"arch": self.name, "d": self.d, "output": out.name, "input": str(name), "r": r,
                 "d_r": self.d * r, "grad_sq": gv} for (name, r), gv in zip(out.walk.items(), grad)]
        return pd.DataFrame(rows)
