"""``verify --module ... --empirical-only``: a model measured as it is, without a spec, every claim not covered.

Where the tracer cannot translate a model (or the user does not want it to), the model itself is
measured (:func:`initstats.empirical.direct.measure_module`: ``torch.func`` over fresh He
parameters) with the same statistics, rows, precision rules and seeds as every other run.  Without
a spec there is no exact value, so each size gets a *not-covered* claim with its measurement, and
two or more sizes get the fitted exponents of the gradient norms in ``d``, reported and not tested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from .claims import holm, not_covered_claim
from .errors import OptionError
from .inference import mean_interval
from .scaling import ScalingPoint, scaling_claims
from .verification import Verification, VerifySettings
from .verify import _measure_rows, _precision_warnings, border_rings

__all__ = ["verify_module_measured"]

REASON = ("--empirical-only: the model was measured as it is, not translated into a spec, so there is no exact "
          "value and no claim covers it")


def verify_module_measured(source, dims: Sequence[int] | None = None, *, input_shape: tuple[int, ...] | None = None,
                           options=None, settings: VerifySettings | None = None,
                           progress: Callable[[str, int, int], None] | None = None,
                           measurer: Callable | None = None) -> Verification:
    """Measure a PyTorch model per input size without tracing it (see the module docstring).

    ``measurer`` replaces :func:`initstats.empirical.direct.measure_module` (same signature),
    called once per size in order; a sweep passes one that replays its store.

    Examples
    --------
    >>> from torch import nn
    >>> from initstats.empirical.measure import MeasureOptions
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 4))     # tanh: not traced
    >>> res = verify_module_measured(model, options=MeasureOptions(nets=200, seed=0, device="cpu"))
    >>> [(c.name, c.kind, c.verdict) for c in res.claims]
    [('grad_sq_total[d=10]', 'not-covered', 'not-covered')]
    """
    from .empirical.direct import measure_module
    from .empirical.measure import MeasureOptions
    from .empirical.modules import module_instances

    opt = options or MeasureOptions()
    settings = settings or VerifySettings()
    if settings.infinite_width:
        raise OptionError("--infinite-width needs a spec; it does not combine with --empirical-only")
    instances = module_instances(source, dims, input_shape=input_shape)
    sizes = [shape[1] if len(shape) > 1 else shape[0] for _, shape, _ in instances]
    size_name = "px" if all(len(shape) > 1 for _, shape, _ in instances) else "d"
    if len(set(sizes)) != len(sizes):
        raise OptionError(f"the input sizes {sizes} must not repeat")
    rows, claims, measurements, labels, warnings, points = [], [], [], [], [], []
    for size, (model, shape, name) in zip(sizes, instances):
        label = f"{size_name}={size}"
        groups, _ = border_rings(shape)
        cb = (lambda done, total, _l=label: progress(_l, done, total)) if progress else None
        m = (measurer or measure_module)(model, shape, opt, name=name, progress=cb, coord_groups=groups)
        ci = mean_interval(m.per_net["grad_logit_l2_sq"][:, 0], settings.confidence, seed=opt.seed)
        claims.append(not_covered_claim(f"grad_sq_total[{label}]", f"E||grad f||^2 at d={m.d} (measured only)",
                                        f"measured {ci.mean:.5g} ± {ci.stderr:.2g}; {REASON}", estimate=ci.mean,
                                        stderr=ci.stderr, statistic="grad_logit_l2_sq", d=m.d))
        rows.append(_measure_rows(m, size if size_name == "px" else None, None, None))
        warnings += _precision_warnings(label, m)
        points.append(ScalingPoint(d=m.d, measurement=m, grad_sq=ci, kind="not-covered", exact_map=None))
        measurements.append(m)
        labels.append(label)
    if len(points) >= 2:
        claims += scaling_claims(points, confidence=settings.confidence, detectable=settings.detectable_exponent,
                                 power=settings.power, bridge_tolerance=settings.bridge_tolerance,
                                 exponent_tolerance=settings.exponent_tolerance, reason=REASON)
    if settings.holm:
        claims = list(holm(claims, settings.confidence))
    return Verification(rows=pd.concat(rows, ignore_index=True), claims=tuple(claims), measurements=tuple(measurements),
                        analyses=(), labels=tuple(labels), warnings=tuple(warnings))
