"""The sections of the report: each runs its networks, writes its page and returns facts for the findings."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pandas as pd

from ..claims import loglog_fit, scaling_claim, z_value
from ..empirical.attack import fgsm
from ..empirical.measure import MeasureOptions, measure
from ..exact import analyse
from ..families import make_arch
from ..spec import Arch, AvgPool, Conv, Dense, Residual
from ..claims import SCALING_LAWS
from ..verify import VerifySettings, verify_family
from .core import Page, ReportWriter
from .profiles import Profile

__all__ = ["atlas", "theorems_4_5", "theorems_7_11", "paper_figures", "lemma2", "findings"]


def _frac(x: Fraction | None) -> str | None:
    return None if x is None else str(x)


def _witness(out) -> str | None:
    w = out.witness
    if w is None:
        return None
    return f"{w.inputs[0]} vs {w.inputs[1]}: {w.counts[0]} vs {w.counts[1]} paths of path-degree {list(w.path_degree)}"


# -- 1. Lemma 8, (S), Lemma 9 ------------------------------------------------------------------

def _atlas_archs(px: int = 32) -> list[tuple[str, dict, Arch]]:
    shape = (3, px, px)
    out: list[tuple[str, dict, Arch]] = [("fc", {"layer": "dense"}, make_arch("fc", px))]

    def conv_net(k: int, s: int, padding: str, dil: int = 1) -> Arch:
        pad = dil * (k - 1) // 2 if k % 2 else (k - s) // 2
        layers = (Conv(16, k, stride=s, dilation=dil, padding=padding, pad=pad),
                  Conv(16, k, stride=s, dilation=dil, padding=padding, pad=pad), Dense(10, activation=None))
        return Arch(shape, layers, name="conv x2")

    for padding in ("zero", "circular", "reflect"):
        for k, s in ((3, 1), (3, 2), (2, 2)):
            out.append(("conv x2", {"padding": padding, "kernel": k, "stride": s, "dilation": 1},
                        conv_net(k, s, padding)))
        out.append(("conv x2", {"padding": padding, "kernel": 3, "stride": 1, "dilation": 2},
                    conv_net(3, 1, padding, 2)))
    for padding in ("zero", "circular"):
        out.append(("conv, 2x2 avgpool, conv", {"padding": padding, "kernel": 3, "stride": 1, "pooling": "avg 2x2"},
                    Arch(shape, (Conv(16, 3, padding=padding), AvgPool(2), Conv(16, 3, padding=padding),
                                 Dense(10, activation=None)), name="conv-avgpool")))
        out.append(("conv, residual block", {"padding": padding, "kernel": 3, "stride": 1, "residual": "yes"},
                    Arch(shape, (Conv(16, 3, padding=padding),
                                 Residual((Conv(16, 3, padding=padding), Conv(16, 3, padding=padding, activation=None))),
                                 Dense(10, activation=None)), name="resnet block")))
    for padding in ("zero", "circular", "reflect"):
        out.append(("cnn (Fig. 3 topology)", {"padding": padding, "kernel": 3, "stride": "2x2 windows",
                                              "dilation": max(1, px // 32)}, make_arch("cnn", px, padding=padding)))
    return out


def atlas(writer: ReportWriter, profile: Profile) -> dict:
    """Exact: does (S) hold, its witness, Lemma 8's sum and Lemma 9's deviation, per architecture."""
    page = Page("lemmas", "Lemma 8, symmetry (S) and Lemma 9: an exact atlas")
    page.text("""Exact results of the graph engine (`initstats graph`) on 32x32x3 inputs: integers and fractions,
