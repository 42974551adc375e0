"""The annealed gradient prediction and what Theorems 4, 5, 7 and 11 state.

Under (H) -- or (H') with average pools and residual sums -- cross terms between distinct paths
vanish (H4, and H5: no node has two deterministic out-edges that merge again; where H5 fails see
:mod:`initstats.exact.crossterms`) and ``E[(d f_o/d x)^2] = sum over paths p from x to o of prod
over edges (u->v) of c(u->v)``, with ``c = var/2`` into a ReLU node (H1), ``var`` into a linear node, ``1/d_v^2`` into an
average-pooling node and ``1`` into a residual sum.  Max pooling and BatchNorm have no annealed
coefficient.

With He variances (H3: ``var = 2/d_v``), ReLU hidden nodes and linear logits, the product along
a path is ``2 prod 1/d_v prod 1/a_i`` for the pooling degrees ``a_i`` it crosses, so Lemma 8 gives
``E||grad f_o||^2 = 2/prod a_i`` when every path crosses the same pooling degrees (Theorems 4, 5,
Corollary 6 without pooling, Theorems 7, 11 with it), and ``2/(d prod a_i)`` per coordinate under
(S).  A ReLU on the logit (H1 taken literally) halves it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

__all__ = ["edge_coefficient", "theorem_total", "COVERED_KINDS"]

#: kinds with an annealed coefficient on their incoming edges
COVERED_KINDS = frozenset({"relu", "linear", "avgpool", "sum", "sumrelu"})


def edge_coefficient(kind: str, var: Fraction, in_degree: int) -> Fraction | None:
    """Annealed coefficient ``c(u->v)`` of an edge into a node of ``kind`` (None if not covered).

    Examples
    --------
    >>> edge_coefficient("relu", Fraction(2, 3), 3), edge_coefficient("linear", Fraction(2, 3), 3)
    (Fraction(1, 3), Fraction(2, 3))
    >>> edge_coefficient("avgpool", Fraction(0), 4), edge_coefficient("maxpool", Fraction(0), 4)
    (Fraction(1, 16), None)
    """
    if kind == "relu":
        return var / 2
    if kind == "linear":
        return var
    if kind == "avgpool":
        return Fraction(1, in_degree * in_degree)
    if kind == "sum":
        return Fraction(1)
    if kind == "sumrelu":  # weight 1, then the ReLU's gate
        return Fraction(1, 2)
    return None


def theorem_total(output_kind: str, hidden_kinds: Iterable[str], pool_degrees: tuple[int, ...] | None
                  ) -> Fraction | None:
    """``2/prod a_i`` (or ``1/prod a_i`` with a ReLU logit) where a theorem applies, else None.

    A theorem applies when the hidden nodes on paths to the output are ReLU or average-pooling
    nodes, the output is linear or ReLU, and every path crosses the same pooling degrees; the
    callers also give no theorem value where H5 fails.

    Examples
    --------
    >>> theorem_total("linear", {"relu"}, ()), theorem_total("linear", {"relu", "avgpool"}, (4,))
    (Fraction(2, 1), Fraction(1, 2))
    >>> theorem_total("relu", {"relu"}, ()), theorem_total("linear", {"relu", "sum"}, ()) is None
    (Fraction(1, 1), True)
    """
    if pool_degrees is None or output_kind not in ("linear", "relu"):
        return None
    if not set(hidden_kinds) <= {"relu", "avgpool"}:
        return None
    constant = 2 if output_kind == "linear" else 1
    return Fraction(constant, math.prod(pool_degrees))
