"""Measured experiments of the report: He-initialised networks, tidy frames and verdicts, no text.

Means and standard errors are over independent networks.  Verdicts come from
:mod:`initstats.verify` and :mod:`initstats.claims` and are kept as verdict frames
(:func:`initstats.report.verdicts.claims_frame`); excesses over an annealed value are plain
arithmetic on the measured mean and its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from ...claims import loglog_fit, scaling_claim, z_value
from ...empirical.attack import fgsm
from ...empirical.infinite_width import infinite_width
from ...empirical.measure import MeasureOptions, measure
from ...exact import analyse
from ...families import make_arch
from ...spec import Arch, AvgPool, Conv, Dense
from ...verify import VerifySettings, verify_family
from .exact import hypotheses_note
from ..profiles import Profile
from ..verdicts import claims_frame

__all__ = ["Thm45Result", "PoolingResult", "Fig3Result", "Fig4Result", "Lemma2Result", "run_theorems_4_5",
           "run_pooling", "run_figure3", "run_figure4", "run_lemma2", "PLOTTED_STATISTICS"]

#: statistics drawn in the Theorems 4/5 figures
PLOTTED_STATISTICS = ("grad_logit_l2", "grad_logit_l1", "grad_loss_l1", "grad_loss_linf")


def _excess(mean: float, se: float, reference: float | None, z: float) -> dict[str, float | None]:
    """``mean / reference - 1`` with its standard error and ``z``-interval (None without a reference)."""
    if reference is None or reference == 0:
        return {"excess": None, "excess_se": None, "excess_ci_low": None, "excess_ci_high": None}
    ex, ex_se = mean / reference - 1, se / abs(reference)
    return {"excess": ex, "excess_se": ex_se, "excess_ci_low": ex - z * ex_se, "excess_ci_high": ex + z * ex_se}


#: inputs x ~ N(0, I) the infinite-width prediction of the pooling page is averaged over
INFINITE_WIDTH_INPUTS = 4


def _infinite(arch: Arch, mean: float, se: float, z: float, seed: int) -> dict[str, float | bool | None]:
    """The infinite-width prediction and the residual ``mean / prediction - 1`` with its ``z``-interval."""
    res = infinite_width(arch, n_inputs=INFINITE_WIDTH_INPUTS, seed=seed)
    iw = res.grad_sq_total
    resid, resid_se = mean / iw - 1, se / iw
    return {"infinite_width": iw, "infinite_width_se": res.grad_sq_total_se, "infinite_width_exact": res.exact,
            "residual": resid, "residual_se": resid_se, "residual_ci_low": resid - z * resid_se,
            "residual_ci_high": resid + z * resid_se}


# -- Theorems 4, 5 and Corollary 6 ---------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Thm45Result:
    """``totals``: ``family, px, d, networks, mean, se, predicted, verdict, map_verdict``
    (E||grad f||^2 against the exact prediction); ``verdicts``: every claim of both families as
    a verdict frame with a ``family`` column; ``plot``: measured rows of
    :data:`PLOTTED_STATISTICS` with a ``family`` column.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16)     # seconds, not minutes
    >>> res = run_theorems_4_5(small, options, settings)
    >>> list(res.totals.columns)
    ['family', 'px', 'd', 'networks', 'mean', 'se', 'predicted', 'verdict', 'map_verdict']
    >>> sorted(set(res.verdicts["family"])), sorted(set(res.plot["statistic"])) == sorted(PLOTTED_STATISTICS)
    (['cnn', 'fc'], True)
    """

    totals: pd.DataFrame
    verdicts: pd.DataFrame
    plot: pd.DataFrame


def run_theorems_4_5(profile: Profile, options: MeasureOptions, settings: VerifySettings) -> Thm45Result:
    """``verify_family`` on ``fc`` and on ``cnn`` (zero padding, the family default) over the profile's px.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16)     # seconds, not minutes
    >>> res = run_theorems_4_5(small, options, settings)
    >>> res.totals[["family", "px", "predicted"]].round(4).values.tolist()     # zero padding: far below 2 at 8 px
    [['fc', 8, 2.0], ['fc', 16, 2.0], ['cnn', 8, 0.002], ['cnn', 16, 0.1524]]
    >>> set(res.verdicts["verdict"]) <= {"pass", "inconclusive"}            # 100 networks decide little; none fails
    True
    """
    totals, verdicts, plots = [], [], []
    for family, fam_opts in (("fc", {"width": profile.fc_width}), ("cnn", {"channels": profile.channels})):
        res = verify_family(family, profile.dims, family_options=fam_opts, options=options, settings=settings)
        vf = claims_frame(res.claims, family=family)
        verdicts.append(vf)
        per_d = vf[vf["kind"] != "scaling"]
        total_v = {int(r.d): r.verdict for r in per_d.itertuples() if not str(r.statistic).endswith("map")}
        map_v = {int(r.d): r.verdict for r in per_d.itertuples() if str(r.statistic).endswith("map")}
        sq = res.rows[res.rows["statistic"] == "grad_logit_l2_sq"]
        for r in sq.itertuples(index=False):
            totals.append({"family": family, "px": int(r.px), "d": int(r.d), "networks": int(r.n_nets),
                           "mean": r.mean, "se": r.stderr, "predicted": r.predicted,
                           "verdict": total_v.get(int(r.d)), "map_verdict": map_v.get(int(r.d))})
        plot = res.rows[res.rows["statistic"].isin(PLOTTED_STATISTICS)].copy()
        plot["family"] = family
        plots.append(plot)
    return Thm45Result(pd.DataFrame(totals), pd.concat(verdicts, ignore_index=True),
                       pd.concat(plots, ignore_index=True))


# -- Theorems 7 and 11 ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PoolingResult:
    """``configs``: one row per network: ``convolutions`` (counted in the spec), ``pools``,
    ``degree`` (prod k^2), ``pool_layers``, ``annealed`` (exact), ``theorem`` (2/prod a, string),
    ``mean, se, networks``, the excess over the annealed value (``excess, excess_se,
    excess_ci_low, excess_ci_high``), the infinite-width prediction (``infinite_width``, its SE over
    :data:`INFINITE_WIDTH_INPUTS` inputs, ``infinite_width_exact``: exact at every width) and the
    residual over it (``residual, residual_se, residual_ci_low, residual_ci_high``); ``fits``: the scaling claim "E||grad f||^2 ~ a^-1" per
    series of single-pool networks with the same number of convolutions, as a verdict frame
    with ``convolutions, points, a_min, a_max``.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], pool_input=4, pool_sizes=(1, 2, 4))
    >>> res = run_pooling(small, options, settings)
    >>> res.configs[["convolutions", "pools", "degree", "theorem"]].values.tolist()
    [[1, '1x1', 1, '2'], [1, '2x2', 4, '1/2'], [1, '4x4', 16, '1/8'], [3, '1x1', 1, '2'], [3, '2x2', 4, '1/2'],
     [3, '4x4', 16, '1/8'], [2, '2x2 then 2x2', 16, '1/8']]
    >>> res.fits[["convolutions", "points", "a_min", "a_max"]].values.tolist(), res.fits["predicted"].tolist()
    ([[1, 3, 1, 16], [3, 3, 1, 16]], [-1.0, -1.0])
    """

    configs: pd.DataFrame
    fits: pd.DataFrame


def pool_arch(side: int, convs_before: int, pools: tuple[int, ...], channels: int = 16) -> Arch:
    """``convs_before`` circular 3x3 convolutions, then per pool ``k``: a k x k average pool
    (``k > 1``) followed by one more convolution except after the last pool; a dense head."""
    layers: list = [Conv(channels, 3, padding="circular") for _ in range(convs_before)]
    for i, k in enumerate(pools):
        if k > 1:
            layers.append(AvgPool(k))
        if i < len(pools) - 1:
            layers.append(Conv(channels, 3, padding="circular"))
    layers.append(Dense(10, activation=None))
    return Arch((3, side, side), tuple(layers), name=f"{convs_before} conv + pool {'x'.join(map(str, pools))}")


def run_pooling(profile: Profile, options: MeasureOptions, settings: VerifySettings) -> PoolingResult:
    """Measured E||grad f||^2 against the exact annealed value over average-pooling degrees.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], pool_input=4, pool_sizes=(1, 2, 4))
    >>> res = run_pooling(small, options, settings)
    >>> single = res.configs.query("convolutions == 1")
    >>> bool((single["excess_ci_low"] < 0).all() and (single["excess_ci_high"] > 0).all())   # one conv: no excess
    True
    >>> res.fits["kind"].tolist()
    ['scaling', 'scaling']
    """
    side = profile.pool_input
    z = z_value(settings.confidence)
    configs = [(1, (k,)) for k in profile.pool_sizes] + [(3, (k,)) for k in profile.pool_sizes if k <= 4] \
        + [(1, (2, 2)), (1, (2, 4))]
    rows = []
    for convs_before, pools in configs:
        if any(side % k for k in pools) or math.prod(pools) > side:
            continue
        arch = pool_arch(side, convs_before, pools)
        exact = analyse(arch).outputs[0]
        m = measure(arch, options)
        mean, se = m.mean_se("grad_logit_l2_sq")
        annealed = None if exact.grad_sq_total is None else float(exact.grad_sq_total)
        rows.append({"convolutions": sum(isinstance(layer, Conv) for layer in arch.layers),
                     "pools": " then ".join(f"{k}x{k}" for k in pools), "degree": math.prod(k * k for k in pools),
                     "pool_layers": sum(k > 1 for k in pools), "annealed": annealed,
                     "theorem": None if exact.theorem_total is None else str(exact.theorem_total),
                     "mean": mean, "se": se, "networks": m.n_nets, **_excess(mean, se, annealed, z),
                     **_infinite(arch, mean, se, z, options.seed)})
    frame = pd.DataFrame(rows)
    fits = []
    single = frame[frame["pool_layers"] <= 1]
    for convs, series in single.groupby("convolutions"):
        if len(series) < 2:
            continue
        claim = scaling_claim(f"scaling:pool[convolutions={convs}]", "E||grad f||^2 ~ 1/a",
                              series["degree"].tolist(), series["mean"].tolist(), series["se"].tolist(), -1.0,
                              tolerance=settings.exponent_tolerance, confidence=settings.confidence)
        fits.append(claims_frame([claim], convolutions=int(convs), points=len(series),
                                 a_min=int(series["degree"].min()), a_max=int(series["degree"].max())))
    return PoolingResult(frame, pd.concat(fits, ignore_index=True) if fits else claims_frame(
        [], convolutions=0, points=0, a_min=0, a_max=0))


# -- The paper's Figures 3 and 4 -----------------------------------------------------------------

FAMILY_NETWORK = "`cnn` family"
FAMILY_DESCRIPTION = "zero padding, 2x2 stride-2 convolutions, dense head"
LITERAL_NETWORK = "literal network"
LITERAL_DESCRIPTION = "2x2 max pooling, BatchNorm, global max pool"


@dataclass(frozen=True, eq=False)
class Fig3Result:
    """``rows``: ``network, description, px, d, mean, se, networks, inputs_per_net``
    (E||grad L||_1) and ``note`` (hypotheses, exact engine); ``exponents``: one row per network:
    ``network, description, kind, verdict, estimate, stderr, ci_low, ci_high, predicted,
    tolerance, note`` (the family's scaling claim from Theorems 4/5; the literal network's fit
    with verdict ``not-covered``).

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, outside_nets=8)
    >>> res = run_figure3(small, options, settings, run_theorems_4_5(small, options, settings))
    >>> res.rows[["network", "px", "networks", "inputs_per_net"]].values.tolist()
    [['`cnn` family', 8, 100, 1], ['`cnn` family', 16, 100, 1], ['literal network', 8, 8, 16],
     ['literal network', 16, 8, 16]]
    """

    rows: pd.DataFrame
    exponents: pd.DataFrame


def run_figure3(profile: Profile, options: MeasureOptions, settings: VerifySettings,
                thm45: Thm45Result) -> Fig3Result:
    """E||grad L||_1 against d for the ``cnn`` family (from Theorems 4/5) and the literal network.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, outside_nets=8)
    >>> res = run_figure3(small, options, settings, run_theorems_4_5(small, options, settings))
    >>> res.exponents[["network", "kind", "verdict"]].values.tolist()[1]     # no theorem covers the literal network
    ['literal network', 'not-covered', 'not-covered']
    >>> res.rows["note"].iloc[-1]
    'outside (H) with max pooling and BatchNorm; H1, H3 and (S) fail'
    """
    fam = thm45.plot[(thm45.plot["family"] == "cnn") & (thm45.plot["statistic"] == "grad_loss_l1")]
    fam_note = hypotheses_note(analyse(make_arch("cnn", profile.dims[0], channels=profile.channels)).outputs[0])
    family = {"network": FAMILY_NETWORK, "description": FAMILY_DESCRIPTION}
    literal = {"network": LITERAL_NETWORK, "description": LITERAL_DESCRIPTION}
    rows = [{**family, "px": int(r.px), "d": int(r.d), "mean": r.mean, "se": r.stderr, "networks": int(r.n_nets),
             "inputs_per_net": 1, "note": fam_note} for r in fam.itertuples(index=False)]
    literal_opts = replace(options, nets=profile.outside_nets, inputs_per_net=16)
    for px in profile.dims:
        arch = make_arch("cnn", px, channels=profile.channels, downsample="max", head="maxpool", batchnorm=True)
        m = measure(arch, literal_opts)
        mean, se = m.mean_se("grad_loss_l1")
        rows.append({**literal, "px": px, "d": arch.d, "mean": mean, "se": se, "networks": m.n_nets,
                     "inputs_per_net": m.inputs_per_net, "note": hypotheses_note(analyse(arch).outputs[0], arch)})
    frame = pd.DataFrame(rows)
    v = thm45.verdicts
    claim = v[(v["family"] == "cnn") & (v["kind"] == "scaling") & (v["statistic"] == "grad_loss_l1")]
    exps = [claim.drop(columns=["family", "statistic", "d"]).assign(**family, note=fam_note)]
    lit = frame[frame["network"] == LITERAL_NETWORK]
    fit = loglog_fit(lit["d"], lit["mean"], lit["se"])
    z = z_value(settings.confidence)
    exps.append(pd.DataFrame([{**literal, "kind": "not-covered", "verdict": "not-covered", "estimate": fit.exponent,
                               "stderr": fit.stderr, "ci_low": fit.exponent - z * fit.stderr,
                               "ci_high": fit.exponent + z * fit.stderr, "predicted": math.nan,
                               "tolerance": math.nan, "note": lit["note"].iloc[0]}]))
    cols = ["network", "description", "kind", "verdict", "estimate", "stderr", "ci_low", "ci_high", "predicted",
            "tolerance", "note"]
    return Fig3Result(frame, pd.concat(exps, ignore_index=True)[cols])


@dataclass(frozen=True, eq=False)
class Fig4Result:
    """One row per (px, downsampling): ``px, d, downsampling, l1_mean, l1_se`` (E||grad L||_1),
    ``sq_mean, sq_se`` (E||grad f||^2), ``annealed`` (exact, per-edge variances), ``theorem``
    (2/prod a_i, string), ``pool_degrees``, ``hypothesis``, ``note``, ``networks`` and the excess
    of ``sq_mean`` over ``annealed`` (``excess, excess_se, excess_ci_low, excess_ci_high``).

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], channels=8, fig4_dims=(8,), fig4_nets=50)
    >>> res = run_figure4(small, options, settings)
    >>> res.rows[["px", "downsampling", "networks"]].values.tolist()
    [[8, 'avg', 50], [8, 'stride', 50], [8, 'max', 50]]
    """

    rows: pd.DataFrame


def run_figure4(profile: Profile, options: MeasureOptions, settings: VerifySettings) -> Fig4Result:
    """The Figure 4 network with average, strided and max downsampling at the profile's px.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], channels=8, fig4_dims=(8,), fig4_nets=50)
    >>> res = run_figure4(small, options, settings)
    >>> res.rows[["downsampling", "theorem", "hypothesis"]].fillna("-").values.tolist()
    [['avg', '1/32', "H'"], ['stride', '2', "H'"], ['max', '-', 'outside']]
    """
    z = z_value(settings.confidence)
    rows = []
    opts = replace(options, nets=profile.fig4_nets)
    for px in profile.fig4_dims:
        for down in ("avg", "stride", "max"):
            arch = make_arch("cnn-avgpool", px, channels=profile.channels, downsample=down)
            exact = analyse(arch).outputs[0]
            m = measure(arch, opts)
            l1, l1se = m.mean_se("grad_loss_l1")
            sq, sqse = m.mean_se("grad_logit_l2_sq")
            annealed = None if exact.grad_sq_total is None else float(exact.grad_sq_total)
            rows.append({"px": px, "d": arch.d, "downsampling": down, "l1_mean": l1, "l1_se": l1se,
                         "sq_mean": sq, "sq_se": sqse, "annealed": annealed,
                         "theorem": None if exact.theorem_total is None else str(exact.theorem_total),
                         "pool_degrees": None if exact.pool_degrees is None
                         else "·".join(map(str, exact.pool_degrees)),
                         "hypothesis": exact.hypothesis_set, "note": hypotheses_note(exact, arch), "networks": m.n_nets,
                         **_excess(sq, sqse, annealed, z)})
    return Fig4Result(pd.DataFrame(rows))


# -- Lemma 2 -------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Lemma2Result:
    """``curve``: :func:`~initstats.empirical.attack.fgsm` rows against eps at one px;
    ``dimension``: the same at a fixed eps across px; ``scaling``: the claim "the true increase
    grows like d^(1/2)" as a verdict frame.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], channels=8, attack_px=8, attack_eps=(1e-3, 1e-2), attack_nets=50,
    ...                 attack_dims=(8, 16))
    >>> res = run_lemma2(small, options, settings)
    >>> list(res.curve["eps"]), list(res.dimension["d"]), res.scaling[["kind", "predicted"]].values.tolist()
    ([0.001, 0.01], [192, 768], [['scaling', 0.5]])
    """

    curve: pd.DataFrame
    dimension: pd.DataFrame
    scaling: pd.DataFrame


def run_lemma2(profile: Profile, options: MeasureOptions, settings: VerifySettings) -> Lemma2Result:
    """One-step l_inf attacks on the ``cnn`` family: true against first-order loss increase.

    Examples
    --------
    >>> from initstats.report.profiles import PROFILES
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> small = replace(PROFILES["quick"], channels=8, attack_px=8, attack_eps=(1e-3, 1e-2), attack_nets=50,
    ...                 attack_dims=(8, 16))
    >>> res = run_lemma2(small, options, settings)
    >>> [(eps, round(r, 2)) for eps, r in zip(res.curve["eps"], res.curve["ratio_mean"])]   # true / first order -> 1
    [(0.001, 0.99), (0.01, 0.86)]
    """
    opts = replace(options, nets=profile.attack_nets)
    curve = fgsm(make_arch("cnn", profile.attack_px, channels=profile.channels), profile.attack_eps, opts)
    rows = [fgsm(make_arch("cnn", px, channels=profile.channels), [profile.attack_eps_fixed], opts).iloc[0]
            for px in profile.attack_dims]
    dim = pd.DataFrame(rows).reset_index(drop=True)
    claim = scaling_claim("scaling:true_damage", "the true loss increase at fixed eps_inf grows like d^(1/2)",
                          dim["d"].tolist(), dim["true_mean"].tolist(), dim["true_se"].tolist(), 0.5,
                          tolerance=settings.exponent_tolerance, confidence=settings.confidence)
    return Lemma2Result(curve, dim, claims_frame([claim], eps=profile.attack_eps_fixed))
