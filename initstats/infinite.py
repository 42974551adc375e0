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

import numpy as np

from .claims import Claim, exact_claim, excess_claim
from .errors import ExactLimitError, UnsupportedLayerError
from .exact import GraphAnalysis, OutputAnalysis
from .spec import Arch

__all__ = ["with_infinite_width", "infinite_width_claim"]


def with_infinite_width(analysis: GraphAnalysis, arch: Arch, *, n_inputs: int = 8, seed: int = 0,
                        init: str = "he", coordinates: int | str = "auto") -> GraphAnalysis:
    """``analysis`` with the infinite-width prediction on every output.

    Where no deterministic node merges paths after a ReLU
    (:func:`~initstats.empirical.infinite_width.equals_annealed`), the prediction *is* the exact
    annealed value for every input at every width: each output gets its own ``grad_sq_total``
    (no recursion, no standard error), at any size.  Otherwise the kernel recursion runs, with the
    annealed map as control variate where it samples coordinates.

    Parameters
    ----------
    analysis : GraphAnalysis
        The exact analysis of ``arch``.
    arch : Arch
        The architecture (the prediction needs its spec, not a node-link graph).
    n_inputs, seed, init, coordinates
        Passed to :func:`~initstats.empirical.infinite_width.infinite_width`.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(8), Dense(2, activation=None)))
    >>> out = with_infinite_width(analyse(arch), arch, n_inputs=4).outputs[0]
    >>> out.grad_sq_total, round(out.grad_sq_infinite_width, 3), out.infinite_width_exact  # annealed 2/64
    (Fraction(1, 32), 0.034, True)
    >>> from initstats.families import make_arch
    >>> cnn = make_arch("cnn", 64)                       # no merge: the exact annealed value, at once
    >>> out = with_infinite_width(analyse(cnn), cnn).outputs[0]
    >>> out.grad_sq_infinite_width == float(out.grad_sq_total), out.grad_sq_infinite_width_se
    (True, None)
    """
    from .empirical.infinite_width import equals_annealed, infinite_width

    try:
        if equals_annealed(arch) and all(o.grad_sq_total is not None for o in analysis.outputs):
            note = ("exact at every width: no deterministic merge (average pool, residual sum) after a ReLU, so it "
                    "equals the exact annealed path sum for every x (THEORY.md 4c); taken from the exact engine")
            return replace(analysis, outputs=tuple(replace(
                o, grad_sq_infinite_width=float(o.grad_sq_total), grad_sq_infinite_width_se=None,
                infinite_width_exact=True, infinite_width_note=note) for o in analysis.outputs))
        first = analysis.outputs[0].grad_sq  # the annealed map: a control variate for sampled coordinates
        control = None if first is None else np.asarray(first.to_numpy(), float).reshape(arch.input_shape)
        res = infinite_width(arch, n_inputs=n_inputs, seed=seed, init=init, coordinates=coordinates,
                             control=control)
    except (UnsupportedLayerError, ExactLimitError) as err:
        fields = {"infinite_width_note": f"not computed: {err}"}
    else:
        note = ("exact at every width: " if res.exact else "the infinite-width limit: ") + res.exact_reason
        sampled = ("" if res.coordinate_fraction == 1 else
                   f"; input coordinates sampled, 1 in {round(1 / res.coordinate_fraction)} per input, the "
                   f"standard error includes it")
        fields = {"grad_sq_infinite_width": res.grad_sq_total, "grad_sq_infinite_width_se": res.grad_sq_total_se,
                  "infinite_width_exact": res.exact,
                  "infinite_width_note": f"{note} ({res.n_inputs} inputs x ~ N(0, I){sampled})"}
    return replace(analysis, outputs=tuple(replace(o, **fields) for o in analysis.outputs))


def infinite_width_claim(label: str, out: OutputAnalysis, values: np.ndarray, *, confidence: float = 0.99,
                         detectable: float = 0.05, power: float = 0.8, tolerance: float = 0.1, seed: int = 0,
                         **fields) -> Claim | None:
    """The measured ``E ||grad f||^2`` (per-network ``values``) against the infinite-width prediction.

    Where the prediction is exact at every width (one hidden layer, say) this is an exact claim,
    which fails when the measurement differs; otherwise it is the infinite-width limit and the claim
    reports the finite-width deviation ``measured / predicted - 1`` with its interval, tested for
    equivalence within ``tolerance`` (kind ``excess``).  The prediction's own standard error over
    inputs (and sampled coordinates) widens the interval and is stated in the detail; None when no
    prediction was computed.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, AvgPool, Conv, Dense
    >>> arch = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(8), Dense(2, activation=None)))
    >>> out = with_infinite_width(analyse(arch), arch, n_inputs=4).outputs[0]
    >>> rng = np.random.default_rng(0)
    >>> good = rng.gamma(4.0, out.grad_sq_infinite_width / 4.0, size=4000)     # mean: the prediction
    >>> infinite_width_claim("px=8", out, good).verdict
    'pass'
    >>> infinite_width_claim("px=8", out, good * 0.92).verdict                  # 8 % below: rejected
    'fail'
    """
    iw = out.grad_sq_infinite_width
    if iw is None:
        return None
    se = out.grad_sq_infinite_width_se
    d = out.d
    basis = f"the infinite-width prediction {iw:.6g}" + ("" if not se else f" (± {se:.2g} over inputs)")
    name = f"grad_sq_infinite_width[{label}]"
    fields = {"statistic": "grad_logit_l2_sq", "d": d, **fields}
    if out.infinite_width_exact:
        claim = exact_claim(name, f"E||grad f||^2 at d={d} equals {basis}, exact at every width",
                            predicted=iw, values=values, confidence=confidence, detectable=detectable, power=power,
                            seed=seed, predicted_se=se, **fields)
    else:
        claim = excess_claim(name, f"E||grad f||^2 at d={d} is within {tolerance:.0%} of {basis}", predicted=iw,
                             values=values, tolerance=tolerance, confidence=confidence, seed=seed, predicted_se=se,
                             reference="infinite-width",
                             cause="the infinite-width limit: finite width adds an O(1/width) correction", **fields)
    note = f"; {out.infinite_width_note}"
    return replace(claim, detail=claim.detail + note)
