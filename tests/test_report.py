"""The report: finding selectors on synthetic verdict frames (both outcomes), exact facts, and
`initstats report --profile quick` end to end into a temporary folder.

The selectors are tested on frames built here, so that each test flips the data and checks that
the sentence flips with it.  The quick profile takes a few minutes on a 2-core CPU; it runs once
per test session.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from initstats.claims import Claim
from initstats.exact import analyse
from initstats.report import SECTIONS, build_report
from initstats.report.core import TABLE_MARKER, render_table
from initstats.families import make_arch
from initstats.report.experiments.exact import hypotheses_note, window_coverage, zero_padding_frame
from initstats.report.experiments.measured import pool_arch
from initstats.report.findings import RELATIONS, Finding
from initstats.report.findings import exact as fx
from initstats.report.findings import measured as fm
from initstats.report.verdicts import claim_statistic, claims_frame
from initstats.report.wording import pct_pm, pm
from initstats.spec import Arch, Conv, Dense

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
Z99 = 2.5758293035489


# --------------------------------------------------------------------------------------------
# exact facts the findings rest on
# --------------------------------------------------------------------------------------------

def test_window_coverage_matches_the_exact_engine_and_has_odd_positions_doubly_covered():
    """One 3x3 stride-2 circular layer: the annealed gradient of input (i, j) is proportional to the
    number of windows reading i times the number reading j; even positions 1 window, odd 2."""
    cov = window_coverage(32, 3, 2, 1, 1, "circular")
    assert cov[0::2].tolist() == [1] * 16 and cov[1::2].tolist() == [2] * 16
    arch = Arch((1, 32, 32), (Conv(1, 3, stride=2, padding="circular", pad=1), Dense(1, activation=None)))
    grad = analyse(arch).outputs[0].grad_sq.to_numpy().reshape(32, 32)
    np.testing.assert_allclose(grad / grad[0, 0], np.outer(cov, cov), rtol=1e-12)


def test_kernel2_stride2_dilation2_reads_a_quarter_of_the_inputs():
    cov = window_coverage(32, 2, 2, 2, 0, "zero")
    assert int(np.count_nonzero(cov)) == 16 and cov[1::2].sum() == 0
    arch = Arch((1, 32, 32), (Conv(4, 2, stride=2, dilation=2, pad=0), Dense(3, activation=None)))
    out = analyse(arch).outputs[0]
    assert int(np.count_nonzero(out.walk.to_numpy() > 0)) == 256 and not out.symmetric


def test_zero_padded_cnn_is_constant_only_because_its_dilation_grows():
    frame = zero_padding_frame((32, 64))
    assert frame["exact_family"].tolist() == pytest.approx([0.752489, 0.752489], abs=1e-6)
    assert frame["exact_fixed"].tolist() == pytest.approx([0.752489, 1.301510], abs=1e-6)
    assert frame["exact_circular"].tolist() == [2.0, 2.0]
    assert not frame["h3_holds"].any() and not frame["symmetric"].any()


def test_hypotheses_note_names_what_fails():
    zero = make_arch("cnn", 32, channels=2)
    assert hypotheses_note(analyse(zero).outputs[0], zero).endswith("H3 and (S) fail")
    circular = make_arch("cnn", 32, channels=2, padding="circular")
    assert hypotheses_note(analyse(circular).outputs[0], circular) == "no checked hypothesis fails"
    literal = make_arch("cnn", 32, channels=2, downsample="max", head="maxpool", batchnorm=True)
    assert hypotheses_note(analyse(literal).outputs[0], literal).startswith("outside (H) with max pooling and BatchNorm;")


def test_pool_networks_count_every_convolution():
    arch = pool_arch(16, 1, (2, 2))
    assert sum(isinstance(layer, Conv) for layer in arch.layers) == 2


# --------------------------------------------------------------------------------------------
# wording and verdict frames
# --------------------------------------------------------------------------------------------

def test_values_are_quoted_with_their_standard_errors():
    assert pm(0.74836, 0.009673) == "0.7484 ± 0.0097"
    assert pm(33.94, 0.2476) == "33.94 ± 0.25"
    assert pm(0.506, 0.00233, sign=True) == "+0.5060 ± 0.0023"
    assert pct_pm(0.3066, 0.0437) == "+30.7 % ± 4.4 %"


def test_claims_frame_reads_the_stable_fields():
    def claim(name, kind, verdict, **kw):
        return Claim(name=name, kind=kind, verdict=verdict, statement="s", **kw)

    claims = [claim("grad_sq_total[px=32]", "exact", "pass", predicted=2.0, estimate=2.01, stderr=0.02, d=3072),
              claim("grad_sq_map[px=32]", "exact", "fail", predicted=0.5, estimate=0.6, stderr=0.01, d=3072),
              claim("scaling:grad_logit_l1", "scaling", "inconclusive", predicted=0.5, estimate=0.55, stderr=0.05,
                    tolerance=0.1)]
    frame = claims_frame(claims, family="fc")
    assert frame["statistic"].tolist() == ["grad_sq_total", "grad_sq_map", "grad_logit_l1"]
    assert frame["verdict"].tolist() == ["pass", "fail", "inconclusive"]
    assert frame["family"].tolist() == ["fc"] * 3 and frame["tolerance"].iloc[2] == 0.1
    structured = SimpleNamespace(name="whatever", statistic="grad_loss_l1")
    assert claim_statistic(structured) == "grad_loss_l1"  # the structured field wins over the name


def test_a_finding_has_a_known_relation():
    with pytest.raises(ValueError, match="unknown relation"):
        Finding("k", "lemmas", "maybe", "T", "text")


# --------------------------------------------------------------------------------------------
# selectors: the sentence follows the data
# --------------------------------------------------------------------------------------------

def _atlas(s3: bool, s2: bool, s2d: bool, reached2d: int = 768, h3: bool = True) -> pd.DataFrame:
    def row(padding, k, s, dil, sym, reached=3072, lo=1, hi=1, h3_=True):
        return {"architecture": "conv x2", "padding": padding, "kernel": k, "stride": s, "dilation": dil,
                "lemma8_sum": "1", "symmetric": sym, "lemma9_max_dev": 0.0 if sym else 0.8, "inputs_reached": reached,
                "d": 3072, "windows_min": lo if sym else 0, "windows_max": hi if sym else 2, "h3_holds": h3_,
                "grad_sq_total": 2.0 if h3_ else 1.8, "theorem_total": "2",
                "witness": None if sym else "x[0,0,0] vs x[0,0,1]: 1 vs 2 paths"}
    return pd.DataFrame([row("circular", 3, 1, 1, True, lo=3, hi=3), row("circular", 3, 2, 1, s3),
                         row("circular", 2, 2, 1, s2), row("circular", 2, 2, 2, s2d, reached2d),
                         row("zero", 3, 1, 1, h3, h3_=h3)])


def _coverage(even: tuple[int, int], odd: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame([{"n": 32, "kernel": 3, "stride": 2, "dilation": 1, "padding": "circular", "pad": 1,
                          "even_min": even[0], "even_max": even[1], "odd_min": odd[0], "odd_max": odd[1],
                          "uncovered": 0}])


def test_strided_symmetry_follows_the_atlas():
    broken = fx.strided_symmetry(_atlas(False, True, False), _coverage((1, 1), (2, 2)))
    assert broken.relation == "disagrees"
    assert "two 3x3 stride-2 convolutions break (S)" in broken.text
    assert "even position with 1 window and each input at an odd position with 2 windows" in broken.text
    assert "read only 768 of the 3072 inputs and (S) fails" in broken.text
    assert "neither is the stride dividing the kernel size" in broken.text
    kept = fx.strided_symmetry(_atlas(True, True, True, reached2d=3072), _coverage((2, 2), (1, 1)))
    assert kept.relation == "agrees"
    assert "break (S)" not in kept.text and "satisfy (S) and Lemma 9" in kept.text
    assert "not sufficient" not in kept.text
    assert "even position with 2 windows and each input at an odd position with 1 window" in kept.text


def test_lemma8_and_padding_follow_the_atlas():
    atlas = _atlas(True, True, True, reached2d=3072)
    assert fx.lemma8(atlas).relation == "agrees"
    atlas.loc[2, "lemma8_sum"] = "3/4"
    bad = fx.lemma8(atlas)
    assert bad.relation == "disagrees" and "differs from 1 on 1 of 5" in bad.text
    ok = fx.padding(_atlas(True, True, True, reached2d=3072, h3=True))
    assert ok.relation == "agrees" and "Where H3 fails" not in ok.text
    failing = fx.padding(_atlas(True, True, True, reached2d=3072, h3=False))
    assert failing.relation == "outside"
    assert "Zero padding: (S) holds in 0 of 1 architectures and H3 in 0 of 1" in failing.text
    assert "below the theorems' value in 1 of the 1" in failing.text and "Where H3 fails" in failing.text


def test_aliasing_is_a_note_either_way():
    lost = fx.aliasing(pd.DataFrame([{"px": 256, "dilation": 8, "strided_layers": "2, 4, 6", "d": 196608,
                                      "inputs_reached": 3072, "inputs_unreached": 193536}]))
    kept = fx.aliasing(pd.DataFrame([{"px": 256, "dilation": 8, "strided_layers": "2, 4, 6", "d": 196608,
                                      "inputs_reached": 196608, "inputs_unreached": 0}]))
    assert lost.relation == kept.relation == "note"
    assert "193,536 of its 196,608 inputs" in lost.text and "no path" not in kept.text


def _totals(family: str, verdicts: list[str], pred: float = 2.0) -> pd.DataFrame:
    return pd.DataFrame([{"family": family, "px": px, "d": 3 * px * px, "networks": 500, "mean": pred * 1.01,
                          "se": 0.02, "predicted": pred, "verdict": v, "map_verdict": "pass"}
                         for px, v in zip((32, 64), verdicts)])


def _scaling(family: str, verdict: str) -> pd.DataFrame:
    return pd.DataFrame([{"family": family, "kind": "scaling", "statistic": "grad_logit_l2", "d": None,
                          "verdict": verdict, "estimate": 0.01, "stderr": 0.003, "ci_low": 0.002, "ci_high": 0.018,
                          "predicted": 0.0, "tolerance": 0.1}])


def test_theorems_fc_follows_the_verdicts():
    good = fm.theorems_fc(_totals("fc", ["pass", "pass"]), _scaling("fc", "pass"))
    assert good.relation == "agrees" and "agree with the prediction at every px" in good.text
    assert "every exponent claim passes" in good.text and "2.020 ± 0.020" in good.text
    bad = fm.theorems_fc(_totals("fc", ["pass", "fail"]), _scaling("fc", "pass"))
    assert bad.relation == "disagrees" and "fail at 64 px" in bad.text and "agree with" not in bad.text
    unsure = fm.theorems_fc(_totals("fc", ["pass", "pass"]), _scaling("fc", "inconclusive"))
    assert unsure.relation == "undecided" and "1 inconclusive" in unsure.text


def _zero(h3: bool, family: list[float], fixed: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"px": px, "d": 3 * px * px, "family_dilation": dil, "exact_family": f,
                          "fixed_dilation": 1, "exact_fixed": x, "exact_circular": 2.0, "theorem_total": 2.0,
                          "h3_holds": h3, "symmetric": h3, "hypothesis": "H", "note": ""}
                         for px, dil, f, x in zip((32, 64, 128), (1, 2, 4), family, fixed)])


def test_zero_padding_says_what_was_computed():
    cnn_ok = _totals("cnn", ["pass", "pass"], 0.7525)
    issue = fm.zero_padding(_zero(False, [0.7525] * 3, [0.7525, 1.302, 1.632]), cnn_ok, _scaling("cnn", "pass"))
    assert issue.relation == "outside"
    assert "H3 and (S) fail" in issue.text and "0.7525 → 1.302 → 1.632" in issue.text
    assert "not a theorem" in issue.text and "Theorem 4" not in issue.text
    moving = fm.zero_padding(_zero(True, [0.75, 1.3, 1.6], [0.75, 1.3, 1.6]), cnn_ok, _scaling("cnn", "pass"))
    assert moving.relation == "agrees" and "changes with d: 0.75 → 1.3 → 1.6" in moving.text
    assert "outside (H)" not in moving.text and "not a theorem" not in moving.text
    still = fm.zero_padding(_zero(False, [0.7525] * 3, [0.7525] * 3), cnn_ok, _scaling("cnn", "pass"))
    assert "At a fixed dilation 1 it is the same" in still.text and "grows with px" not in still.text


def _configs(excess: list[float], se: float) -> pd.DataFrame:
    rows = []
    for (convs, degree), ex in zip(((1, 1), (1, 4), (1, 16), (3, 1), (3, 16)), excess):
        annealed = 2 / degree
        rows.append({"convolutions": convs, "pools": "x", "degree": degree, "pool_layers": int(degree > 1),
                     "annealed": annealed, "theorem": f"2/{degree}" if degree > 1 else "2",
                     "mean": annealed * (1 + ex), "se": annealed * se, "networks": 512, "excess": ex, "excess_se": se,
                     "excess_ci_low": ex - Z99 * se, "excess_ci_high": ex + Z99 * se})
    return pd.DataFrame(rows)


def _fits(estimate: float, se: float, verdict: str) -> pd.DataFrame:
    return pd.DataFrame([{"convolutions": 1, "points": 3, "a_min": 1, "a_max": 16, "kind": "scaling",
                          "statistic": "pool", "d": None, "verdict": verdict, "estimate": estimate, "stderr": se,
                          "ci_low": estimate - Z99 * se, "ci_high": estimate + Z99 * se, "predicted": -1.0,
                          "tolerance": 0.1}])


def test_pooling_selects_excess_trend_and_scaling_from_the_data():
    grown = fm.pooling(_configs([0.0, 0.04, 0.11, 0.0, 0.13], 0.01), _fits(-0.975, 0.003, "pass"), 0.05)
    assert grown.relation == "disagrees"
    assert "exceeds it in 3" in grown.text and "+11.0 % ± 1.0 % (1 conv, a = 16, 512 networks)" in grown.text
    assert "decays more slowly than 1/a" in grown.text and "hold as a scaling law" in grown.text
    assert "up to" not in grown.text
    flat = fm.pooling(_configs([0.0, 0.001, -0.002, 0.0, 0.003], 0.01), _fits(-1.001, 0.003, "pass"), 0.05)
    assert flat.relation == "agrees" and "is within ±5 % of it in 5" in flat.text
    assert "exceeds" not in flat.text and "consistent with 1/a" in flat.text
    failed = fm.pooling(_configs([0.0, 0.001, -0.002, 0.0, 0.003], 0.01), _fits(-0.7, 0.01, "fail"), 0.05)
    assert failed.relation == "disagrees"
    assert "do not hold as a scaling law" in failed.text
    noisy = fm.pooling(_configs([0.0, 0.03, 0.02, 0.0, 0.03], 0.05), _fits(-0.99, 0.02, "inconclusive"), 0.05)
    assert noisy.relation == "undecided" and "cannot be told from it within ±5 %" in noisy.text
    assert "do not decide" in noisy.text


def _fig3(lo: float, hi: float, verdict: str) -> pd.DataFrame:
    return pd.DataFrame([
        {"network": "`cnn` family", "description": "zero padding", "kind": "scaling", "verdict": verdict,
         "estimate": 0.506, "stderr": 0.002, "ci_low": 0.5, "ci_high": 0.512, "predicted": 0.5, "tolerance": 0.1,
         "note": "H3 and (S) fail"},
        {"network": "literal network", "description": "max pooling", "kind": "not-covered", "verdict": "not-covered",
         "estimate": (lo + hi) / 2, "stderr": (hi - lo) / (2 * Z99), "ci_low": lo, "ci_high": hi,
         "predicted": math.nan, "tolerance": math.nan, "note": "outside (H) with max pooling; H1 fails"}])


def test_figure3_reports_coverage_and_the_interval():
    inside = fm.figure3(_fig3(0.45, 0.55, "pass"))
    assert inside.relation == "outside" and "an interval that contains 0.5" in inside.text
    assert "is pass (within the tolerance of sqrt(d))" in inside.text
    outside = fm.figure3(_fig3(0.52, 0.54, "fail"))
    assert "an interval that excludes 0.5" in outside.text and "not sqrt(d) within the tolerance" in outside.text


def _fig4(avg: float, stride: float, excess: float, excess_se: float) -> pd.DataFrame:
    rows = []
    for down, l1, theorem, degrees, annealed in (("avg", avg, "1/512", "4·4·4·16", 0.0013),
                                                 ("stride", stride, "1/8", "16", 0.082), ("max", 26.0, None, "16", None)):
        rows.append({"px": 32, "d": 3072, "downsampling": down, "l1_mean": l1, "l1_se": 0.2, "sq_mean": 0.1,
                     "sq_se": 0.01, "annealed": annealed, "theorem": theorem, "pool_degrees": degrees,
                     "hypothesis": "outside" if annealed is None else "H'",
                     "note": "outside (H) with max pooling; H1 fails" if annealed is None else "H3 fails",
                     "networks": 1024, "excess": None if annealed is None else excess,
                     "excess_se": None if annealed is None else excess_se,
                     "excess_ci_low": None if annealed is None else excess - Z99 * excess_se,
                     "excess_ci_high": None if annealed is None else excess + Z99 * excess_se})
    return pd.DataFrame(rows)


def test_figure4_order_follows_the_separated_means():
    assert fm.figure4_order(_fig4(1.7, 12.0, 0, 0.01), Z99).relation == "agrees"
    swapped = fm.figure4_order(_fig4(12.0, 1.7, 0, 0.01), Z99)
    assert swapped.relation == "disagrees" and "does not give the smallest" in swapped.text
    close = fm.figure4_order(_fig4(12.0, 12.1, 0, 0.01), Z99)
    assert close.relation == "undecided" and "cannot be separated" in close.text


def test_figure4_theory_quotes_the_pooling_degrees_and_the_excess_with_its_se():
    big = fm.figure4_theory(_fig4(1.7, 12.0, 0.31, 0.044), 0.05)
    assert "stride: 2/16 = 1/8" in big.text and "avg: 2/(4·4·4·16) = 1/512" in big.text
    assert "He's factor" not in big.text
    assert "avg at 32 px +31.0 % ± 4.4 %" in big.text and "exceeds it in 2" in big.text
    assert big.relation == "disagrees"
    small = fm.figure4_theory(_fig4(1.7, 12.0, 0.001, 0.005), 0.05)
    assert small.relation == "agrees" and "is within ±5 % of it in 2" in small.text


def _lemma2(ratios: list[float], verdict: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    curve = pd.DataFrame({"px": 32, "eps": [1e-4, 1e-3, 1e-2, 1e-1], "ratio_mean": ratios, "ratio_se": 0.002})
    scaling = pd.DataFrame([{"eps": 1e-3, "kind": "scaling", "statistic": "true_damage", "d": None,
                             "verdict": verdict, "estimate": 0.514, "stderr": 0.005, "ci_low": 0.501,
                             "ci_high": 0.527, "predicted": 0.5, "tolerance": 0.1}])
    return curve, scaling


def test_lemma2_follows_the_ratio_and_the_scaling_verdict():
    good = fm.lemma2(*_lemma2([0.999, 0.985, 0.88, 0.41], "pass"), Z99)
    assert good.relation == "agrees" and "for eps up to 0.001" in good.text
    assert "overestimates" in good.text and "grows like sqrt(d) within the tolerance" in good.text
    bad = fm.lemma2(*_lemma2([0.999, 0.985, 1.3, 1.6], "fail"), Z99)
    assert bad.relation == "disagrees" and "underestimates" in bad.text
    assert "does not grow like sqrt(d)" in bad.text
    unsure = fm.lemma2(*_lemma2([0.5, 0.6, 0.7, 0.8], "inconclusive"), Z99)
    assert unsure.relation == "undecided" and "not within 10 % of the true loss increase at any eps" in unsure.text


# --------------------------------------------------------------------------------------------
# the quick profile end to end
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    result = build_report(out, profile="quick", device="cpu", seed=0)
    return out, result


def test_every_page_and_the_index_are_written(report):
    out, result = report
    assert (out / "index.md").is_file()
    assert not (out / "cli.md").exists()  # the command line writes its own reference (test_cli_reference.py)
    index = (out / "index.md").read_text()
    for slug, _ in SECTIONS:
        page = out / "report" / f"{slug}.md"
        assert page.read_text().startswith("# "), slug
        assert f"report/{slug}.md" in index


def test_every_table_is_rendered_from_the_csv_the_run_wrote(report):
    out, result = report
    tables = 0
    for slug, _ in SECTIONS:
        text = (out / "report" / f"{slug}.md").read_text()
        for match in TABLE_MARKER.finditer(text):
            csv = out / "report" / match.group(1)
            assert csv in result.files, csv
            expected = render_table(pd.read_csv(io.StringIO(csv.read_text())))
            following = text[match.end():].lstrip("\n")
            assert following.startswith(expected), f"{slug}: table {match.group(1)} differs from its CSV"
            tables += 1
        blocks = re.findall(r"(?:^|\n\n)(<!-- table: [^>]+ -->\n)?\| ", text)
        assert all(blocks), f"{slug}: a table without its data file"
    assert tables == 26          # 16 (two of the finite-width trend), and two per standard model (5 models)


def test_every_figure_exists_with_its_data(report):
    out, _ = report
    names = []
    for slug, _ in SECTIONS:
        for name in re.findall(r"\(figures/([A-Za-z0-9_.-]+)\.png\)", (out / "report" / f"{slug}.md").read_text()):
            png = out / "report" / "figures" / f"{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
            assert len(pd.read_csv(out / "report" / "data" / f"{name}.csv")) >= 2, name
            names.append(name)
    assert sorted(names) == sorted(["thm45_scaling_fc_fig", "thm45_scaling_cnn_fig", "thm711_pooling_fig",
                                    "fig3_loss_l1_fig", "fig4_pooling_fig", "lemma2_eps_fig"])


def test_links_resolve(report):
    out, _ = report
    for page in [out / "index.md", *(out / "report").glob("*.md")]:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (page.parent / target).resolve()
            if resolved.is_relative_to(out.resolve()) and not resolved.exists():
                resolved = (REPO / "docs" / resolved.relative_to(out.resolve())).resolve()
            assert resolved.exists(), f"{page.name}: broken link {target}"


def test_the_pages_show_exactly_the_selected_findings(report):
    out, result = report
    keys = [f.key for f in result.findings]
    assert keys == ["lemma8", "strided-symmetry", "padding", "aliasing", "theorems-fc", "zero-padding", "pooling",
                    "finite-width", "figure3", "figure4-order", "figure4-theory", "lemma2", "model-resnet18_layout",
                    "model-densenet_block", "model-vgg_like", "model-conv1d_net", "model-mlp"]
    findings_page = (out / "report" / "findings.md").read_text()
    for f in result.findings:
        assert f.relation in RELATIONS
        assert f.markdown() in findings_page
        assert f.markdown(link=False) in (out / "report" / f"{f.page}.md").read_text()
    assert len(re.findall(r"^\d+\. \[", (out / "index.md").read_text(), flags=re.M)) == len(keys)


def test_the_written_data_hold_the_facts_the_findings_quote(report):
    out, result = report
    data = out / "report" / "data"
    atlas = pd.read_csv(data / "lemmas_atlas.csv")

    def circular(kernel: int, stride: int, dilation: int) -> pd.Series:
        sel = atlas[(atlas["architecture"] == "conv x2") & (atlas["padding"] == "circular") & (atlas["kernel"] == kernel)
                    & (atlas["stride"] == stride) & (atlas["dilation"] == dilation)]
        assert len(sel) == 1
        return sel.iloc[0]

    assert not circular(3, 2, 1)["(S)"] and circular(2, 2, 1)["(S)"] and not circular(2, 2, 2)["(S)"]
    assert circular(2, 2, 2)["inputs reached"] == 768 and circular(3, 2, 1)["windows per input"] == "1..2"
    assert (atlas["Lemma 8 sum r"].astype(str) == "1").all()
    coverage = pd.read_csv(data / "lemmas_coverage.csv")
    row = coverage[(coverage["kernel"] == 3) & (coverage["padding"] == "circular")].iloc[0]
    assert (row["even: min windows"], row["even: max windows"], row["odd: min windows"]) == (1, 1, 2)
    pools = pd.read_csv(data / "thm711_pooling.csv")
    assert pools.loc[pools["pools"] == "2x2 then 2x2", "convolutions"].tolist() == [2]
    zero = pd.read_csv(data / "thm45_zero_padding.csv")
    assert zero["exact, fixed dilation (zero padding)"].round(4).tolist() == [0.7525, 1.3015, 1.6321, 1.8114]
    assert zero["exact, family (zero padding)"].round(4).tolist() == [0.7525] * 4
    assert zero["H3"].tolist() == [False] * 4
    assert {f.key: f.relation for f in result.findings}["aliasing"] == "note"


def test_the_exact_atlas_matches_the_committed_docs(report):
    """The atlas is exact (no sampling), so it must be identical on every machine."""
    out, _ = report
    rel = "report/data/lemmas_atlas.csv"
    committed = REPO / "docs" / rel
    if not committed.exists():
        pytest.skip("docs/report is not generated yet: run `initstats report --out docs/`")
    assert (out / rel).read_text() == committed.read_text(), f"docs/{rel} is stale: run `initstats report --out docs/`"
