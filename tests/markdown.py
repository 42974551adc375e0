"""Reading generated Markdown back, for the tests of generated pages (benchmarks, calibration)."""

from __future__ import annotations

import re


def tables(md: str) -> list[list[dict[str, str]]]:
    """Every Markdown table of ``md``, in order, as rows of ``{header: cell}``."""
    out, block = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if block:
            header, rule, *rows = block
            assert all(re.fullmatch(r"-+:?", c) for c in rule), f"not a table rule: {rule}"
            assert all(len(r) == len(header) for r in rows), f"ragged table under {header}"
            out.append([dict(zip(header, r)) for r in rows])
            block = []
    return out
