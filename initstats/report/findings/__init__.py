"""The report's findings: sentences selected by code from verdicts and exact values.

Every selector returns a :class:`Finding` whose wording, and whose relation to the paper, follow
from its input frames; the opposite data give the opposite wording.  :func:`select_findings`
runs them all on one report's results, in the order of the pages.
"""

from __future__ import annotations

from ...claims import z_value
from ..experiments import (ExactResults, Fig3Result, Fig4Result, Lemma2Result, ModelsResult, PoolingResult, Thm45Result,
                           WidthResult)
from . import exact, measured, models, width as width_findings
from .models import models_findings
from .width import finite_width
from .base import RELATION_LABELS, RELATIONS, Finding

__all__ = ["Finding", "RELATIONS", "RELATION_LABELS", "select_findings", "exact", "measured", "models",
           "models_findings", "width_findings", "finite_width"]


def select_findings(exact_results: ExactResults, thm45: Thm45Result, pooling: PoolingResult, fig3: Fig3Result,
                    fig4: Fig4Result, lemma2: Lemma2Result, *, confidence: float,
                    detectable: float = 0.05, ratio_tolerance: float = 0.1,
                    models: ModelsResult | None = None, width: WidthResult | None = None) -> list[Finding]:
    """All findings of one report run, in page order.

    Parameters
    ----------
    exact_results, thm45, pooling, fig3, fig4, lemma2
        The experiments' results.
    confidence : float
        Confidence level of the intervals the selectors form themselves (Figure 4's differences,
        Lemma 2's ratios); the claims' own intervals come with their verdicts.
    detectable : float
        Relative size of an excess over the annealed value below which an interval around 0
        counts as agreement (wider intervals: the data do not decide).
    ratio_tolerance : float
        How close the first-order damage must be to the true one (Lemma 2).
    models : ModelsResult, optional
        The standard models' results: one finding per model, after Lemma 2's.
    width : WidthResult, optional
        The finite-width trend: one finding after the pooling one.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report import experiments as ex
    >>> from initstats.report.experiments.exact import alias_frame, atlas_frame, coverage_frame, zero_padding_frame
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> exact = ex.ExactResults(atlas_frame(16), coverage_frame(16), alias_frame(64, dilation=2),
    ...                         zero_padding_frame(small.dims))
    >>> thm45 = ex.run_theorems_4_5(small, options, settings)
    >>> pooling = ex.run_pooling(small, options, settings)
    >>> fig3, fig4 = ex.run_figure3(small, options, settings, thm45), ex.run_figure4(small, options, settings)
    >>> findings = select_findings(exact, thm45, pooling, fig3, fig4, ex.run_lemma2(small, options, settings),
    ...                            confidence=settings.confidence)
    >>> [f.key for f in findings]
    ['lemma8', 'strided-symmetry', 'padding', 'aliasing', 'theorems-fc', 'zero-padding', 'pooling', 'figure3',
     'figure4-order', 'figure4-theory', 'lemma2']
    >>> all(f.relation in RELATIONS for f in findings), findings[0].relation
    (True, 'agrees')
    """
    z = z_value(confidence)
    return [
        exact.lemma8(exact_results.atlas),
        exact.strided_symmetry(exact_results.atlas, exact_results.coverage),
        exact.padding(exact_results.atlas),
        exact.aliasing(exact_results.alias),
        measured.theorems_fc(thm45.totals, thm45.verdicts),
        measured.zero_padding(exact_results.zero_padding, thm45.totals, thm45.verdicts),
        measured.pooling(pooling.configs, pooling.fits, detectable),
        *([] if width is None else [finite_width(width.frame, width.claims)]),
        measured.figure3(fig3.exponents),
        measured.figure4_order(fig4.rows, z),
        measured.figure4_theory(fig4.rows, detectable),
        measured.lemma2(lemma2.curve, lemma2.scaling, z, ratio_tolerance),
        *([] if models is None else models_findings(models.cases, models.rows, models.exponents,
                                                     models.errors)),
    ]
