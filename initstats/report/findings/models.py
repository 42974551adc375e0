"""Findings of the standard-models page, one per zoo model, selected from its rows and verdicts.

Each sentence is chosen from the frames of :mod:`initstats.report.experiments.models`: the exact
engine's hypothesis set and failing hypotheses, the exact annealed value, the kind and verdict of
each ``grad_sq_total`` claim (its excess interval for excess claims), and the scaling claims'
verdicts.  A model without rows is reported with the message that stopped it.
"""

from __future__ import annotations

import pandas as pd

from ..wording import listing, num, pct_pm, pm, spread
from .base import Finding
from .measured import _exponents

__all__ = ["model_finding", "models_findings", "HYPOTHESIS_WORDS"]

#: the engine's hypothesis label, in words
HYPOTHESIS_WORDS = {"H": "(H)", "H'": "(H') but not (H)", "outside": "outside (H) and (H')"}

_ORDER = ("pass", "fail", "inconclusive", "not-covered")


def _sizes(values, unit: str) -> str:
    vals = [str(int(v)) for v in values]
    return listing(vals) + (f" {unit}" if unit == "px" else "") if unit == "px" else f"{unit} {listing(vals)}"


def _at(unit: str, size) -> str:
    return f"{int(size)} px" if unit == "px" else f"{unit} {int(size)}"


def _hypotheses(rows: pd.DataFrame, unit: str) -> str:
    groups = []
    keys = ["hypothesis", rows["failed"].fillna(""), rows["merges"].fillna("")]
    for (label, failed, merges), sub in rows.groupby(keys, sort=False):
        fails = [f for f in failed.split(", ") if f]
        what = (f"{listing(fails)} fail{'s' if len(fails) == 1 else ''} (witnesses in the table)" if fails
                else "every checked hypothesis holds")
        why = f" (deterministic merges: {listing(merges.split(', '))})" if label == "H'" and merges else ""
        groups.append(f"at {_sizes(sub['size'], unit)} the exact engine places it {HYPOTHESIS_WORDS.get(label, label)}"
                      f"{why}: {what}")
    text = "; ".join(groups)
    return text[:1].upper() + text[1:] + "."


def _excess_words(r) -> str:
    tol = f"±{100 * float(r.tolerance):g} %"
    where = ("above the annealed value" if r.excess_ci_low > 0 else "below the annealed value" if r.excess_ci_high < 0
             else "an interval containing 0")
    meaning = {"pass": f"within {tol}", "fail": f"beyond {tol}"}.get(r.verdict, f"not decided against {tol}")
    return f"{pct_pm(r.excess, r.excess_se)} ({where}; {r.verdict}: {meaning})"


def _predictions(rows: pd.DataFrame, unit: str) -> tuple[list[str], list[str]]:
    """Sentences about E||grad f||^2 per claim kind, and the verdicts they rest on."""
    parts, verdicts = [], []
    for kind, sub in rows.groupby("claim_kind", sort=False):
        measured = listing(f"{_at(unit, r.size)}: {pm(r.mean, r.se)}" for r in sub.itertuples())
        if kind == "not-covered":
            reasons = listing(sorted(set(sub["not_covered"].dropna().astype(str))))
            parts.append(f"No annealed value exists at {_sizes(sub['size'], unit)} ({reasons}), so no claim tests "
                         f"it: `E||grad f||^2` is measured only ({measured}).")
            continue
        annealed = sub["annealed"].astype(float).tolist()
        exact = (f"{num(annealed[0])} at every size" if not spread(annealed, 1e-12)
                 else listing(f"{num(a)} at {_at(unit, s)}" for a, s in zip(annealed, sub["size"])))
        verdicts += sub["verdict"].tolist()
        if kind == "exact":
            by = {v: sub.loc[sub["verdict"] == v, "size"].tolist() for v in _ORDER}
            said = "; ".join(f"{v} at {_sizes(s, unit)}" for v, s in by.items() if s)
            parts.append(f"Its exact annealed `E||grad f||^2` is {exact}, exact for real networks here (no "
                         f"deterministic merge): measured {measured}; the exact claims {said}.")
        else:
            merges = listing(dict.fromkeys(m for ms in sub["merges"].dropna().astype(str) for m in ms.split(", ")))
            parts.append(f"Its exact annealed `E||grad f||^2` is {exact}; {merges or 'deterministic merges'} "
                         f"merge paths after ReLUs, so for real networks the measured value ({measured}) is "
                         f"compared as an excess over it: "
                         + listing(f"{_at(unit, r.size)} {_excess_words(r)}" for r in sub.itertuples()) + ".")
    return parts, verdicts