no sampling.  For each architecture, Lemma 8's sum of walk probabilities `sum_x r(x)`, whether assumption
(S) holds relative to the first logit (every input has the same multiset of path-degrees), the first
witness when it does not (two inputs and a path-degree on which their path counts differ), whether
Lemma 9 (`r(x) = 1/d`) holds and the largest deviation `max_x |d r(x) - 1|`, and the exact annealed
`E||grad f||^2` against what Theorems 4/5/7 state.  `conv x2` is two convolutions of 16 channels and a
dense head; kernel-2 layers have no padding, kernel-3 layers pad `dilation` pixels.""")
    rows = []
    for name, params, arch in _atlas_archs():
        out = analyse(arch).outputs[0]
        rows.append({
            "architecture": name, "padding": params.get("padding", "-"), "kernel": params.get("kernel", "-"),
            "stride": params.get("stride", "-"), "dilation": params.get("dilation", "-"),
            "pooling / sums": params.get("pooling", "residual" if params.get("residual") else "-"),
            "d": arch.d, "Lemma 8 sum r": _frac(out.lemma8_sum), "(S)": out.symmetric,
            "Lemma 9": out.lemma9_holds, "max |d r - 1|": float(out.lemma9_max_dev),
            "E|grad f|^2 (exact)": float(out.grad_sq_total) if out.grad_sq_total is not None else None,
            "theorem": _frac(out.theorem_total), "hypothesis": out.hypothesis, "witness": _witness(out),
        })
    frame = pd.DataFrame(rows)
    writer.table(page, "lemmas_atlas", frame)
    facts = {"atlas": frame}
    circ = frame[(frame["architecture"] == "conv x2") & (frame["padding"] == "circular")
                 & (frame["dilation"].astype(str) == "1")]
    s3 = circ[(circ["kernel"].astype(str) == "3") & (circ["stride"].astype(str) == "2")].iloc[0]
    s2 = circ[(circ["kernel"].astype(str) == "2") & (circ["stride"].astype(str) == "2")].iloc[0]
    s1 = circ[(circ["kernel"].astype(str) == "3") & (circ["stride"].astype(str) == "1")].iloc[0]
    facts["stride"] = {"3x3 s2": bool(s3["(S)"]), "2x2 s2": bool(s2["(S)"]), "3x3 s1": bool(s1["(S)"]),
                       "3x3 s2 dev": float(s3["max |d r - 1|"]), "3x3 s2 witness": s3["witness"]}
    lemma8_all = bool((frame["Lemma 8 sum r"] == "1").all())
    facts["lemma8_all"] = lemma8_all
    page.text(f"""**Reading.** Lemma 8's sum is exactly 1 on {'every' if lemma8_all else 'not every'} architecture,
whatever the padding.  With circular padding, stride-1 3x3 convolutions satisfy (S)
({'yes' if facts['stride']['3x3 s1'] else 'no'}) and so do 2x2 stride-2 ones
({'yes' if facts['stride']['2x2 s2'] else 'no'}), but **3x3 stride-2 convolutions break (S)**
({'yes' if not facts['stride']['3x3 s2'] else 'no'}: {facts['stride']['3x3 s2 witness']}); their walk
probabilities deviate from `1/d` by up to {facts['stride']['3x3 s2 dev']:.3g} relative.  Inputs at even and
odd positions are covered by two and one windows: the paper's condition "the layer size is a multiple
of the stride" is not enough, the stride must divide the kernel size.  Zero padding breaks (S) at the
borders and lowers `E||grad f||^2` below the theorems' 2, because border neurons keep the variance
`2/fan_in` although they have fewer inputs (H3 fails there).""")
    # aliasing: strided dilated layers
    alias = Arch((3, 256, 256), tuple(Conv(16, 3, stride=2 if i in (2, 4, 6) else 1, dilation=8) for i in range(1, 9))
                 + (Dense(12, activation=None),), name="cnn, layers 2/4/6 strided")
    g = analyse(alias).outputs[0].grad_sq
    zero = int(np.sum(g.to_numpy() == 0))
    facts["alias"] = {"zero": zero, "d": alias.d}
    page.text(f"""**Why the `cnn` family downsamples with a separate 2x2 window.**  Figure 3's network at 256 px uses
