"""Findings selected from measured verdict frames and exact values.

Each selector takes frames of :mod:`initstats.report.experiments.measured` (or
:mod:`~initstats.report.experiments.exact`) and returns a :class:`~.base.Finding`; every clause
is chosen from a verdict, an interval or an exact value, and the opposite data give the
opposite wording.  Measured numbers are quoted with their standard errors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pandas as pd

from ..wording import listing, num, pct_pm, pm, px_list, signed, spread
from .base import Finding

__all__ = ["theorems_fc", "zero_padding", "pooling", "figure3", "figure4_order", "figure4_theory", "lemma2"]

_ORDER = ("pass", "fail", "inconclusive", "not-covered")


def _verdicts_at(rows: pd.DataFrame) -> str:
    """``pass at 32 and 64 px; fail at 128 px`` from rows with ``verdict`` and ``px``."""
    parts = []
    for v in _ORDER:
        px = rows.loc[rows["verdict"] == v, "px"].tolist()
        if px:
            parts.append(f"{v} at {px_list(px)}")
    return "; ".join(parts)


def _relation(verdicts: list[str]) -> str:
    tested = [v for v in verdicts if v != "not-covered"]
    if any(v == "fail" for v in tested):
        return "disagrees"
    if tested and all(v == "pass" for v in tested):
        return "agrees"
    return "undecided"


def _excess_states(frame: pd.DataFrame, detectable: float) -> pd.Series:
    """Per row: ``above`` / ``below`` (interval of the excess beyond 0), ``within`` (inside
    ±detectable) or ``undecided`` (contains 0 but is wider)."""
    lo, hi = frame["excess_ci_low"].astype(float), frame["excess_ci_high"].astype(float)
    state = pd.Series("undecided", index=frame.index)
    state[(lo >= -detectable) & (hi <= detectable)] = "within"
    state[lo > 0] = "above"
    state[hi < 0] = "below"
    return state


def _state_counts(states: pd.Series, detectable: float) -> str:
    words = {"above": "exceeds it in {}", "below": "falls below it in {}",
             "within": f"is within ±{100 * detectable:g} % of it in {{}}",
             "undecided": f"cannot be told from it within ±{100 * detectable:g} % in {{}}"}
    return listing(words[k].format(int((states == k).sum())) for k in words if (states == k).any())


def _exponents(scaling: pd.DataFrame) -> str:
    """The fitted exponents of a verdict frame, each with SE, prediction and verdict."""
    items = [f"`{r.statistic}` {pm(r.estimate, r.stderr, sign=True)} "
             f"(predicted {round(r.predicted, 3) + 0.0:+g}, {r.verdict})"
             for r in scaling.itertuples()]
    verdicts = scaling["verdict"].tolist()
    tol = scaling["tolerance"].dropna()
    within = f" within ±{num(tol.iloc[0])}" if len(tol) and not spread(tol.tolist()) else ""
    point = scaling.loc[scaling["tolerance"].isna(), "statistic"].tolist()  # point tests have no tolerance
    if verdicts and all(v == "pass" for v in verdicts):
        if not point:
            summary = f"every exponent claim passes (equivalence{within})"
        else:
            summary = (f"every exponent claim passes ({listing(f'`{s}`' for s in point)} against the exact "
                       "exponent" + (f", the others by equivalence{within or ' within their tolerances'}"
                                     if len(tol) else "") + ")")
    else:
        summary = "; ".join(f"{verdicts.count(v)} {v}" for v in _ORDER if v in verdicts) or "no exponent claims"
    return f"fitted exponents in d: {listing(items)}; {summary}"


def _total_clause(rows: pd.DataFrame) -> str:
    measured = listing(f"{int(r.px)} px: {pm(r.mean, r.se)}" for r in rows.itertuples())
    preds = rows["predicted"].tolist()
    pred = num(preds[0]) if not spread(preds, 1e-9) else "the exact values"
    verdicts = rows["verdict"].tolist()
    if all(v == "pass" for v in verdicts):
        tail = "the measurements agree with the prediction at every px"
    elif any(v == "fail" for v in verdicts):
        tail = "the measurements differ from the prediction where the claim fails"
    else:
        tail = "these measurements do not decide everywhere"
    return (f"measured `E||grad f||^2` ({measured}) against the exact annealed {pred}: the exact claims "
            f"{_verdicts_at(rows)}, so {tail}")


def theorems_fc(totals: pd.DataFrame, verdicts: pd.DataFrame) -> Finding:
    """Theorems 4 and 5 on the fully connected family.

    Examples
    --------
    >>> totals = pd.DataFrame({"family": "fc", "px": [32, 64], "mean": [2.012, 1.994], "se": 0.02, "predicted": 2.0,
    ...                        "verdict": ["pass", "pass"]})
    >>> scaling = pd.DataFrame({"family": ["fc"], "kind": "scaling", "statistic": "grad_logit_l2", "estimate": -0.004,
    ...                         "stderr": 0.006, "predicted": 0.0, "tolerance": None, "verdict": "pass"})
    >>> f = theorems_fc(totals, scaling)
    >>> f.relation
    'agrees'
    >>> print(f.text)
    For `fc`, measured `E||grad f||^2` (32 px: 2.012 ± 0.020 and 64 px: 1.994 ± 0.020) against the exact annealed 2: the exact claims pass at 32 and 64 px, so the measurements agree with the prediction at every px; fitted exponents in d: `grad_logit_l2` -0.0040 ± 0.0060 (predicted +0, pass); every exponent claim passes (`grad_logit_l2` against the exact exponent).
    >>> theorems_fc(totals.assign(verdict=["pass", "fail"]), scaling).relation     # other verdicts, other finding
    'disagrees'
    """
    rows = totals[totals["family"] == "fc"]
    scaling = verdicts[(verdicts["family"] == "fc") & (verdicts["kind"] == "scaling")]
    text = f"For `fc`, {_total_clause(rows)}; {_exponents(scaling)}."
    return Finding("theorems-fc", "theorems-4-5",
                   _relation(rows["verdict"].tolist() + scaling["verdict"].tolist()),
                   "Theorems 4 and 5 on the fully connected network", text)


def zero_padding(zero: pd.DataFrame, totals: pd.DataFrame, verdicts: pd.DataFrame) -> Finding:
    """The zero-padded ``cnn`` family: hypotheses, exact value across px and at a fixed dilation.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50)         # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_theorems_4_5
    >>> from initstats.report.experiments.exact import zero_padding_frame
    >>> thm45 = run_theorems_4_5(small, options, settings)
    >>> f = zero_padding(zero_padding_frame(small.dims), thm45.totals, thm45.verdicts)
    >>> f.relation
    'outside'
    >>> print(f.text.split(". ")[0])
    The `cnn` family (Figure 3's topology, zero padding by default) is outside (H): H3 and (S) fail at every px, so no theorem gives its gradient norm
    """
    failing = [name for name, col in (("H3", "h3_holds"), ("(S)", "symmetric")) if not zero[col].astype(bool).all()]
    fam, fixed = zero["exact_family"].tolist(), zero["exact_fixed"].tolist()
    px = zero["px"].tolist()
    parts = []
    if failing:
        parts.append(f"The `cnn` family (Figure 3's topology, zero padding by default) is outside (H): "
                     f"{listing(failing)} fail{'s' if len(failing) == 1 else ''} at every px, so no theorem gives its "
                     "gradient norm.")
    else:
        parts.append("The `cnn` family (Figure 3's topology, zero padding by default) satisfies H3 and (S).")
    theorem = zero["theorem_total"].tolist()
    if not spread(fam):
        differs = "" if not spread(fam + theorem[:1]) else f", not the theorems' {num(theorem[0])}"
        parts.append(f"Its exact annealed `E||grad f||^2` is {num(fam[0])} at each of {px_list(px)}{differs}.")
        dil = listing(str(int(v)) for v in zero["family_dilation"])
        if spread(fixed):
            parts.append(f"That value does not change with d because the family's dilation grows with px ({dil}): "
                         f"at a fixed dilation {int(zero['fixed_dilation'].iloc[0])} the exact value is "
                         f"{' → '.join(num(v) for v in fixed)} at {' → '.join(str(int(p)) for p in px)} px. Its "
                         "d-independence is a property of this family, not a theorem.")
        else:
            parts.append(f"At a fixed dilation {int(zero['fixed_dilation'].iloc[0])} it is the same ({num(fixed[0])}).")
    else:
        parts.append(f"Its exact annealed `E||grad f||^2` changes with d: {' → '.join(num(v) for v in fam)} at "
                     f"{' → '.join(str(int(p)) for p in px)} px.")
    circ = zero["exact_circular"].tolist()
    if not spread(circ + theorem):
        parts.append(f"With circular padding it is {num(circ[0])} at every px, the theorems' value.")
    rows = totals[totals["family"] == "cnn"]
    scaling = verdicts[(verdicts["family"] == "cnn") & (verdicts["kind"] == "scaling")]
    clause = _total_clause(rows)
    parts.append(clause[:1].upper() + clause[1:] + f"; {_exponents(scaling)}.")
    relation = "outside" if failing else _relation(rows["verdict"].tolist() + scaling["verdict"].tolist())
    return Finding("zero-padding", "theorems-4-5", relation, "Zero padding and the constant of Theorems 4/5",
                   " ".join(parts))


def _trend(fit: pd.Series) -> str:
    if fit["ci_low"] > -1:
        return "decays more slowly than 1/a (its interval lies above -1), so the excess grows with a"
    if fit["ci_high"] < -1:
        return "decays faster than 1/a (its interval lies below -1)"
    return "is consistent with 1/a"


def _infinite_width_sentence(configs: pd.DataFrame, states: pd.Series, detectable: float) -> str:
    """How much of the measured excess the infinite-width prediction accounts for, from the residuals."""
    lo, hi = configs["residual_ci_low"].astype(float), configs["residual_ci_high"].astype(float)
    resid = pd.Series("undecided", index=configs.index)
    resid[(lo >= -detectable) & (hi <= detectable)] = "within"
    resid[lo > 0] = "above"
    resid[hi < 0] = "below"
    measured = configs[states == "above"]
    head = (f"Against the infinite-width prediction (gate correlations kept), the measured value "
            f"{_state_counts(resid, detectable)} of the {len(configs)} networks (interval of the residual)")
    if measured.empty:
        return head + "; no network has an excess over the annealed value beyond its interval, so there is none to explain."
    share = (measured["infinite_width"] - measured["annealed"]) / (measured["mean"] - measured["annealed"])
    inside = int((resid[measured.index] == "within").sum())
    return (head + f"; of the {len(measured)} networks whose excess over the annealed value lies above 0, it accounts "
            f"for {share.min():.0%} to {share.max():.0%} of the excess (median {share.median():.0%}), and the residual "
            f"is within ±{100 * detectable:g} % in {inside}.")


def pooling(configs: pd.DataFrame, fits: pd.DataFrame, detectable: float) -> Finding:
    """Average pooling: excess over the annealed 2/prod a per network, and the exponent in a.

    ``detectable``: an excess whose interval contains 0 counts as *within* only when the
    interval also lies inside ±detectable; otherwise the data do not decide.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50)         # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_pooling
    >>> res = run_pooling(small, options, settings)
    >>> f = pooling(res.configs, res.fits, detectable=0.05)
    >>> f.relation                      # 100 networks cannot tell a 5 % excess apart
    'undecided'
    >>> "With 1 conv (a = 1..16), `E||grad f||^2` ~ a^-0.994 ± 0.019 is consistent with 1/a" in f.text
    True
    """
    states = _excess_states(configs, detectable)
    same = all(t is not None and t == t and abs(float(Fraction(str(t))) - a) <= 1e-12 * a
               for t, a in zip(configs["theorem"], configs["annealed"]))
    parts = [f"Against the exact annealed `E||grad f||^2`{' (here 2/prod a)' if same else ''}, the measured value "
             f"{_state_counts(states, detectable)} of the {len(configs)} pooling networks (interval of the excess)."]
    single = configs[configs["pool_layers"] <= 1]
    largest = [single[single["convolutions"] == c].sort_values("degree").iloc[-1]
               for c in sorted(single["convolutions"].unique())]
    parts.append("At the largest degree of each series the excess is " + listing(
        f"{pct_pm(r['excess'], r['excess_se'])} ({int(r['convolutions'])} conv, a = {int(r['degree'])}, "
        f"{int(r['networks'])} networks)" for r in largest) + ".")
    if "residual" in configs:
        parts.append(_infinite_width_sentence(configs, states, detectable))
    for _, fit in fits.iterrows():
        meaning = {"pass": "Theorems 7/11 hold as a scaling law in a for these networks",
                   "fail": "Theorems 7/11 do not hold as a scaling law in a for these networks",
                   }.get(fit["verdict"], "these data do not decide whether Theorems 7/11 hold as a scaling law")
        parts.append(f"With {int(fit['convolutions'])} conv (a = {int(fit['a_min'])}..{int(fit['a_max'])}), "
                     f"`E||grad f||^2` ~ a^{pm(fit['estimate'], fit['stderr'], sign=True)} {_trend(fit)}; the "
                     f"exponent claim against -1 within ±{num(fit['tolerance'])} is {fit['verdict']}: {meaning}.")
    if states.isin(["above", "below"]).any():
        relation = "disagrees"
        parts.append("Where the interval of the excess excludes 0, the annealed value is not the real networks' value.")
    elif (states == "within").all():
        relation = _relation(fits["verdict"].tolist())
    else:
        relation = "undecided"
    return Finding("pooling", "theorems-7-11", relation, "Theorems 7 and 11 with average pooling", " ".join(parts))


def figure3(exponents: pd.DataFrame) -> Finding:
    """The Figure 3 networks: fitted exponent of E||grad L||_1 and whether a theorem covers them.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50)         # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_figure3, run_theorems_4_5
    >>> res = run_figure3(small, options, settings, run_theorems_4_5(small, options, settings))
    >>> f = figure3(res.exponents)
    >>> f.relation                      # the literal network lies outside the hypotheses
    'outside'
    >>> "The literal network (2x2 max pooling, BatchNorm, global max pool; outside (H)" in f.text
    True
    """
    parts, relation = [], "undecided"
    for r in exponents.itertuples():
        fit = (f"`E||grad L||_1` ~ d^{pm(r.estimate, r.stderr, sign=True)} at initialisation (interval "
               f"{signed(r.ci_low)}..{signed(r.ci_high)})")
        if r.verdict == "not-covered":
            contains = r.ci_low <= 0.5 <= r.ci_high
            parts.append(f"The {r.network} ({r.description}; {r.note}) is not tested against a theorem; {fit}, an "
                         f"interval that {'contains' if contains else 'excludes'} 0.5.")
            relation = "outside" if str(r.note).startswith("outside") else relation
        else:
            meaning = {"pass": "within the tolerance of sqrt(d)", "fail": "not sqrt(d) within the tolerance"}.get(
                r.verdict, "not decided by these data")
            parts.append(f"The {r.network} ({r.description}; {r.note}): {fit}; the exponent claim against 0.5 is "
                         f"{r.verdict} ({meaning}).")
            if relation == "undecided" and r.verdict in ("pass", "fail"):
                relation = "agrees" if r.verdict == "pass" else "disagrees"
    return Finding("figure3", "paper-figures", relation, "Figure 3's networks at initialisation", " ".join(parts))


def figure4_order(fig4: pd.DataFrame, confidence_z: float) -> Finding:
    """Which downsampling gives the smallest E||grad L||_1, at each px, separated by z standard errors.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50)         # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.claims import z_value
    >>> from initstats.report.experiments import run_figure4
    >>> f = figure4_order(run_figure4(small, options, settings).rows, z_value(0.99))
    >>> f.relation
    'agrees'
    >>> print(f.text[f.text.index("(8 px"):])
    (8 px: avg 0.480 ± 0.039, stride 2.93 ± 0.30, max 9.91 ± 0.72).
    """
    verdict_px: dict[int, str] = {}
    quoted = []
    for px, sub in fig4.groupby("px"):
        avg = sub[sub["downsampling"] == "avg"].iloc[0]
        others = sub[sub["downsampling"] != "avg"]
        diff = others["l1_mean"] - avg["l1_mean"]
        se = (others["l1_se"] ** 2 + avg["l1_se"] ** 2) ** 0.5
        if (diff > confidence_z * se).all():
            verdict_px[int(px)] = "smallest"
        elif (diff < -confidence_z * se).any():
            verdict_px[int(px)] = "not smallest"
        else:
            verdict_px[int(px)] = "not separated"
        quoted.append(f"{int(px)} px: " + ", ".join(f"{r.downsampling} {pm(r.l1_mean, r.l1_se)}"
                                                     for r in sub.sort_values("l1_mean").itertuples()))
    states = set(verdict_px.values())
    if states == {"smallest"}:
        lead, relation = ("At initialisation average pooling gives the smallest `E||grad L||_1` at every px, by more "
                          "than the interval of each difference, as the paper reports after training"), "agrees"
    elif "not smallest" in states:
        where = [p for p, v in verdict_px.items() if v == "not smallest"]
        lead, relation = (f"At initialisation average pooling does not give the smallest `E||grad L||_1` at "
                          f"{px_list(where)}, unlike the paper's trained networks"), "disagrees"
    else:
        where = [p for p, v in verdict_px.items() if v == "not separated"]
        lead, relation = (f"At {px_list(where)} average pooling cannot be separated from the other downsamplings "
                          "by these measurements"), "undecided"
    return Finding("figure4-order", "paper-figures", relation, "Figure 4: which downsampling has the smallest gradients",
                   f"{lead} ({'; '.join(quoted)}).")


def figure4_theory(fig4: pd.DataFrame, detectable: float) -> Finding:
    """Figure 4's networks: the theorems' 2/prod a_i, and the measured excess over the exact annealed value.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.verify import VerifySettings
    >>> small = replace(PROFILES["quick"], dims=(8, 16), channels=8, fc_width=16, pool_input=4, pool_sizes=(1, 2, 4),
    ...                 outside_nets=8, fig4_dims=(8,), fig4_nets=50)         # a report run in seconds
    >>> options, settings = MeasureOptions(nets=100, seed=0, device="cpu"), VerifySettings()
    >>> from initstats.report.experiments import run_figure4
    >>> f = figure4_theory(run_figure4(small, options, settings).rows, detectable=0.05)
    >>> f.relation
    'undecided'
    >>> "avg: 2/(1·4·4·4) = 1/32, stride: 2/1 = 2 and max: no value" in f.text
    True
    """
    first = fig4[fig4["px"] == fig4["px"].min()]
    values = []
    for r in first.itertuples():
        if r.theorem is None or (isinstance(r.theorem, float) and math.isnan(r.theorem)):
            values.append(f"{r.downsampling}: no value ({r.note})")
        else:
            degrees = str(r.pool_degrees)
            values.append(f"{r.downsampling}: 2/{degrees if '·' not in degrees else f'({degrees})'} = {r.theorem}")
    parts = [f"For Figure 4's networks at {int(first['px'].iloc[0])} px the theorems' value 2/prod a_i of "
             f"`E||grad f||^2` is {listing(values)} (a_i: the pooling degrees on every path, the global average "
             "pool included)."]
    covered = fig4[fig4["annealed"].notna()]
    states = _excess_states(covered, detectable)
    items = [f"{r.downsampling} at {int(r.px)} px {pct_pm(r.excess, r.excess_se)}" for r in covered.itertuples()]
    if len(covered):
        zero_h3 = covered["note"].astype(str).str.contains("H3").any()
        parts.append("Against the exact annealed value"
                     + (" (with the per-edge variances of zero padding, where H3 fails)" if zero_h3 else "")
                     + f", the measured excess is {listing(items)}: the measured value "
                     f"{_state_counts(states, detectable)} of these {len(covered)}.")
    if states.isin(["above", "below"]).any():
        relation = "disagrees"
    elif len(covered) and (states == "within").all():
        relation = "agrees"
    else:
        relation = "undecided" if len(covered) else "outside"
    return Finding("figure4-theory", "paper-figures", relation, "Figure 4: the theorems' value and the measured excess",
                   " ".join(parts))


def lemma2(curve: pd.DataFrame, scaling: pd.DataFrame, confidence_z: float, tolerance: float = 0.1) -> Finding:
    """Lemma 2: where the first-order damage is within ``tolerance`` of the true one, and its growth in d.

    Examples
    --------
    >>> curve = pd.DataFrame({"px": 32, "eps": [1e-4, 1e-3, 1e-2, 1e-1], "ratio_mean": [0.999, 0.985, 0.88, 0.41],
    ...                       "ratio_se": 0.002})
    >>> scaling = pd.DataFrame([{"eps": 1e-3, "verdict": "pass", "estimate": 0.514, "stderr": 0.005, "tolerance": 0.1}])
    >>> f = lemma2(curve, scaling, confidence_z=2.576)
    >>> f.relation
    'agrees'
    >>> print(f.text.split(". ")[0])
    At 32 px the first-order damage `eps ||grad L||_1` is within 10 % of a one-step attack's true loss increase (interval of their ratio) for eps up to 0.001
    >>> lemma2(curve, scaling.assign(verdict="fail"), confidence_z=2.576).relation
    'disagrees'
    """
    c = curve.sort_values("eps").reset_index(drop=True)
    lo, hi = c["ratio_mean"] - confidence_z * c["ratio_se"], c["ratio_mean"] + confidence_z * c["ratio_se"]
    inside = (lo >= 1 - tolerance) & (hi <= 1 + tolerance)
    k = 0
    while k < len(c) and inside.iloc[k]:
        k += 1
    px = int(c["px"].iloc[0])
    parts = []
    if k:
        parts.append(f"At {px} px the first-order damage `eps ||grad L||_1` is within {100 * tolerance:g} % of a one-step "
                     f"attack's true loss increase (interval of their ratio) for eps up to {c['eps'].iloc[k - 1]:g}.")
    else:
        parts.append(f"At {px} px the first-order damage is not within {100 * tolerance:g} % of the true loss increase at "
                     f"any eps tried (smallest: {c['eps'].iloc[0]:g}).")
    beyond = c.iloc[k:]
    if len(beyond):
        worst = beyond.iloc[-1]
        if (hi.iloc[k:] < 1).all():
            parts.append(f"Beyond, it overestimates the true increase (ratio true / first-order "
                         f"{pm(worst['ratio_mean'], worst['ratio_se'])} at eps = {worst['eps']:g}).")
        elif (lo.iloc[k:] > 1).all():
            parts.append(f"Beyond, it underestimates the true increase (ratio true / first-order "
                         f"{pm(worst['ratio_mean'], worst['ratio_se'])} at eps = {worst['eps']:g}).")
    s = scaling.iloc[0]
    meaning = {"pass": "it grows like sqrt(d) within the tolerance, as Theorem 5 with eq. (3) predicts",
               "fail": "it does not grow like sqrt(d) within the tolerance"}.get(
        s["verdict"], "these data do not decide whether it grows like sqrt(d)")
    parts.append(f"At fixed eps = {s['eps']:g} the true increase grows like d^{pm(s['estimate'], s['stderr'], sign=True)}"
                 f"; the exponent claim against 0.5 within ±{num(s['tolerance'])} is {s['verdict']}: {meaning}.")
    return Finding("lemma2", "lemma2", _relation([s["verdict"]]), "Lemma 2 against a one-step attack", " ".join(parts))
