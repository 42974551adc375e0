"""The report's pages: experiments' frames rendered as Markdown tables and figures.

Each ``*_page`` function writes one page through :class:`~initstats.report.core.ReportWriter`:
a paragraph saying what was run (no result is stated there), the tables and figures of its
frames, and a *Reading* made of the findings selected for that page
(:mod:`initstats.report.findings`).  Column names are renamed for display here only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._format import percent
from ..claims import SCALING_LAWS
from .core import Page, ReportWriter
from .experiments import ExactResults, Fig3Result, Fig4Result, Lemma2Result, PoolingResult, Thm45Result, WidthResult
from .findings import RELATIONS, Finding
from .profiles import Profile

__all__ = ["lemmas_page", "theorems_4_5_page", "theorems_7_11_page", "paper_figures_page", "lemma2_page",
           "findings_page"]

_VERDICT_COLS = {"estimate": "fitted exponent", "stderr": "SE", "ci_low": "CI low", "ci_high": "CI high",
                 "predicted": "predicted exponent", "tolerance": "tolerance", "verdict": "verdict"}


def _reading(page: Page, findings: Sequence[Finding]) -> None:
    mine = [f for f in findings if f.page == page.slug]
    if mine:
        page.text("**Reading** (selected from this run's verdicts and exact values; see [findings](findings.md)).\n\n"
                  + "\n\n".join(f.markdown(link=False) for f in mine))


def lemmas_page(writer: ReportWriter, exact: ExactResults, findings: Sequence[Finding]) -> None:
    """Lemma 8, (S), Lemma 9: the exact atlas, window coverage, and the aliasing check.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments.exact import alias_frame, atlas_frame, coverage_frame, zero_padding_frame
    >>> exact = ExactResults(atlas_frame(16), coverage_frame(16), alias_frame(64, dilation=2),
    ...                      zero_padding_frame(small.dims))
    >>> from initstats.report.findings.exact import lemma8
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     lemmas_page(writer, exact, [lemma8(exact.atlas)])
    ...     page = (writer.root / "lemmas.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> written
    ['data/lemmas_alias.csv', 'data/lemmas_atlas.csv', 'data/lemmas_coverage.csv', 'lemmas.md']
    >>> page.splitlines()[0], page.count("<!-- table: data/"), "**Lemma 8.** The exact sum" in page
    ('# Lemma 8, symmetry (S) and Lemma 9: an exact atlas', 3, True)
    """
    page = Page("lemmas", "Lemma 8, symmetry (S) and Lemma 9: an exact atlas")
    page.text("""Exact results of the graph engine (`initstats graph`) on 32x32x3 inputs: integers and fractions,
no sampling.  For each architecture: the number of convolutions, Lemma 8's sum of walk probabilities
`sum_x r(x)`, whether assumption (S) holds relative to the first logit (every input has the same multiset
of path-degrees), the first witness when it does not (two inputs and a path-degree on which their path
counts differ), whether Lemma 9 (`r(x) = 1/d`) holds and the largest deviation `max_x |d r(x) - 1|`, how
many inputs have a path to the logit, whether H3 holds (every random weight has variance 2/in-degree),
and the exact annealed `E||grad f||^2` against what Theorems 4/5/7 state.  `conv x2` is two identical
convolutions of 16 channels and a dense head; kernel-3 layers pad `dilation` pixels, kernel-2 layers
none; *windows per input* counts the windows of one such layer that read an input position, per axis.""")
    atlas = exact.atlas.copy()
    atlas["windows per input"] = [None if pd.isna(lo) else (str(int(lo)) if lo == hi else f"{int(lo)}..{int(hi)}")
                                  for lo, hi in zip(atlas["windows_min"], atlas["windows_max"])]
    atlas = atlas.drop(columns=["windows_min", "windows_max"]).rename(columns={
        "merges": "pooling / sums", "lemma8_sum": "Lemma 8 sum r", "symmetric": "(S)", "lemma9_holds": "Lemma 9",
        "lemma9_max_dev": "max |d r - 1|", "inputs_reached": "inputs reached", "h3_holds": "H3",
        "grad_sq_total": "E|grad f|^2 (exact)", "theorem_total": "theorem", "hypothesis": "engine label"})
    writer.table(page, "lemmas_atlas", atlas)
    writer.table(page, "lemmas_coverage", exact.coverage.rename(columns={
        "n": "input size", "even_min": "even: min windows", "even_max": "even: max windows",
        "odd_min": "odd: min windows", "odd_max": "odd: max windows", "uncovered": "positions read by no window"}),
        "**Windows per input position** of one stride-2 layer along one axis, by the parity of the position "
        "(positions counted from 0).")
    writer.table(page, "lemmas_alias", exact.alias.rename(columns={
        "strided_layers": "stride-2 3x3 layers", "inputs_reached": "inputs with a path",
        "inputs_unreached": "inputs without a path"}),
        "**Figure 3's dilated network with its downsampling layers as stride-2 3x3 convolutions** (16 channels, "
        "zero padding, exact annealed gradient per input).")
    _reading(page, findings)
    writer.page(page)


def theorems_4_5_page(writer: ReportWriter, profile: Profile, thm45: Thm45Result, exact: ExactResults,
                      findings: Sequence[Finding], confidence: float) -> None:
    """Theorems 4, 5 and Corollary 6 across d, and the exact values of the zero-padded family.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments.exact import alias_frame, atlas_frame, coverage_frame, zero_padding_frame
    >>> exact = ExactResults(atlas_frame(16), coverage_frame(16), alias_frame(64, dilation=2),
    ...                      zero_padding_frame(small.dims))
    >>> from initstats.report.experiments import run_theorems_4_5
    >>> thm45 = run_theorems_4_5(small, options, settings)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     theorems_4_5_page(writer, small, thm45, exact, [], settings.confidence)
    ...     page = (writer.root / "theorems-4-5.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> written
    ['data/thm45_exponents.csv', 'data/thm45_scaling_cnn_fig.csv', 'data/thm45_scaling_fc_fig.csv',
     'data/thm45_totals.csv', 'data/thm45_zero_padding.csv', 'figures/thm45_scaling_cnn_fig.png',
     'figures/thm45_scaling_fc_fig.png', 'theorems-4-5.md']
    >>> "He-initialised networks drawn at 8, 16 px" in page
    True
    """
    page = Page("theorems-4-5", "Theorems 4, 5 and Corollary 6: gradient norms against the input dimension")
    page.text(f"""He-initialised networks drawn at {', '.join(map(str, profile.dims))} px (d = 3 px^2), until the relative
standard error of `E||grad f||^2` is {profile.rel_se:.1%} (at most {profile.max_nets} networks; means and standard errors
over independent networks, one input each).  `fc`: {profile.fc_width}-unit ReLU layers; `cnn`: the
Figure 3 topology with {profile.channels} channels, zero padding (the family default) and 2x2 stride-2
downsampling.  The prediction is the exact annealed value of the graph engine, per-edge variances included.""")
    totals = thm45.totals.assign(relative=thm45.totals["mean"] / thm45.totals["predicted"] - 1).rename(columns={
        "mean": "E|grad f|^2 measured", "se": "SE", "predicted": "exact prediction", "relative": "relative difference",
        "map_verdict": "per-coordinate map verdict"})
    writer.table(page, "thm45_totals", totals,
                 f"**E||grad f||^2 against the exact prediction** (exact claims at {percent(confidence)}; the per-coordinate "
                 "map is tested on rings of pixels by distance to the border).")
    v = thm45.verdicts
    exps = v[v["kind"] == "scaling"][["family", "statistic", *_VERDICT_COLS]].rename(columns=_VERDICT_COLS)
    writer.table(page, "thm45_exponents", exps,
                 "**Fitted exponents in d** (weighted least squares on log-log; equivalence test within the tolerance; "
                 "`grad_loss_linf` is divided by sqrt(2 ln d) first, the size of the maximum of d Gaussian coordinates).")
    zero = exact.zero_padding.rename(columns={
        "family_dilation": "family dilation", "exact_family": "exact, family (zero padding)",
        "fixed_dilation": "fixed dilation", "exact_fixed": "exact, fixed dilation (zero padding)",
        "exact_circular": "exact, family (circular padding)", "theorem_total": "theorem", "h3_holds": "H3",
        "symmetric": "(S)", "hypothesis": "engine label", "note": "hypotheses"})
    writer.table(page, "thm45_zero_padding", zero,
                 "**Exact annealed E||grad f||^2 of the `cnn` family** with its own dilation (max(1, px/32)) and "
                 "at a fixed dilation, zero and circular padding.")
    from ..plots import plot_scaling

    for family in ("fc", "cnn"):
        sub = thm45.plot[thm45.plot["family"] == family]
        fig = plot_scaling(sub, {k: SCALING_LAWS[k][0] for k in ("grad_logit_l2", "grad_logit_l1", "grad_loss_l1",
                                                                   "grad_loss_linf")},
                           title=f"{family}: gradient norms against d (dashed: theory's slope)")
        writer.figure(page, f"thm45_scaling_{family}_fig", fig,
                      sub[["family", "px", "d", "statistic", "mean", "stderr", "n_nets"]],
                      f"{family}: measured norms (mean ± 2 SE over networks) against d on log-log axes")
    _reading(page, findings)
    writer.page(page)


def theorems_7_11_page(writer: ReportWriter, profile: Profile, pooling: PoolingResult, findings: Sequence[Finding],
                       confidence: float, width: WidthResult | None = None) -> None:
    """Theorems 7 and 11: measured against annealed per pooling network, and the exponent in a.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_pooling
    >>> pooling = run_pooling(small, options, settings)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     theorems_7_11_page(writer, small, pooling, [], settings.confidence)
    ...     page = (writer.root / "theorems-7-11.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> written
    ['data/thm711_exponent.csv', 'data/thm711_pooling.csv', 'data/thm711_pooling_fig.csv',
     'figures/thm711_pooling_fig.png', 'theorems-7-11.md']
    >>> "(16 channels, 4x4x3 inputs)" in page
    True
    """
    side = profile.pool_input
    page = Page("theorems-7-11", "Theorems 7 and 11: average pooling")
    page.text(f"""Circular 3x3 convolutions (16 channels, {side}x{side}x3 inputs) with k x k average pools of degree
a = k^2 and a dense head; *convolutions* counts every convolution of the network.  Theorems 7/11 state
`E||grad f||^2 = 2 / prod a_i`, the exact *annealed* value.  A pooling node merges paths through
deterministic weights, where THEORY.md section 4c's argument for real networks does not apply; the table
gives the measured excess over the annealed value with its {percent(confidence)} interval, and the exponent in a
is tested as a scaling law.  Next to them, the *infinite-width* (NNGP) prediction keeps the correlation of the
gates a pool merges (float64 recursion over pairs of positions, averaged over inputs x ~ N(0, I)); it is exact
at every width with one hidden convolution (*exact* column), the infinite-width limit otherwise.  The
*residual* is the measurement over it, minus 1.""")
    configs = pooling.configs.rename(columns={
        "degree": "degree a = prod k^2", "pool_layers": "layers of pooling", "annealed": "annealed 2/prod a",
        "mean": "measured", "se": "SE", "excess_se": "excess SE", "excess_ci_low": "excess CI low",
        "excess_ci_high": "excess CI high", "infinite_width": "infinite width", "infinite_width_se": "inf. width SE",
        "infinite_width_exact": "exact", "residual_se": "residual SE", "residual_ci_low": "residual CI low",
        "residual_ci_high": "residual CI high"})
    writer.table(page, "thm711_pooling", configs, "**Measured against the annealed and the infinite-width "
                 "predictions**, per pooling network.")
    fits = pooling.fits[["convolutions", "points", "a_min", "a_max", *_VERDICT_COLS]].rename(columns=_VERDICT_COLS)
    writer.table(page, "thm711_exponent", fits, "**Fitted exponent of E||grad f||^2 in a** (Theorems 7/11 predict -1).")
    from ..plots import plot_lines

    plot = pooling.configs[pooling.configs["pool_layers"] <= 1].copy()
    plot["network"] = plot["convolutions"].map(lambda c: f"{c} conv + pool")
    a_grid = np.geomspace(1, max(plot["degree"]), 50)
    fig = plot_lines(plot, "degree", "mean", hue="network", yerr="se",
                     reference=(a_grid, 2 / a_grid, "2/a (Theorem 7, annealed)"), xlabel="pooling degree a",
                     ylabel="E||grad f||^2", title="average pooling: measured against 2/a")
    writer.figure(page, "thm711_pooling_fig", fig, plot[["network", "degree", "mean", "se", "annealed"]],
                  "E||grad f||^2 against the pooling degree a (mean ± 2 SE)")
    if width is not None:
        _width_section(writer, page, profile, width)
    _reading(page, findings)
    writer.page(page)


def _width_section(writer: ReportWriter, page: Page, profile: Profile, width: WidthResult) -> None:
    side, widths = profile.width_trend_input, ", ".join(map(str, profile.width_trend_widths))
    page.text(f"""## Finite width

Deeper than one hidden convolution the infinite-width value is a limit.  Two circular 3x3 convolutions then a
k x k average pool ({side}x{side}x3 inputs, dense head) are measured at widths {widths} ({profile.width_trend_nets}
networks each); the deviation from a reference, measured/reference - 1, is fitted against 1/width (weighted least
squares; `initstats.width_trend`) and its intercept, the deviation extrapolated to infinite width, is tested
against 0, for the infinite-width value and for the annealed one.""")
    frame = width.frame.rename(columns={"mean": "measured", "se": "SE", "infinite_width": "infinite width",
                                        "infinite_width_se": "inf. width SE", "deviation_se": "deviation SE",
                                        "fitted": "fitted a + b/width"})
    writer.table(page, "thm711_width", frame, "**Deviation from the infinite-width value** per network and width.")
    claims = width.claims[["network", "claim", "verdict", "estimate", "stderr", "ci_low", "ci_high", "detail"]]
    writer.table(page, "thm711_width_claims", claims.rename(columns={
        "estimate": "deviation at infinite width", "stderr": "SE", "ci_low": "CI low", "ci_high": "CI high"}),
        "**Extrapolated to infinite width**, against each reference.")


def paper_figures_page(writer: ReportWriter, profile: Profile, fig3: Fig3Result, fig4: Fig4Result,
                       findings: Sequence[Finding]) -> None:
    """The paper's Figures 3 and 4 at initialisation.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_figure3, run_figure4, run_theorems_4_5
    >>> fig3 = run_figure3(small, options, settings, run_theorems_4_5(small, options, settings))
    >>> fig4 = run_figure4(small, options, settings)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     paper_figures_page(writer, small, fig3, fig4, [])
    ...     page = (writer.root / "paper-figures.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> [name for name in written if name.startswith("figures/")]
    ['figures/fig3_loss_l1_fig.png', 'figures/fig4_pooling_fig.png']
    >>> page.count("<!-- table: data/")
    3
    """
    page = Page("paper-figures", "The paper's Figures 3 and 4 at initialisation")
    page.text(f"""**Figure 3 network** (8 dilated 3x3 conv layers, dilations 1/2/4/8 at 32/64/128/256 px, downsampling after
layers 2, 4, 6, {profile.channels} channels): the `cnn` family (2x2 stride-2 convolutions, dense head, zero
padding, no BatchNorm; its runs are those of Theorems 4/5) and the paper's literal network (2x2 max pooling,
BatchNorm after every convolution with batch statistics over 16 inputs per network, global max pool, dense
head).  The *hypotheses* column is the exact engine's analysis.  The paper's claim (after training) is that
`E||grad L||_1` grows like sqrt(d).""")
    rows = fig3.rows.assign(sqrt_d=np.sqrt(fig3.rows["d"].astype(float)))
    rows = rows[["network", "description", "px", "d", "sqrt_d", "mean", "se", "networks", "inputs_per_net",
                 "note"]].rename(columns={
        "sqrt_d": "sqrt d", "mean": "E|grad L|_1", "se": "SE", "inputs_per_net": "inputs per network",
        "note": "hypotheses"})
    writer.table(page, "fig3_loss_l1", rows, "**E||grad L||_1 against d**, Figure 3 networks at initialisation.")
    exps = fig3.exponents.rename(columns={**_VERDICT_COLS, "estimate": "fitted exponent in d",
                                          "predicted": "theory", "note": "hypotheses"})
    writer.table(page, "fig3_exponents", exps, "**Fitted exponents** of E||grad L||_1 in d (sqrt(d) means 0.5).")
    from ..plots import plot_lines

    fig = plot_lines(rows, "sqrt d", "E|grad L|_1", hue="network", yerr="SE", logx=False, logy=False,
                     xlabel="sqrt(d)", ylabel="E||grad L||_1", title="Figure 3 networks at initialisation")
    writer.figure(page, "fig3_loss_l1_fig", fig, rows, "E||grad L||_1 against sqrt(d) (mean ± 2 SE over networks)")
    page.text(f"""**Figure 4 comparison** (6 conv blocks of the `cnn-avgpool` family, zero padding, a 2x2 downsampling after
every second block: average pooling, a strided 2x2 convolution or max pooling; global average pool; dense
head; {profile.fig4_nets} networks each).  The paper reports, after training on CIFAR-10, that average pooling
gives the smallest gradients.  *theorem* is 2/prod a_i over the pooling degrees on every path, *annealed*
the exact value with per-edge variances.""")
    f4 = fig4.rows.rename(columns={"l1_mean": "E|grad L|_1", "l1_se": "SE (L1)", "sq_mean": "E|grad f|^2",
                                   "sq_se": "SE (f)", "annealed": "annealed E|grad f|^2", "pool_degrees": "a_i",
                                   "hypothesis": "engine label", "note": "hypotheses", "excess_se": "excess SE",
                                   "excess_ci_low": "excess CI low", "excess_ci_high": "excess CI high"})
    writer.table(page, "fig4_pooling", f4, "**Average, strided and max pooling** at initialisation.")
    fig = plot_lines(f4, "d", "E|grad L|_1", hue="downsampling", yerr="SE (L1)", ylabel="E||grad L||_1",
                     title="Figure 4 networks at initialisation")
    writer.figure(page, "fig4_pooling_fig", fig, f4[["px", "d", "downsampling", "E|grad L|_1", "SE (L1)"]],
                  "E||grad L||_1 against d for average, strided and max pooling (mean ± 2 SE)")
    _reading(page, findings)
    writer.page(page)


def lemma2_page(writer: ReportWriter, profile: Profile, lemma2: Lemma2Result, findings: Sequence[Finding]) -> None:
    """Lemma 2 against a one-step attack: against eps, and against d at a fixed eps.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50, attack_px=8, attack_eps=(1e-3, 1e-2),
    ...                 attack_nets=50, attack_dims=(8, 16))                  # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_lemma2
    >>> lemma2 = run_lemma2(small, options, settings)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     lemma2_page(writer, small, lemma2, [])
    ...     page = (writer.root / "lemma2.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> written
    ['data/lemma2_dimension.csv', 'data/lemma2_eps.csv', 'data/lemma2_eps_fig.csv', 'data/lemma2_exponent.csv',
     'figures/lemma2_eps_fig.png', 'lemma2.md']
    >>> "**Vulnerability against d** at fixed eps_inf = 0.001." in page
    True
    """
    page = Page("lemma2", "Lemma 2 at initialisation: first-order damage against a real one-step attack")
    page.text(f"""For each network and input (x ~ N(0, I), random label), the one-step l_inf attack
`x + eps sign(grad_x L)` (FGSM) raises the loss by `L(x + eps sign g) - L(x)`; Lemma 2 predicts
`eps ||grad_x L||_1` to first order.  `cnn` family ({profile.channels} channels, zero padding, dense weights drawn
explicitly), {profile.attack_nets} networks per point; means and standard errors over networks; *ratio* is the per-network
ratio true / first-order, averaged.""")
    curve = lemma2.curve
    writer.table(page, "lemma2_eps", curve[["px", "d", "eps", "true_mean", "true_se", "first_order_mean",
                                            "first_order_se", "ratio_mean", "ratio_se", "n_nets"]],
                 f"**Against eps** at {profile.attack_px} px.")
    from ..plots import plot_lines

    long = pd.concat([curve.assign(kind="true increase", value=curve["true_mean"], se=curve["true_se"]),
                      curve.assign(kind="first order eps*|grad L|_1", value=curve["first_order_mean"],
                                   se=curve["first_order_se"])])
    fig = plot_lines(long, "eps", "value", hue="kind", yerr="se", xlabel="eps (l_inf)", ylabel="loss increase",
                     title=f"one-step attack at {profile.attack_px} px")
    writer.figure(page, "lemma2_eps_fig", fig, long[["eps", "kind", "value", "se"]],
                  "true and first-order loss increase against eps (mean ± 2 SE)")
    writer.table(page, "lemma2_dimension", lemma2.dimension[["px", "d", "eps", "true_mean", "true_se",
                                                             "first_order_mean", "first_order_se", "ratio_mean",
                                                             "ratio_se", "n_nets"]],
                 f"**Vulnerability against d** at fixed eps_inf = {profile.attack_eps_fixed:g}.")
    writer.table(page, "lemma2_exponent", lemma2.scaling[["eps", *_VERDICT_COLS]].rename(columns=_VERDICT_COLS),
                 "**Fitted exponent in d** of the true increase (Theorem 5 with eq. (3) predicts 0.5).")
    _reading(page, findings)
    writer.page(page)


def findings_page(writer: ReportWriter, findings: Sequence[Finding]) -> None:
    """All findings, grouped by their relation to the paper.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> findings = [Finding("lemma8", "lemmas", "agrees", "Lemma 8", "The walk probabilities sum to 1."),
    ...             Finding("padding", "lemmas", "outside", "Padding", "Zero padding breaks H3.")]
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     findings_page(writer, findings)
    ...     page = (writer.root / "findings.md").read_text()
    >>> print(page[page.index("## "):])            # grouped by their relation to the paper, disagreements first
    ## Where the networks lie outside the theorems' hypotheses
    <BLANKLINE>
    - **Padding.** Zero padding breaks H3. ([lemmas](lemmas.md))
    <BLANKLINE>
    ## Where the data agree with the paper
    <BLANKLINE>
    - **Lemma 8.** The walk probabilities sum to 1. ([lemmas](lemmas.md))
    <BLANKLINE>
    """
    page = Page("findings", "Findings")
    page.text("Every sentence below is selected by code from this run's verdicts and exact values (other data "
              "select other sentences); measured numbers carry their standard errors.  The linked pages hold the "
              "tables and figures.")
    for relation, heading in RELATIONS.items():
        mine = [f for f in findings if f.relation == relation]
        if mine:
            page.text(f"## {heading}\n\n" + "\n".join(f"- {f.markdown()}" for f in mine))
    writer.page(page)

