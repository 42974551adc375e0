"""Verify against the infinite-width prediction (issue 13): rows, claims, and a wrong value rejected.

One hidden circular convolution, an 8x8 average pool and a dense logit (8x8x3 inputs): the
annealed value 2/64 ignores the correlation of the gates the pool merges, and real networks
measure about 0.0340 (the issue's independent NNGP value 0.033999); the infinite-width value is
exact at every width here, so an exact claim against it must pass, and the same test against the
annealed value (a wrong prediction for real networks) must fail.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from initstats.cli import app
from initstats.empirical.measure import MeasureOptions
from initstats.exact import analyse
from initstats.infinite import infinite_width_claim, with_infinite_width
from initstats.spec import Arch, AvgPool, Conv, Dense
from initstats.verification import VerifySettings
from initstats.verify import verify_archs

ARCH = Arch((3, 8, 8), (Conv(4, padding="circular"), AvgPool(8), Dense(1, activation=None)), name="pooled")


def test_one_hidden_layer_passes_the_exact_infinite_width_claim_and_rejects_the_annealed_value():
    res = verify_archs([ARCH], options=MeasureOptions(nets=6000, seed=3, device="cpu"),
                       settings=VerifySettings(infinite_width=8))
    claim = next(c for c in res.claims if c.name == "grad_sq_infinite_width[px=8]")
    assert claim.kind == "exact" and claim.verdict == "pass", claim.detail
    assert claim.predicted == pytest.approx(0.0340, rel=0.01)
    row = res.rows[res.rows["statistic"] == "grad_logit_l2_sq"].iloc[0]
    assert row["predicted_infinite_width"] == claim.predicted and row["predicted"] == pytest.approx(2 / 64)
    # the same values tested against the annealed 2/64 as if it were the infinite-width value: rejected
    out = res.analyses[0].outputs[0]
    wrong = replace(out, grad_sq_infinite_width=2 / 64)
    values = res.measurements[0].per_net["grad_logit_l2_sq"][:, 0]
    assert infinite_width_claim("px=8", wrong, values).verdict == "fail"


def test_without_the_option_nothing_changes():
    res = verify_archs([ARCH], options=MeasureOptions(nets=200, seed=0, device="cpu"))
    assert "predicted_infinite_width" not in res.rows
    assert not any(c.name.startswith("grad_sq_infinite_width") for c in res.claims)
    assert analyse(ARCH).outputs[0].infinite_width_note is None


def test_deeper_networks_get_the_finite_width_deviation():
    arch = Arch((3, 8, 8), (Conv(4, padding="circular"), Conv(4, padding="circular"), AvgPool(4),
                            Dense(1, activation=None)), name="two layers")
    out = with_infinite_width(analyse(arch), arch, n_inputs=4).outputs[0]
    assert out.infinite_width_exact is False and "infinite-width limit" in out.infinite_width_note
    runner = CliRunner()
    res = runner.invoke(app, ["verify", "--arch", "cnn-avgpool", "--dims", "16", "--channels", "2", "--padding",
                              "circular", "--nets", "200", "--infinite-width", "2", "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    data = json.loads(res.output)
    claim = next(c for c in data["claims"] if c["claim"].startswith("grad_sq_infinite_width"))
    assert claim["kind"] == "excess" and "O(1/width)" in claim["detail"]
    assert any(r.get("predicted_infinite_width") for r in data["rows"])
    bad = runner.invoke(app, ["verify", "--arch", "fc", "--dims", "4", "--infinite-width", "-2"])
    assert bad.exit_code == 2 and "infinite_width=-2" in bad.output


def test_without_merges_the_prediction_is_the_exact_annealed_value_at_any_size(monkeypatch):
    """The default cnn (strided convolutions, dense head) merges no gates: its infinite-width value is
    the annealed path sum for every x (the recursion agrees, tests/test_infinite_width.py), so at 64 px
    it is taken from the exact engine instead of the recursion, which is not run at all."""
    import initstats.empirical.infinite_width as iw
    from initstats.families import make_arch

    def not_run(*args, **kwargs):
        raise AssertionError("the recursion ran")

    monkeypatch.setattr(iw, "infinite_width", not_run)
    arch = make_arch("cnn", 64, channels=2)
    analysis = with_infinite_width(analyse(arch), arch)
    for out in analysis.outputs:
        assert out.grad_sq_infinite_width == float(out.grad_sq_total) and out.grad_sq_infinite_width_se is None
        assert out.infinite_width_exact and "exact annealed path sum" in out.infinite_width_note
    pooled = make_arch("cnn-avgpool", 16, channels=2)   # merges: the recursion is needed
    with pytest.raises(AssertionError, match="the recursion ran"):
        with_infinite_width(analyse(pooled), pooled)


def test_a_sampled_prediction_carries_its_error_into_the_claim():
    from initstats.families import make_arch
    arch = make_arch("cnn-avgpool", 32, channels=2)
    out = with_infinite_width(analyse(arch), arch, n_inputs=4, coordinates=200).outputs[0]
    assert "sampled, 1 in" in out.infinite_width_note and out.grad_sq_infinite_width_se > 0
    rng = __import__("numpy").random.default_rng(0)
    values = rng.gamma(4.0, out.grad_sq_infinite_width / 4.0, size=20000)
    claim = infinite_width_claim("px=32", out, values)
    assert "prediction's own standard error" in claim.detail


def test_verify_widths_fits_the_deviation_against_one_over_width(tmp_path):
    """``verify --widths``: each network measured at each width, the deviation from the infinite-width
    value fitted against 1/width; claims, a widths table (JSON, table, widths.csv) and clear errors."""
    runner = CliRunner()
    args = ["verify", "--arch", "cnn-avgpool", "--dims", "8", "--channels", "2", "--padding", "circular",
            "--nets", "300", "--widths", "2,4", "--infinite-width", "2"]
    res = runner.invoke(app, args + ["--format", "json"])
    assert res.exit_code in (0, 1), res.output
    data = json.loads(res.output)
    assert [r["width"] for r in data["widths"]] == [2, 4] and {r["label"] for r in data["widths"]} == {"px=8"}
    names = [c["claim"] for c in data["claims"]]
    assert "width_trend:infinite_width[px=8]" in names and "width_trend:annealed[px=8]" in names
    table = runner.invoke(app, args + ["--out", str(tmp_path / "o"), "--no-plot"])
    assert "widths" in table.output and (tmp_path / "o" / "widths.csv").exists()
    assert "## Widths" in (tmp_path / "o" / "report.md").read_text()
    one = runner.invoke(app, ["verify", "--arch", "cnn", "--dims", "8", "--widths", "4"])
    assert one.exit_code == 2 and "widths [4] are invalid" in one.output
    spec = runner.invoke(app, ["verify", "--module", "tests/models.py:vgg_like", "--dims", "8", "--widths", "2,4"])
    assert spec.exit_code == 2 and "--widths needs a family" in spec.output