def _fits(exps: pd.DataFrame) -> tuple[str, list[str]]:
    tested = exps[exps["kind"] == "scaling"]
    untested = exps[exps["kind"] != "scaling"]
    parts = []
    if len(tested):
        text = _exponents(tested)
        parts.append(text[:1].upper() + text[1:] + ".")
    if len(untested):
        parts.append("Fitted exponents in d, not tested (no exact per-coordinate values): " + listing(
            f"`{r.statistic}` {pm(r.estimate, r.stderr, sign=True)}" for r in untested.itertuples()) + ".")
    return " ".join(parts), tested["verdict"].tolist()


def _relation(verdicts: list[str], outside: bool) -> str:
    if "fail" in verdicts:
        return "disagrees"
    if outside and not verdicts:
        return "outside"
    if verdicts and all(v == "pass" for v in verdicts):
        return "agrees"
    return "outside" if outside else "undecided"


def model_finding(case: pd.Series, rows: pd.DataFrame, exponents: pd.DataFrame, error: str | None = None) -> Finding:
    """The finding of one zoo model from its rows (one per size), its scaling verdicts, or the error that stopped it.

    Examples
    --------
    >>> case = pd.Series({"model": "mlp", "description": "MLP", "size_name": "features", "sizes": "16, 64"})
    >>> rows = pd.DataFrame({"model": "mlp", "size": [16, 64], "d": [16, 64], "hypothesis": "H", "failed": None,
    ...                      "witnesses": None, "merges": None, "claim_kind": "exact", "annealed": 2.0, "theorem": "2",
    ...                      "not_covered": None, "mean": [2.01, 1.98], "se": 0.02, "networks": 400,
    ...                      "verdict": ["pass", "pass"]})
    >>> exps = pd.DataFrame({"model": ["mlp"], "kind": "scaling", "statistic": "grad_logit_l2", "estimate": 0.003,
    ...                      "stderr": 0.004, "predicted": 0.0, "tolerance": None, "verdict": "pass"})
    >>> f = model_finding(case, rows, exps)
    >>> f.key, f.relation
    ('model-mlp', 'agrees')
    >>> print(f.text.split(". ")[0])
    At features 16 and 64 the exact engine places it (H): every checked hypothesis holds
    >>> model_finding(case, rows.assign(verdict=["pass", "fail"]), exps).relation    # other verdicts, other finding
    'disagrees'
    >>> print(model_finding(case, rows.iloc[:0], exps.iloc[:0], "node 'sigmoid': not supported").text)
    `mlp` could not be verified: node 'sigmoid': not supported. Nothing was computed for it.
    """
    name = str(case["model"])
    title = f"Standard model `{name}`"
    if error is not None:
        return Finding(f"model-{name}", "models", "note", title,
                       f"`{name}` could not be verified: {error}. Nothing was computed for it.")
    unit = str(case["size_name"])
    preds, verdicts = _predictions(rows, unit)
    fits, fit_verdicts = _fits(exponents)
    outside = (rows["claim_kind"] == "not-covered").any()
    text = " ".join([_hypotheses(rows, unit), *preds, fits]).strip()
    return Finding(f"model-{name}", "models", _relation(verdicts + fit_verdicts, bool(outside)), title, text)


def models_findings(cases: pd.DataFrame, rows: pd.DataFrame, exponents: pd.DataFrame,
                    errors: pd.DataFrame) -> list[Finding]:
    """One :func:`model_finding` per model of a :class:`~initstats.report.experiments.models.ModelsResult`.

    Examples
    --------
    >>> cases = pd.DataFrame({"model": ["odd"], "description": "x", "size_name": None, "sizes": "8"})
    >>> empty = pd.DataFrame(columns=["model"])
    >>> [f.relation for f in models_findings(cases, empty, empty, pd.DataFrame({"model": ["odd"], "message": ["no"]}))]
    ['note']
    """
    errs = dict(zip(errors["model"], errors["message"]))
    return [model_finding(case, rows[rows["model"] == case["model"]], exponents[exponents["model"] == case["model"]],
                          errs.get(case["model"]))
            for _, case in cases.iterrows()]
