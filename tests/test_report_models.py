"""The report's standard-models page: its rows are the exact engine's and the measurement's values,
a max-pooling model is reported as not covered with the reason, a model the tracer rejects shows
the tracer's message, and the findings follow the verdicts (flip a verdict, the sentence flips)."""

from __future__ import annotations

import io
from dataclasses import replace

import pandas as pd
import pytest
import torch
from torch import nn

from initstats.empirical import zoo
from initstats.empirical.measure import MeasureOptions
from initstats.empirical.modules import module_archs
from initstats.exact import analyse
from initstats.report.core import TABLE_MARKER, ReportWriter, render_table
from initstats.report.experiments.models import ModelCase, model_cases, run_models
from initstats.report.findings.models import model_finding, models_findings
from initstats.report.pages_models import models_page
from initstats.report.profiles import PROFILES
from initstats.verify import VerifySettings, verify_module

TINY = replace(PROFILES["quick"], model_px=(8, 16), model_lengths=(8, 16), model_features=(8, 16), model_width=2,
               model_nets=40)
OPTIONS = MeasureOptions(seed=0, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    return run_models(TINY, OPTIONS, VerifySettings())


@pytest.fixture(scope="module")
def page(tiny, tmp_path_factory):
    writer = ReportWriter(tmp_path_factory.mktemp("docs"))
    findings = models_findings(tiny.cases, tiny.rows, tiny.exponents, tiny.errors)
    models_page(writer, tiny, findings, 0.99, 0.1)
    return writer, (writer.root / "models.md").read_text(), findings


def test_every_zoo_model_has_rows_at_every_size(tiny):
    assert tiny.errors.empty, tiny.errors.to_dict("records")
    assert tiny.cases["model"].tolist() == list(zoo.MODELS)
    for case in model_cases(TINY):
        assert tiny.rows.loc[tiny.rows["model"] == case.name, "size"].tolist() == list(case.sizes)


def test_rows_equal_the_exact_engine(tiny):
    for case in model_cases(TINY):
        for arch in case.archs(case.sizes):
            out = analyse(arch).outputs[0]
            size = arch.px if arch.px is not None else arch.d
            row = tiny.rows[(tiny.rows["model"] == case.name) & (tiny.rows["size"] == size)].iloc[0]
            assert row["hypothesis"] == out.hypothesis_set
            failed = ["(S)" if c.name == "S" else c.name for c in out.hypotheses if not c.holds]
            assert (row["failed"] if isinstance(row["failed"], str) else "") == ", ".join(failed)
            for c in out.hypotheses:
                if not c.holds and c.witness:
                    assert c.witness in row["witnesses"]
            if out.grad_sq_total is None:
                assert pd.isna(row["annealed"])
            else:
                assert row["annealed"] == float(out.grad_sq_total)


def test_rows_equal_what_verify_module_prints(tiny):
    """The CLI's path (verify_module on the zoo factory) gives the page's means, verdicts and excesses."""
    res = verify_module(zoo.conv1d_net(), [8, 16], options=replace(OPTIONS, nets=4 * TINY.model_nets))
    rows = tiny.rows[tiny.rows["model"] == "conv1d_net"].reset_index(drop=True)
    totals = [c for c in res.claims if c.name.startswith("grad_sq_total[")]
    for row, m, claim in zip(rows.itertuples(), res.measurements, totals):
        mean, se = m.mean_se("grad_logit_l2_sq")
        assert (row.mean, row.se, row.networks) == (mean, se, m.n_nets)
        assert (row.claim_kind, row.verdict) == (claim.kind, claim.verdict) == ("excess", claim.verdict)
        assert (row.excess, row.excess_ci_low, row.excess_ci_high) == (claim.estimate, claim.ci_low, claim.ci_high)
        assert row.excess == pytest.approx(mean / row.annealed - 1, rel=0.05, abs=0.02)   # calibrated vs plain mean


def test_max_pooling_is_not_covered_with_the_reason(tiny, page):
    rows = tiny.rows[tiny.rows["model"] == "vgg_like"]
    assert (rows["hypothesis"] == "outside").all()
    assert (rows["claim_kind"] == "not-covered").all() and (rows["verdict"] == "not-covered").all()
    assert rows["annealed"].isna().all() and rows["excess"].isna().all()
    assert rows["not_covered"].str.contains("maxpool").all()
    assert rows["failed"].str.contains("H1").all()
    _, text, findings = page
    finding = {f.key: f for f in findings}["model-vgg_like"]
    assert finding.relation == "outside"
    assert "No annealed value exists at 8 and 16 px (no annealed model: maxpool" in finding.text
    assert finding.markdown(link=False) in text
    exps = tiny.exponents[tiny.exponents["model"] == "vgg_like"]
    assert set(exps["verdict"]) == {"not-covered"}


def test_the_page_tables_are_rendered_from_their_csv(page, tiny):
    writer, text, _ = page
    tables = 0
    for match in TABLE_MARKER.finditer(text):
        csv = writer.root / match.group(1)
        assert text[match.end():].lstrip("\n").startswith(render_table(pd.read_csv(io.StringIO(csv.read_text()))))
        tables += 1
    assert tables == 2 * len(tiny.cases)
    mlp = pd.read_csv(writer.root / "data" / "models_mlp_sizes.csv")
    assert mlp["exact annealed E|grad f|^2"].tolist() == [2.0, 2.0]
    assert mlp["features"].tolist() == [8, 16]


class _Sigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.sigmoid(self.fc1(x)))


