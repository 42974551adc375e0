"""Pages, tables and figures of the generated report.

Every table of a page is written as CSV under ``data/`` and rendered into the page from that
CSV (read back), behind a marker ``<!-- table: data/NAME.csv -->``; every figure is a PNG under
``figures/`` with the plotted data as ``data/NAME.csv`` beside it.  So every number a page shows
comes from a file the run wrote, and :func:`render_table` reproduces any table from its CSV
(the report test checks exactly that).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import write_atomic

__all__ = ["cell", "render_table", "Page", "ReportWriter", "TABLE_MARKER"]

TABLE_MARKER = re.compile(r"<!-- table: (data/[A-Za-z0-9_.-]+\.csv) -->")


def cell(v: object) -> str:
    """How a value is shown in a page: 4 significant digits for floats, '–' for missing.

    Examples
    --------
    >>> cell(0.123456), cell(3.0), cell(True), cell(None), cell(float("nan")), cell(float("-inf"))
    ('0.1235', '3', 'yes', '–', '–', '-inf')
    >>> print(cell("H3 | (S)"))             # escaped for a Markdown table
    H3 \\| (S)
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return f"{x:g}"
        if x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_table(frame: pd.DataFrame) -> str:
    """A Markdown table of a frame, every cell through :func:`cell`.

    Examples
    --------
    >>> print(render_table(pd.DataFrame({"px": [32, 64], "mean": [0.74841, 1.30151], "H3": [False, False]})))
    | px | mean | H3 |
    |---|---|---|
    | 32 | 0.7484 | no |
    | 64 | 1.302 | no |
    """
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def _roundtrip(frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    text = frame.to_csv(index=False)
    return text, pd.read_csv(io.StringIO(text), keep_default_na=True)


@dataclass
class Page:
    """One Markdown page: a title and blocks of text, tables and figures, in order.

    Examples
    --------
    >>> page = Page("lemmas", "Lemma 8")
    >>> page.text("Exact results.  ")
    >>> page.text("**Reading** ...")
    >>> print(page.markdown())
    # Lemma 8
    <BLANKLINE>
    Exact results.
    <BLANKLINE>
    **Reading** ...
    <BLANKLINE>
    """

    slug: str
    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, markdown: str) -> None:
        self.blocks.append(markdown.strip())

    def markdown(self) -> str:
        return f"# {self.title}\n\n" + "\n\n".join(self.blocks) + "\n"


class ReportWriter:
    """Writes pages into ``out/report/`` (figures and data beside them) atomically.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     writer = ReportWriter(Path(tmp))
    ...     page = Page("demo", "A demo page")
    ...     back = writer.table(page, "demo_totals", pd.DataFrame({"px": [32], "mean": [0.74841]}), "**Totals**")
    ...     path = writer.page(page)
    ...     print(path.read_text())
    ...     print(sorted(str(p.relative_to(tmp)) for p in writer.written))
    # A demo page
    <BLANKLINE>
    **Totals**
    <BLANKLINE>
    <!-- table: data/demo_totals.csv -->
    | px | mean |
    |---|---|
    | 32 | 0.7484 |
    <BLANKLINE>
    ['report/data/demo_totals.csv', 'report/demo.md']
    """

    def __init__(self, out: Path) -> None:
        self.root = Path(out) / "report"
        (self.root / "figures").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def _write(self, rel: str, content: str | bytes) -> None:
        path = self.root / rel
        if path in self.written:
            raise ValueError(f"report file {rel} written twice: give each table and figure its own name")
        write_atomic(path, content)
        self.written.append(path)

    def table(self, page: Page, name: str, frame: pd.DataFrame, caption: str = "") -> pd.DataFrame:
        """Write ``data/NAME.csv`` and put the table, rendered from that CSV, on the page."""
        text, back = _roundtrip(frame)
        self._write(f"data/{name}.csv", text)
        block = (f"{caption.strip()}\n\n" if caption else "") + f"<!-- table: data/{name}.csv -->\n" + render_table(back)
        page.text(block)
        return back

    def figure(self, page: Page, name: str, fig, data: pd.DataFrame, caption: str) -> None:
        """Write ``figures/NAME.png`` and its data ``data/NAME.csv``; put both on the page."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        self._write(f"figures/{name}.png", buf.getvalue())
        self._write(f"data/{name}.csv", data.to_csv(index=False))
        page.text(f"![{caption}](figures/{name}.png)\n\n*{caption}* (data: [data/{name}.csv](data/{name}.csv))")

    def page(self, page: Page) -> Path:
        self._write(f"{page.slug}.md", page.markdown())
        return self.root / f"{page.slug}.md"
