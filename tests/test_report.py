"""`initstats report --profile quick` into a temporary folder: every page, table and figure, from the run.

The quick profile takes a few minutes on a 2-core CPU; it runs once per test session.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from initstats.cli.reference import cli_reference_markdown
from initstats.report import SECTIONS, build_report
from initstats.report.core import TABLE_MARKER, render_table

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    result = build_report(out, profile="quick", device="cpu", seed=0)
    return out, result


def test_every_page_and_the_index_are_written(report):
    out, result = report
    assert (out / "index.md").is_file() and (out / "cli.md").is_file()
    for slug, _ in SECTIONS:
        page = out / "report" / f"{slug}.md"
        assert page.is_file(), slug
        assert page.read_text().startswith("# ")
        assert f"report/{slug}.md" in (out / "index.md").read_text()
    assert set(result.seconds) == {slug for slug, _ in SECTIONS}


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
        # no table without a marker: every Markdown table row block follows a marker
        blocks = re.findall(r"(?:^|\n\n)(<!-- table: [^>]+ -->\n)?\| ", text)
        assert all(blocks), f"{slug}: a table without its data file"
    assert tables >= 9


def test_every_figure_exists_with_its_data(report):
    out, _ = report
    figures = 0
    for slug, _ in SECTIONS:
        text = (out / "report" / f"{slug}.md").read_text()
        for name in re.findall(r"\(figures/([A-Za-z0-9_.-]+)\.png\)", text):
            png = out / "report" / "figures" / f"{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
            data = pd.read_csv(out / "report" / "data" / f"{name}.csv")
            assert len(data) > 0
            figures += 1
    assert figures >= 6


def test_links_resolve(report):
    out, _ = report
    for page in [out / "index.md", *(out / "report").glob("*.md")]:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (page.parent / target).resolve()
            generated = resolved.is_relative_to(out.resolve())
            # links to the hand-written guides point into the repository's docs/
            if generated and not resolved.exists():
                resolved = (REPO / "docs" / resolved.relative_to(out.resolve())).resolve()
            assert resolved.exists(), f"{page.name}: broken link {target}"


def test_the_findings_are_computed(report):
    out, _ = report
    text = (out / "report" / "findings.md").read_text()
    items = re.findall(r"^\d+\. \*\*", text, flags=re.M)
    assert len(items) >= 6
    assert "3x3 stride-2 convolutions break (S)" in text


def test_the_cli_reference_is_the_generated_one(report):
    out, _ = report
    assert (out / "cli.md").read_text() == cli_reference_markdown()


def test_the_exact_atlas_matches_the_committed_docs(report):
    """The atlas is exact (no sampling), so it must be identical on every machine."""
    out, _ = report
    for rel in ("report/lemmas.md", "report/data/lemmas_atlas.csv"):
        committed = REPO / "docs" / rel
        if not committed.exists():
            pytest.skip("docs/report is not generated yet: run `initstats report --out docs/`")
        assert (out / rel).read_text() == committed.read_text(), f"docs/{rel} is stale: run `initstats report --out docs/`"


def test_the_atlas_shows_that_strided_3x3_convolutions_break_symmetry(report):
    out, _ = report
    atlas = pd.read_csv(out / "report" / "data" / "lemmas_atlas.csv")
    circ = atlas[(atlas["architecture"] == "conv x2") & (atlas["padding"] == "circular")
                 & (atlas["dilation"].astype(str) == "1")]
    s3 = circ[(circ["kernel"].astype(str) == "3") & (circ["stride"].astype(str) == "2")]
    s2 = circ[(circ["kernel"].astype(str) == "2") & (circ["stride"].astype(str) == "2")]
    assert not s3["(S)"].iloc[0] and s2["(S)"].iloc[0]
    assert (atlas["Lemma 8 sum r"].astype(str) == "1").all()