def test_a_model_the_tracer_rejects_shows_the_tracers_message(tmp_path):
    case = ModelCase("sigmoid_net", "a sigmoid MLP", (8,), lambda sizes: module_archs(_Sigmoid()), 20)
    res = run_models(TINY, OPTIONS, VerifySettings(), cases=[case])
    assert res.rows.empty and res.errors["model"].tolist() == ["sigmoid_net"]
    message = res.errors["message"].iloc[0]
    assert "sigmoid" in message
    findings = models_findings(res.cases, res.rows, res.exponents, res.errors)
    assert [f.relation for f in findings] == ["note"] and message in findings[0].text
    writer = ReportWriter(tmp_path)
    models_page(writer, res, findings, 0.99, 0.1)
    text = (writer.root / "models.md").read_text()
    assert message in text and "<!-- table:" not in text


def test_findings_follow_the_verdicts(tiny):
    """Flip a verdict or an interval in the frames: the selected sentence and relation flip with it."""
    case = tiny.cases.set_index("model", drop=False)
    mlp_rows = tiny.rows[tiny.rows["model"] == "mlp"]
    mlp_exps = tiny.exponents[tiny.exponents["model"] == "mlp"]
    passing = model_finding(case.loc["mlp"], mlp_rows.assign(verdict="pass"), mlp_exps.assign(verdict="pass"))
    failing = model_finding(case.loc["mlp"], mlp_rows.assign(verdict=["pass", "fail"]),
                            mlp_exps.assign(verdict="pass"))
    assert passing.relation == "agrees" and "the exact claims pass at features 8 and 16" in passing.text
    assert failing.relation == "disagrees" and "fail at features 16" in failing.text
    rows = tiny.rows[tiny.rows["model"] == "conv1d_net"]
    exps = tiny.exponents[tiny.exponents["model"] == "conv1d_net"].assign(verdict="pass")
    within = rows.assign(excess=0.01, excess_se=0.01, excess_ci_low=-0.02, excess_ci_high=0.04, verdict="pass")
    above = rows.assign(excess=0.4, excess_se=0.05, excess_ci_low=0.27, excess_ci_high=0.53, verdict="fail")
    f_within = model_finding(case.loc["conv1d_net"], within, exps)
    f_above = model_finding(case.loc["conv1d_net"], above, exps)
    assert f_within.relation == "agrees" and "an interval containing 0; pass: within ±10 %" in f_within.text
    assert f_above.relation == "disagrees" and "above the annealed value; fail: beyond ±10 %" in f_above.text
