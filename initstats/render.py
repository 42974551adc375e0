"""Rendering of result frames: terminal tables (rich), Markdown, CSV and JSON.

Library functions return tidy DataFrames; this module only turns them into text.  Exact
fractions are shown as ``p/q`` when short and as a float with the exact value's size otherwise
(JSON and CSV always carry the exact ``p/q``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from fractions import Fraction

import pandas as pd

from .exact.results import GraphAnalysis, OutputAnalysis

__all__ = ["show_fraction", "witness_text", "exact_summary_frame", "frame_to_markdown", "rich_table", "frame_to_csv", "to_json",
           "output_groups"]


def show_fraction(x: Fraction | None, width: int = 10) -> str:
    """Short display of an exact value: ``'2'``, ``'1/32'``, or ``'0.75249'`` when long."""
    if x is None:
        return "-"
    s = str(x)
    return s if len(s) <= width else f"{float(x):.5g}"


def output_groups(analysis: GraphAnalysis) -> list[tuple[list[str], OutputAnalysis]]:
    """Outputs grouped by identical results (e.g. all logits of a dense head), in order."""
    groups: list[tuple[list[str], OutputAnalysis, dict]] = []
    for out in analysis.outputs:
        summary = out.to_dict()
        for names, first, s in groups:
            if s == summary:
                names.append(out.output)
                break
        else:
            groups.append(([out.output], out, summary))
    return [(names, first) for names, first, _ in groups]


def _names_label(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    stems = {n.split("[", 1)[0] for n in names}
    if len(stems) == 1 and all(n.endswith("]") and n.count("[") == 1 for n in names):
        stem = stems.pop()
        first, last = names[0][len(stem) + 1:-1], names[-1][len(stem) + 1:-1]
        return f"{stem}[{first}..{last}]"
    return f"{names[0]} +{len(names) - 1} more"


def _runs(values: Sequence[int]) -> str:
    parts = []
    for v, grp in itertools.groupby(values):
        n = len(list(grp))
        parts.append(f"{v}x{n}" if n > 1 else str(v))
    return "{" + ",".join(parts) + "}"


def witness_text(out: OutputAnalysis) -> str:
    """``x[0,0,0] vs x[0,0,1]: path-degree {18,64x6,96,256} on 7.73e+10 vs 8.16e+10 paths``."""
    w = out.witness
    if w is None:
        return "-"
    return (f"{w.inputs[0]} vs {w.inputs[1]}: path-degree {_runs(w.path_degree)} on "
            f"{w.counts[0]:.3g} vs {w.counts[1]:.3g} paths")


def exact_summary_frame(analyses: Iterable[GraphAnalysis], *, witness: bool = True) -> pd.DataFrame:
    """One display row per (network, group of identical outputs)."""
    rows = []
    for a in analyses:
        for names, out in output_groups(a):
            row = {
                "px": a.px if a.px is not None else "-", "d": a.d, "outputs": _names_label(names),
                "Σr (L8)": show_fraction(out.lemma8_sum),
                "(S)": "yes" if out.symmetric else "no",
                "L9": "yes" if out.lemma9_holds else "no",
                "max|dr-1|": show_fraction(out.lemma9_max_dev, 8),
                "E‖∇f‖²": show_fraction(out.grad_sq_total),
                "theorem": show_fraction(out.theorem_total),
                "hyp.": out.hypothesis,
                "H3": "yes" if out.h3_holds else "no",
            }
            if witness:
                row["witness of not (S)"] = witness_text(out)
            rows.append(row)
    return pd.DataFrame(rows)


def frame_to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = list(frame.columns)
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def rich_table(frame: pd.DataFrame, title: str | None = None):
    """A :class:`rich.table.Table` of a display frame."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    return table


def _jsonable(v: object) -> object:
    if isinstance(v, Fraction):
        return str(v)
    if hasattr(v, "item"):
        return v.item()  # numpy scalars
    return v


def frame_to_csv(frame: pd.DataFrame) -> str:
    """CSV text with exact fractions as ``p/q``."""
    return frame.map(_jsonable).to_csv(index=False)


def to_json(obj: object) -> str:
    """JSON text (fractions as ``p/q``)."""
    return json.dumps(obj, indent=2, default=_jsonable)