dilation 8.  If its layers 2, 4 and 6 were themselves 3x3 convolutions of stride 2, only every 8th
pixel per axis would reach the logits: the exact engine finds {zero:,} of the {alias.d:,} inputs with
zero annealed gradient ({zero / alias.d:.1%}), so d would not measure what the network sees.""")
    writer.page(page)
    return facts


# -- 2. Theorems 4, 5 and Corollary 6 ----------------------------------------------------------

def theorems_4_5(writer: ReportWriter, profile: Profile, options: MeasureOptions, settings: VerifySettings) -> dict:
    page = Page("theorems-4-5", "Theorems 4, 5 and Corollary 6: gradient norms against the input dimension")
    page.text(f"""He-initialised networks drawn at {', '.join(map(str, profile.dims))} px (d = 3 px^2), until the relative
standard error of `E||grad f||^2` is {profile.rel_se:.1%} (at most {profile.max_nets} networks; means and standard errors
over independent networks, one input each).  `fc`: {profile.fc_width}-unit ReLU layers; `cnn`: the
Figure 3 topology with {profile.channels} channels, zero padding and 2x2 stride-2 downsampling.  The
prediction is the exact annealed value of the graph engine (2 for `fc`; below 2 with zero padding,
where border weights keep `2/fan_in`).""")
    facts: dict = {}
    rows, claims, plots = [], [], []
    for family, fam_opts in (("fc", {"width": profile.fc_width}), ("cnn", {"channels": profile.channels})):
        res = verify_family(family, profile.dims, family_options=fam_opts, options=options, settings=settings)
        facts[family] = res
        sq = res.rows[res.rows["statistic"] == "grad_logit_l2_sq"]
        verdicts = {c.d: c.verdict for c in res.claims if c.claim.startswith("grad_sq_total")}
        maps = {c.d: c.verdict for c in res.claims if c.claim.startswith("grad_sq_map")}
        for r in sq.itertuples(index=False):
            rows.append({"family": family, "px": r.px, "d": r.d, "networks": r.n_nets,
                         "E|grad f|^2 measured": r.mean, "SE": r.stderr, "exact prediction": r.predicted,
                         "relative difference": r.mean / r.predicted - 1, "verdict": verdicts.get(r.d),
                         "per-coordinate map verdict": maps.get(r.d, "-")})
        for c in res.claims:
            if c.kind == "scaling":
                claims.append({"family": family, "statistic": c.claim.split(":", 1)[1], "predicted exponent": c.predicted,
                               "fitted exponent": c.estimate, "SE": c.stderr, "CI low": c.ci_low, "CI high": c.ci_high,
                               "tolerance": c.tolerance, "verdict": c.verdict})
        plot_rows = res.rows[res.rows["statistic"].isin(["grad_logit_l1", "grad_logit_l2", "grad_loss_l1",
                                                          "grad_loss_linf"])].copy()
        plot_rows["family"] = family
        plots.append(plot_rows)
    writer.table(page, "thm45_totals", pd.DataFrame(rows),
                 "**E||grad f||^2 against the exact prediction** (exact claim: two-sided skewness-corrected z-test at "
                 f"{settings.confidence:.0%}; the per-coordinate map is tested on rings of pixels by distance to the border).")
    writer.table(page, "thm45_exponents", pd.DataFrame(claims),
                 "**Fitted exponents in d** (weighted least squares on log-log; equivalence test within the tolerance; "
                 "`grad_loss_linf` is divided by sqrt(2 ln d) first, the size of the maximum of d Gaussian coordinates).")
    data = pd.concat(plots, ignore_index=True)
    from ..plots import plot_scaling

    for family in ("fc", "cnn"):
        sub = data[data["family"] == family]
        fig = plot_scaling(sub, {k: SCALING_LAWS[k][0] for k in ("grad_logit_l2", "grad_logit_l1", "grad_loss_l1",
                                                                   "grad_loss_linf")},
                           title=f"{family}: gradient norms against d (dashed: theory's slope)")
        writer.figure(page, f"thm45_scaling_{family}_fig", fig, sub[["family", "px", "d", "statistic", "mean", "stderr",
                                                                 "n_nets"]],
                      f"{family}: measured norms (mean ± 2 SE over networks) against d on log-log axes")
    writer.page(page)
    return facts


# -- 3. Theorems 7 and 11 ----------------------------------------------------------------------

def _pool_arch(side: int, convs: int, pools: tuple[int, ...], channels: int = 16) -> Arch:
    layers: list = [Conv(channels, 3, padding="circular")]
    for _ in range(convs - 1):
        layers.append(Conv(channels, 3, padding="circular"))
    for i, k in enumerate(pools):
        if k > 1:
            layers.append(AvgPool(k))
        if i < len(pools) - 1:
            layers.append(Conv(channels, 3, padding="circular"))
    layers.append(Dense(10, activation=None))
    return Arch((3, side, side), tuple(layers), name=f"{convs} conv + pool {'x'.join(map(str, pools))}")


def theorems_7_11(writer: ReportWriter, profile: Profile, options: MeasureOptions, settings: VerifySettings) -> dict:
    page = Page("theorems-7-11", "Theorems 7 and 11: average pooling")
    side = profile.pool_input
    page.text(f"""Convolutions (3x3, 16 channels, circular padding, {side}x{side}x3 inputs) followed by a k x k average pool
