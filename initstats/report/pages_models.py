"""The report's page of standard models (:mod:`initstats.empirical.zoo`): one section per model.

Written like the other pages (:mod:`initstats.report.pages`): what was run, the tables of the
experiment's frames, and the finding selected for each model.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._format import percent
from .core import Page, ReportWriter
from .experiments import ModelsResult
from .findings import Finding
from .pages import _VERDICT_COLS

__all__ = ["models_page"]


def models_page(writer: ReportWriter, models: ModelsResult, findings: Sequence[Finding], confidence: float,
                excess_tolerance: float) -> None:
    """Standard models (:mod:`initstats.empirical.zoo`): hypotheses, exact prediction, measurement, excess, exponents.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import replace
    >>> from pathlib import Path
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.report.experiments.models import ModelCase, run_models
    >>> from initstats.report.findings.models import models_findings
    >>> from initstats.report.profiles import PROFILES
    >>> from initstats.spec import Arch, Conv, Dense, MaxPool
    >>> from initstats.verify import VerifySettings
    >>> def net(sizes):
    ...     return [Arch((3, px, px), (Conv(2, padding="circular"), MaxPool(2), Dense(2, activation=None)), name="net")
    ...             for px in sizes]
    >>> res = run_models(PROFILES["quick"], MeasureOptions(seed=0, device="cpu"), VerifySettings(),
    ...                  cases=[ModelCase("net", "conv and max pool", (4, 8), net, 40)])
    >>> with tempfile.TemporaryDirectory() as out:
    ...     writer = ReportWriter(Path(out))
    ...     models_page(writer, res, models_findings(res.cases, res.rows, res.exponents, res.errors), 0.99, 0.1)
    ...     page = (writer.root / "models.md").read_text()
    ...     written = sorted(str(p.relative_to(writer.root)) for p in writer.written)
    >>> written
    ['data/models_net_exponents.csv', 'data/models_net_sizes.csv', 'models.md']
    >>> "No annealed value exists at 4 and 8 px" in page
    True
    """
    page = Page("models", "Standard models: ResNet-18 layout, DenseNet block, VGG stack, 1-D conv net, MLP")
    cases = models.cases
    where = {"px": "{} px", "length": "lengths {}", "features": "{} input features"}
    sizes = "; ".join(f"`{c.model}` at {where.get(c.size_name, '{}').format(c.sizes)} ({c.networks} networks per size)"
                      for c in cases.itertuples())
    page.text(f"""Each model of `initstats.empirical.zoo` (plain torch, no torchvision) run as
`initstats verify --module initstats.empirical.zoo:NAME` would run it: traced by `torch.fx` into the spec
both engines read, one spec per input size, and verified by `verify_archs`.  Sizes and networks: {sizes};
He-initialised weights, zero biases, one input per network.  *hypothesis set*, *failed* and *witnesses* are the
exact engine's checks of H1-H5 and (S); *exact annealed* is its `E||grad f||^2` (fractions, shown as
decimals) and *theorem* the theorems' 2/prod a_i where they give one.  The claim on the measured
`E||grad f||^2` is *exact* where the annealed value is exact for real networks, an *excess*
(measured/annealed - 1, its {percent(confidence)} interval, equivalence within ±{percent(excess_tolerance)})
where average pools or residual sums merge paths after ReLUs, and *not-covered* (measured only) where no
annealed value exists.  The exponents are the scaling claims of `verify` across the sizes (log-log fits of
the norms in d against finite-d references from the exact per-coordinate map).""")
    mine = {f.key: f for f in findings if f.page == page.slug}
    errors = dict(zip(models.errors["model"], models.errors["message"]))
    for case in cases.itertuples():
        page.text(f"## `{case.model}`\n\n{case.description}.")
        if case.model in errors:
            page.text(f"Not computed: the tracer or an engine stopped with\n\n```\n{errors[case.model]}\n```")
        else:
            rows = models.rows[models.rows["model"] == case.model].drop(columns=["model"])
            rows = rows.dropna(axis=1, how="all").rename(columns={
                "size": case.size_name, "hypothesis": "hypothesis set", "failed": "failed hypotheses",
                "merges": "deterministic merges", "claim_kind": "claim", "annealed": "exact annealed E|grad f|^2",
                "theorem": "theorem 2/prod a_i", "not_covered": "why not covered", "mean": "measured E|grad f|^2",
                "se": "SE", "excess_se": "excess SE", "excess_ci_low": "excess CI low",
                "excess_ci_high": "excess CI high", "tolerance": "excess tolerance"})
            writer.table(page, f"models_{case.model}_sizes", rows,
                         f"**{case.model}: hypotheses, exact prediction and measurement** per input size.")
            exps = models.exponents[models.exponents["model"] == case.model]
            exps = exps[["statistic", "kind", *_VERDICT_COLS]].rename(columns=_VERDICT_COLS)
            if len(exps):
                writer.table(page, f"models_{case.model}_exponents", exps.dropna(axis=1, how="all"),
                             f"**{case.model}: fitted exponents in d** of the gradient norms across the sizes.")
            else:
                page.text(f"No exponent is fitted: {len(rows)} size{'s' if len(rows) != 1 else ''} measured.")
        finding = mine.get(f"model-{case.model}")
        if finding is not None:
            page.text("**Reading** (selected from this run's verdicts and exact values; see "
                      "[findings](findings.md)).\n\n" + finding.markdown(link=False))
    writer.page(page)
