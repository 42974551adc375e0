"""The infinite-width prediction next to the annealed one: exact analyses gain its fields.

:func:`initstats.empirical.infinite_width.infinite_width` computes the NNGP prediction of
``E ||grad_x f||^2`` (float64, averaged over sampled inputs); :func:`with_infinite_width` puts it on
every output of a :class:`~initstats.exact.GraphAnalysis` (``grad_sq_infinite_width``, its standard
error, whether it is exact at every width, and a note), so ``initstats graph --infinite-width N``
reports it next to ``grad_sq_total``.  Every logit of a family or traced model has the same
distribution (their weights are exchangeable), so logit 0's value serves all of them.  Networks the
recursion does not cover (max pooling, BatchNorm, some residual layouts) or that exceed its memory
budget keep ``None`` with the reason in ``infinite_width_note``: nothing is approximated silently.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import ExactLimitError, UnsupportedLayerError
from .exact import GraphAnalysis
from .spec import Arch

__all__ = ["with_infinite_width"]


def with_infinite_width(analysis: GraphAnalysis, arch: Arch, *, n_inputs: int = 8, seed: int = 0,
                        init: str = "he") -> GraphAnalysis:
    """``analysis`` with the infinite-width prediction on every output.

    Parameters
    ----------
    analysis : GraphAnalysis
        The exact analysis of ``arch``.
    arch : Arch
        The architecture (the prediction needs its spec, not a node-link graph).
    n_inputs, seed, init
        Passed to :func:`~initstats.empirical.infinite_width.infinite_width`.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(8), Dense(2, activation=None)))
    >>> out = with_infinite_width(analyse(arch), arch, n_inputs=4).outputs[0]
    >>> out.grad_sq_total, round(out.grad_sq_infinite_width, 3), out.infinite_width_exact  # annealed 2/64
    (Fraction(1, 32), 0.034, True)
    """
    from .empirical.infinite_width import infinite_width

    try:
        res = infinite_width(arch, n_inputs=n_inputs, seed=seed, init=init)
    except (UnsupportedLayerError, ExactLimitError) as err:
        fields = {"infinite_width_note": f"not computed: {err}"}
    else:
        note = ("exact at every width: " if res.exact else "the infinite-width limit: ") + res.exact_reason
        fields = {"grad_sq_infinite_width": res.grad_sq_total, "grad_sq_infinite_width_se": res.grad_sq_total_se,
                  "infinite_width_exact": res.exact,
                  "infinite_width_note": f"{note} ({res.n_inputs} inputs x ~ N(0, I))"}
    return replace(analysis, outputs=tuple(replace(o, **fields) for o in analysis.outputs))