of degree a = k^2 and a dense head.  Theorems 7/11 state `E||grad f||^2 = 2 / prod a_i`.  That is the exact
*annealed* value; in real networks the pooling node merges paths deterministically, ReLU states and
weights are correlated (H1 fails), and the measured value exceeds it (THEORY.md section 4b).  The table
reports the excess with its {settings.confidence:.0%} interval; the theorems are tested as a scaling law in a.""")
    z = z_value(settings.confidence)
    rows = []
    configs = [(1, (k,)) for k in profile.pool_sizes] + [(3, (k,)) for k in profile.pool_sizes if k <= 4] \
        + [(1, (2, 2)), (1, (2, 4))]
    for convs, pools in configs:
        if any(side % k for k in pools) or math.prod(pools) > side:
            continue
        arch = _pool_arch(side, convs, pools)
        exact = analyse(arch).outputs[0]
        m = measure(arch, options)
        mean, se = m.mean_se("grad_logit_l2_sq")
        pred = float(exact.grad_sq_total)
        a = math.prod(k * k for k in pools)
        rows.append({"convolutions": convs, "pools (k)": " then ".join(f"{k}x{k}" for k in pools),
                     "degree a = prod k^2": a, "layers of pooling": sum(k > 1 for k in pools),
                     "annealed 2/prod a": pred, "theorem": _frac(exact.theorem_total),
                     "measured": mean, "SE": se, "networks": m.n_nets, "excess": mean / pred - 1,
                     "excess CI low": (mean - z * se) / pred - 1, "excess CI high": (mean + z * se) / pred - 1})
    frame = pd.DataFrame(rows)
    writer.table(page, "thm711_pooling", frame, "**Measured against annealed**, per pooling configuration.")
    facts: dict = {"pooling": frame}
    fits = []
    for convs in sorted(frame["convolutions"].unique()):
        single = frame[(frame["convolutions"] == convs) & (frame["layers of pooling"] <= 1)]
        if len(single) >= 2:
            claim = scaling_claim(f"pool exponent ({convs} conv)", "E||grad f||^2 ~ 1/a",
                                  single["degree a = prod k^2"].tolist(), single["measured"].tolist(),
                                  single["SE"].tolist(), -1.0, tolerance=settings.exponent_tolerance,
                                  confidence=settings.confidence)
            fits.append({"convolutions": convs, "points": len(single),
                         "a range": f"{single['degree a = prod k^2'].min()}..{single['degree a = prod k^2'].max()}",
                         "fitted exponent": claim.estimate, "SE": claim.stderr, "CI low": claim.ci_low,
                         "CI high": claim.ci_high, "predicted": -1.0, "tolerance": claim.tolerance,
                         "verdict": claim.verdict})
    fit_frame = pd.DataFrame(fits)
    writer.table(page, "thm711_exponent", fit_frame, "**Fitted exponent of E||grad f||^2 in a** (Theorems 7/11 predict -1).")
    facts["fits"] = fit_frame
    from ..plots import plot_lines

    plot = frame[frame["layers of pooling"] <= 1].copy()
    plot["network"] = plot["convolutions"].map(lambda c: f"{c} conv + pool")
    a_grid = np.geomspace(1, max(plot["degree a = prod k^2"]), 50)
    fig = plot_lines(plot, "degree a = prod k^2", "measured", hue="network", yerr="SE",
                     reference=(a_grid, 2 / a_grid, "2/a (Theorem 7, annealed)"), ylabel="E||grad f||^2",
                     title="average pooling: measured against 2/a")
    writer.figure(page, "thm711_pooling_fig", fig, plot[["network", "degree a = prod k^2", "measured", "SE",
                                                     "annealed 2/prod a"]],
                  "E||grad f||^2 against the pooling degree a (mean ± 2 SE)")
    worst = frame.loc[frame["excess"].idxmax()]
    page.text(f"""**Reading.** The measured value exceeds the annealed one increasingly with the pooling degree, up to
{worst['excess']:+.1%} (CI {worst['excess CI low']:+.1%} .. {worst['excess CI high']:+.1%}) for
{worst['convolutions']} convolution(s) and pools {worst['pools (k)']}: the cross terms of paths that merge in
the pooling node do not vanish once ReLU states depend on the weights.  The decay in a is still close
to 1/a: """ + "; ".join(f"exponent {r['fitted exponent']:+.3f} ± {r['SE']:.3f} with {r['convolutions']} conv ({r['verdict']})"
                        for _, r in fit_frame.iterrows()) + ".")
    writer.page(page)
    return facts


# -- 4. Figures 3 and 4 of the paper at initialisation ---------------------------------------------

def paper_figures(writer: ReportWriter, profile: Profile, options: MeasureOptions, settings: VerifySettings,
                  cnn_result) -> dict:
    page = Page("paper-figures", "The paper's Figures 3 and 4 at initialisation")
    page.text(f"""**Figure 3 network** (8 dilated 3x3 conv layers, dilations 1/2/4/8 at 32/64/128/256 px, downsampling after
layers 2, 4, 6, {profile.channels} channels): the variant inside (H) (2x2 stride-2 convolutions, dense head, no BatchNorm)
and the paper's literal network (2x2 max pooling, BatchNorm after every convolution, global max pool, dense
head).  **No theorem covers the literal network**: max pooling routes each gradient to one input and
BatchNorm rescales by batch statistics (16 inputs per network, batch statistics at initialisation), so
its numbers are measurements only.  The paper's claim (after training) is that `E||grad L||_1` grows like
sqrt(d); at initialisation the in-(H) variant follows Theorem 5.""")
    rows = []
    in_h = cnn_result.rows[cnn_result.rows["statistic"] == "grad_loss_l1"]
    for r in in_h.itertuples(index=False):
        rows.append({"network": "in (H): strided 2x2 convs", "px": r.px, "d": r.d, "sqrt d": math.sqrt(r.d),
                     "E|grad L|_1": r.mean, "SE": r.stderr, "networks": r.n_nets, "inputs per network": 1})
    literal_opts = replace(options, nets=profile.outside_nets, inputs_per_net=16)
    for px in profile.dims:
        arch = make_arch("cnn", px, channels=profile.channels, downsample="max", head="maxpool", batchnorm=True)
        m = measure(arch, literal_opts)
        mean, se = m.mean_se("grad_loss_l1")
        rows.append({"network": "literal: max pool + BatchNorm", "px": px, "d": arch.d, "sqrt d": math.sqrt(arch.d),
                     "E|grad L|_1": mean, "SE": se, "networks": m.n_nets, "inputs per network": m.inputs_per_net})
    fig3 = pd.DataFrame(rows)
    writer.table(page, "fig3_loss_l1", fig3, "**E||grad L||_1 against d**, Figure 3 networks at initialisation.")
    exps = []
    for name, sub in fig3.groupby("network", sort=False):
        fit = loglog_fit(sub["d"], sub["E|grad L|_1"], sub["SE"])
        z = z_value(settings.confidence)
        covered = name.startswith("in (H)")
        exps.append({"network": name, "fitted exponent in d": fit.exponent, "SE": fit.stderr,
                     "CI low": fit.exponent - z * fit.stderr, "CI high": fit.exponent + z * fit.stderr,
                     "theory": 0.5 if covered else None,
                     "covered by a theorem": "yes (Theorem 5, Corollary 6)" if covered else "no (max pooling, BatchNorm)"})
    exp_frame = pd.DataFrame(exps)
    writer.table(page, "fig3_exponents", exp_frame, "**Fitted exponents** of E||grad L||_1 in d (sqrt(d) means 0.5).")
    from ..plots import plot_lines

    fig = plot_lines(fig3, "sqrt d", "E|grad L|_1", hue="network", yerr="SE", logx=False, logy=False,
                     xlabel="sqrt(d)", ylabel="E||grad L||_1", title="Figure 3 networks at initialisation")
    writer.figure(page, "fig3_loss_l1_fig", fig, fig3, "E||grad L||_1 against sqrt(d) (mean ± 2 SE over networks)")

    page.text(f"""**Figure 4 comparison** (6 conv blocks of the `cnn-avgpool` family, a 2x2 downsampling after every second
block: average pooling, a strided 2x2 convolution or max pooling; global average pool; dense head;
{profile.fig4_nets} networks each).  The paper reports, after training on CIFAR-10, that average pooling gives the
smallest gradients.  With the global average pool every variant is inside (H') at best: the annealed
values are approximate (section 4b of the theory); max pooling is not covered.""")
    f4 = []
    fig4_opts = replace(options, nets=profile.fig4_nets)
    for px in profile.fig4_dims:
        for down in ("avg", "stride", "max"):
            arch = make_arch("cnn-avgpool", px, channels=profile.channels, downsample=down)
            exact = analyse(arch).outputs[0]
            m = measure(arch, fig4_opts)
            l1, l1se = m.mean_se("grad_loss_l1")
            sq, sqse = m.mean_se("grad_logit_l2_sq")
            f4.append({"px": px, "d": arch.d, "downsampling": down, "E|grad L|_1": l1, "SE (L1)": l1se,
                       "E|grad f|^2": sq, "SE (f)": sqse,
                       "annealed E|grad f|^2": float(exact.grad_sq_total) if exact.grad_sq_total is not None else None,
                       "hypothesis": exact.hypothesis, "networks": m.n_nets})
    fig4 = pd.DataFrame(f4)
    writer.table(page, "fig4_pooling", fig4, "**Average, strided and max pooling** at initialisation.")
    fig = plot_lines(fig4, "d", "E|grad L|_1", hue="downsampling", yerr="SE (L1)", ylabel="E||grad L||_1",
                     title="Figure 4 networks at initialisation")
    writer.figure(page, "fig4_pooling_fig", fig, fig4[["px", "d", "downsampling", "E|grad L|_1", "SE (L1)"]],
                  "E||grad L||_1 against d for average, strided and max pooling (mean ± 2 SE)")
    order = {}
    for px, sub in fig4.groupby("px"):
        order[int(px)] = sub.sort_values("E|grad L|_1")["downsampling"].tolist()
    page.text("**Reading.** Smallest to largest E||grad L||_1: " + "; ".join(
        f"{px} px: {' < '.join(o)}" for px, o in order.items()) + ".  Average pooling divides the annealed "
        "E||grad f||^2 by the pooling degrees (Theorem 7), strided convolutions keep He's factor 2, and max "
        "pooling passes each gradient to a single input.")
    writer.page(page)
    return {"fig3": fig3, "fig3_exponents": exp_frame, "fig4": fig4, "fig4_order": order}


# -- 5. Lemma 2 at initialisation ----------------------------------------------------------------

def lemma2(writer: ReportWriter, profile: Profile, options: MeasureOptions) -> dict:
    page = Page("lemma2", "Lemma 2 at initialisation: first-order damage against a real one-step attack")
    page.text(f"""For each network and input (x ~ N(0, I), random label), the one-step l_inf attack
`x + eps sign(grad_x L)` (FGSM) raises the loss by `L(x + eps sign g) - L(x)`; Lemma 2 predicts
`eps ||grad_x L||_1` to first order.  `cnn` family ({profile.channels} channels, zero padding, dense weights drawn
explicitly), {profile.attack_nets} networks per point; means and standard errors over networks; *ratio* is the per-network
ratio true / first-order, averaged.""")
    opts = replace(options, nets=profile.attack_nets)
    curve = fgsm(make_arch("cnn", profile.attack_px, channels=profile.channels), profile.attack_eps, opts)
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
    holds = curve[curve["ratio_mean"] >= 0.9]
    eps_ok = float(holds["eps"].max()) if len(holds) else None
    rows = []
    for px in profile.attack_dims:
        df = fgsm(make_arch("cnn", px, channels=profile.channels), [profile.attack_eps_fixed], opts)
        rows.append(df.iloc[0])
    vd = pd.DataFrame(rows)[["px", "d", "eps", "true_mean", "true_se", "first_order_mean", "first_order_se",
                             "ratio_mean", "n_nets"]]
    writer.table(page, "lemma2_dimension", vd,
                 f"**Vulnerability against d** at fixed eps_inf = {profile.attack_eps_fixed:g}.")
    fit = loglog_fit(vd["d"], vd["true_mean"], vd["true_se"])
    page.text(f"""**Reading.** The first-order value is within 10 % of the true increase up to eps = {eps_ok if eps_ok is not None else '–'}
at {profile.attack_px} px; beyond, the loss is no longer linear along the attack and the first-order value
overestimates it.  At fixed eps_inf the true increase grows like d^{fit.exponent:.3f} (± {fit.stderr:.3f}); Theorem 5
with eq. (3) predicts d^0.5: first-order vulnerability grows like sqrt(d) at initialisation.""")
    writer.page(page)
    return {"curve": curve, "eps_ok": eps_ok, "dimension": vd, "exponent": fit}


# -- 6. Findings ---------------------------------------------------------------------------------

def findings(writer: ReportWriter, facts: dict) -> list[str]:
    page = Page("findings", "Findings: where the measurements disagree with the paper's statements")
    items = []
    st = facts["atlas"]["stride"]
    items.append(f"**Strided layers and (S).** The paper states that strided layers satisfy (S) when the layer size is a "
                 f"multiple of the stride. With circular padding on 32 px, 3x3 stride-2 convolutions break (S) "
                 f"({st['3x3 s2 witness']}; `max |d r - 1|` = {st['3x3 s2 dev']:.3g}), while 2x2 stride-2 ones keep it: "
                 "the stride must divide the kernel size. ([lemmas](lemmas.md))")
    cnn = facts["thm45"]["cnn"]
    sq = cnn.rows[cnn.rows["statistic"] == "grad_logit_l2_sq"]
    pred = float(sq["predicted"].iloc[0])
    items.append(f"**Zero padding and Theorem 4's constant.** For the Figure 3 topology with zero padding the exact "
                 f"annealed `E||grad f||^2` is {pred:.4g}, not 2, because border weights keep the variance `2/fan_in` "
                 "with fewer inputs; the measurements agree with the exact value ("
                 + ", ".join(f"{int(r.px)} px: {r.mean:.4g} ± {r.stderr:.2g}" for r in sq.itertuples(index=False))
                 + "). It is still independent of d, as Theorem 4 says. ([theorems 4/5](theorems-4-5.md))")
    pool = facts["thm711"]["pooling"]
    worst = pool.loc[pool["excess"].idxmax()]
    fits = facts["thm711"]["fits"]
    items.append(f"**Average pooling is not exactly 2/prod a.** Measured `E||grad f||^2` exceeds the annealed 2/prod a by "
                 f"up to {worst['excess']:+.1%} (a = {int(worst['degree a = prod k^2'])}, {int(worst['convolutions'])} conv); "
                 "fitted exponents in a: " + ", ".join(f"{r['fitted exponent']:+.3f} ± {r['SE']:.3f}"
                                                      for _, r in fits.iterrows())
                 + " (theory -1). Theorems 7/11 hold as scaling laws, not as equalities, once pooling merges paths "
                 "(H1 fails). ([theorems 7/11](theorems-7-11.md))")
    ex = facts["paper"]["fig3_exponents"]
    lit = ex[ex["network"].str.startswith("literal")].iloc[0]
    inh = ex[ex["network"].str.startswith("in (H)")].iloc[0]
    items.append(f"**The literal Figure 3 network is outside the theory.** At initialisation its `E||grad L||_1` grows like "
                 f"d^{lit['fitted exponent in d']:.3f} ± {lit['SE']:.3f} (in-(H) variant: d^{inh['fitted exponent in d']:.3f} "
                 f"± {inh['SE']:.3f}, theory 0.5); max pooling and BatchNorm are covered by no theorem. "
                 "([paper figures](paper-figures.md))")
    order = facts["paper"]["fig4_order"]
    smallest = {px: o[0] for px, o in order.items()}
    agree = all(v == "avg" for v in smallest.values())
    items.append("**Figure 4 at initialisation.** Smallest `E||grad L||_1`: " + ", ".join(
        f"{px} px: {v}" for px, v in smallest.items()) + (" — average pooling, as the paper reports after training."
                                                           if agree else " — not average pooling everywhere, unlike the "
                                                           "paper's trained networks."))
    f4 = facts["paper"]["fig4"]
    avg = f4[f4["downsampling"] == "avg"].copy()
    avg["excess"] = avg["E|grad f|^2"] / avg["annealed E|grad f|^2"] - 1
    items.append("**Deep average pooling is far from the annealed value.** In the Figure 4 network with average pooling "
                 "(three 2x2 pools and a global average pool) the measured `E||grad f||^2` exceeds the annealed value by "
                 + ", ".join(f"{r['excess']:+.0%} at {int(r['px'])} px" for _, r in avg.iterrows())
                 + ": each deterministic merge adds correlated cross terms. ([paper figures](paper-figures.md))")
    lem = facts["lemma2"]
    items.append(f"**Lemma 2.** The first-order damage is within 10 % of a real one-step attack's loss increase up to "
                 f"eps = {lem['eps_ok']} and overestimates it beyond; at fixed eps the true increase grows like "
                 f"d^{lem['exponent'].exponent:.3f} ± {lem['exponent'].stderr:.3f} (predicted 0.5). ([lemma 2](lemma2.md))")
    al = facts["atlas"]["alias"]
    items.append(f"**Dilation and strides alias.** Making Figure 3's dilated layers 2, 4, 6 stride-2 3x3 convolutions leaves "
                 f"{al['zero']:,} of {al['d']:,} inputs at 256 px without any path to the logits; initstats' `cnn` family "
                 "downsamples with separate 2x2 windows instead. ([lemmas](lemmas.md))")
    page.text("Every number below is computed by this run; the linked pages hold the tables and figures.\n\n"
              + "\n".join(f"{i}. {t}" for i, t in enumerate(items, 1)))
    writer.page(page)
    return items
