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
from pathlib import Path

import pandas as pd

from ._format import show_fraction
from .exact.results import GraphAnalysis, OutputAnalysis

__all__ = ["show_fraction", "witness_text", "failed_hypotheses", "hypothesis_lines", "exact_summary_frame", "frame_to_markdown", "rich_table", "frame_to_csv",
           "to_json", "output_groups", "rows_display_frame", "claims_display_frame", "width_display_frame",
           "report_markdown"]


def output_groups(analysis: GraphAnalysis) -> list[tuple[list[str], OutputAnalysis]]:
    """Outputs grouped by identical results (e.g. all logits of a dense head), in order.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> [(names, first.name) for names, first in output_groups(a)]     # the three logits are alike
    [(['logits[0]', 'logits[1]', 'logits[2]'], 'logits[0]')]
    """
    groups: list[tuple[list[str], OutputAnalysis, dict]] = []
    for out in analysis.outputs:
        summary = out.to_dict()
        for names, first, s in groups:
            if s == summary:
                names.append(out.name)
                break
        else:
            groups.append(([out.name], out, summary))
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
    """``x[0,0,0] vs x[0,0,1]: path-degree {18,64x6,96,256} on 7.73e+10 vs 8.16e+10 paths``.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> witness_text(a.outputs[0])       # the border input has fewer paths than its neighbour
    'x[0,0] vs x[0,1]: path-degree {3,8} on 2 vs 4 paths'
    """
    w = out.witness
    if w is None:
        return "-"
    if w.path_degree is None:
        return w.text()
    return (f"{w.inputs[0]} vs {w.inputs[1]}: path-degree {_runs(w.path_degree)} on "
            f"{w.counts[0]:.3g} vs {w.counts[1]:.3g} paths")


def failed_hypotheses(out: OutputAnalysis) -> str:
    """The hypotheses H1-H5 that fail for an output, e.g. ``'H3,H5'``, or ``'-'``.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> failed_hypotheses(a.outputs[0])  # border neurons keep the variance 2/fan_in
    'H3'
    """
    failed = [c.name for c in out.hypotheses if not c.holds and c.name != "S"]
    return ",".join(failed) if failed else "-"


def hypothesis_lines(out: OutputAnalysis) -> list[tuple[str, str]]:
    """``('H5 fails', witness)`` per failing hypothesis H1-H5, then ``('E(df/dx)^2', reason)`` when
    the annealed value is not the plain path sum under H5.

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> hypothesis_lines(a.outputs[0])
    [('H3 fails', "edge 'x[0,0]' -> 'conv1[0,0]' has variance 2/3, not 2/in-degree = 2/2")]
    """
    lines = [(f"{c.name} fails", c.witness or "") for c in out.hypotheses if not c.holds and c.name != "S"]
    if out.grad_sq_reason is not None:
        lines.append(("E(df/dx)^2", out.grad_sq_reason))
    return lines


def exact_summary_frame(analyses: Iterable[GraphAnalysis], *, witness: bool = True) -> pd.DataFrame:
    """One display row per (network, group of identical outputs).

    Examples
    --------
    >>> from initstats.exact import analyse
    >>> from initstats.spec import Arch, Conv, Dense
    >>> a = analyse(Arch((1, 4), (Conv(2, 3), Dense(3, activation=None)), name="conv"))   # zero padding
    >>> row = exact_summary_frame([a]).iloc[0]
    >>> row["outputs"], row["Σr (L8)"], row["(S)"], row["E‖∇f‖²"], row["theorem"], row["fails"]
    ('logits[0..2]', '1', 'no', '5/3', '2', 'H3')
    """
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
                "hyp.": out.hypothesis_set,
                "H3": "yes" if out.h3_holds else "no",
                "H5": "yes" if out.h5_holds else "no",
                "fails": failed_hypotheses(out),
            }
            if out.infinite_width_note is not None:
                v, se = out.grad_sq_infinite_width, out.grad_sq_infinite_width_se
                row["∞-width"] = "-" if v is None else (f"{v:.5g}" + ("" if se is None else f" ± {se:.2g}")
                                                        + (" (exact)" if out.infinite_width_exact else ""))
            if witness:
                row["witness of not (S)"] = witness_text(out)
                row["failed hypotheses: witnesses"] = " | ".join(f"{k}: {v}" for k, v in hypothesis_lines(out)) or "-"
            rows.append(row)
    return pd.DataFrame(rows)


def frame_to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency).

    Examples
    --------
    >>> print(frame_to_markdown(pd.DataFrame({"px": [32, 64], "verdict": ["pass", "fail|?"]})))
    | px | verdict |
    |---|---|
    | 32 | pass |
    | 64 | fail\\|? |
    <BLANKLINE>
    """
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = list(frame.columns)
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def rich_table(frame: pd.DataFrame, title: str | None = None):
    """A :class:`rich.table.Table` of a display frame.

    Examples
    --------
    >>> table = rich_table(pd.DataFrame({"claim": ["grad_sq_total[px=32]"], "verdict": ["pass"]}), title="claims")
    >>> table.title, [c.header for c in table.columns], table.row_count
    ('claims', ['claim', 'verdict'], 1)
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(str(v)) for v in row))  # Text: no markup, node ids like x[0,1] stay literal
    return table


def _jsonable(v: object) -> object:
    if isinstance(v, Fraction):
        return str(v)
    if hasattr(v, "item"):
        return v.item()  # numpy scalars
    return v


def frame_to_csv(frame: pd.DataFrame) -> str:
    """CSV text with exact fractions as ``p/q``.

    Examples
    --------
    >>> print(frame_to_csv(pd.DataFrame({"d": [3], "grad_sq": [Fraction(2, 3)]})), end="")
    d,grad_sq
    3,2/3
    """
    return frame.map(_jsonable).to_csv(index=False)


def to_json(obj: object) -> str:
    """JSON text (fractions as ``p/q``).

    Examples
    --------
    >>> import numpy as np
    >>> print(to_json({"grad_sq_total": Fraction(2, 3), "d": np.int64(3)}))
    {
      "grad_sq_total": "2/3",
      "d": 3
    }
    """
    return json.dumps(obj, indent=2, default=_jsonable)


# -- verification ---------------------------------------------------------------------------

def _pm(mean: float, se: float) -> str:
    return f"{mean:.4g} ± {se:.2g}"


def _verdict_by_row(result) -> dict[tuple, str]:
    """Verdict shown beside each measured row, keyed by the claim's structured fields.

    Per-size claims on ``E||grad f||^2`` key on ``(statistic, d, pool, output)``; scaling claims in d
    (no ``d``) key on ``(statistic, None, None, None)``.  The pooling law (Theorems 7/11) tests no
    single row.
    """
    out: dict[tuple, str] = {}
    for c in result.claims:
        if c.statistic == "grad_logit_l2_sq" and c.kind != "scaling":
            out.setdefault(("grad_logit_l2_sq", c.d, c.pool, c.output), c.verdict)
        elif c.kind in ("scaling", "not-covered") and c.d is None and c.statistic is not None:
            out[(c.statistic, None, None, None)] = c.verdict
    return out


def width_display_frame(result) -> pd.DataFrame:
    """One display row per (size, width) of a verification's width trends (``widths=``): the measured
    mean ± SE, the infinite-width value, the deviation from it ± SE and the fitted ``a + b / width``.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import VerifySettings, verify_family
    >>> res = verify_family("cnn-avgpool", [8], family_options={"channels": 2, "padding": "circular"},
    ...                     options=MeasureOptions(nets=200, seed=0, device="cpu"), widths=[2, 4],
    ...                     settings=VerifySettings(infinite_width=2))
    >>> list(width_display_frame(res).columns), len(width_display_frame(res))
    (['size', 'width', 'mean ± SE', 'infinite width', 'deviation ± SE', 'fitted'], 2)
    """
    rows = []
    for r in result.width_frame().itertuples(index=False):
        rows.append({"size": r.label, "width": int(r.width), "mean ± SE": _pm(r.mean, r.se),
                     "infinite width": f"{r.infinite_width:.6g}",
                     "deviation ± SE": f"{r.deviation:+.2%} ± {r.deviation_se:.2%}", "fitted": f"{r.fitted:+.2%}"})
    return pd.DataFrame(rows)


def rows_display_frame(result) -> pd.DataFrame:
    """One display row per (input size, statistic): mean ± SE, networks, prediction, verdict.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import verify_family
    >>> res = verify_family("fc", [4, 8], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> frame = rows_display_frame(res)
    >>> list(frame.columns)
    ['px', 'd', 'statistic', 'mean ± SE', 'nets', 'predicted', 'verdict']
    >>> frame.query("statistic == 'grad_logit_l2_sq'")[["px", "predicted"]].values.tolist()
    [[4, '2'], [8, '2']]
    """
    verdicts = _verdict_by_row(result)
    multi_output = len(set(result.rows["output"].dropna())) > 1
    rows = []
    for r in result.rows.itertuples(index=False):
        pool = getattr(r, "pool", None)
        pool = None if pool is None or pd.isna(pool) else int(pool)
        if r.statistic == "grad_logit_l2_sq":  # DAG claims name their output; family claims do not
            verdict = verdicts.get(("grad_logit_l2_sq", r.d, pool, r.output)) or \
                verdicts.get(("grad_logit_l2_sq", r.d, pool, None), "")
        else:
            verdict = verdicts.get((r.statistic, None, None, None), "")
        row = {"px": "-" if r.px is None or pd.isna(r.px) else int(r.px), "d": r.d}
        if "pool" in result.rows.columns:
            row["pool"] = "-" if pool is None else pool
        row.update({"statistic": r.statistic, "mean ± SE": _pm(r.mean, r.stderr), "nets": r.n_nets,
                    "predicted": "-" if r.predicted is None or pd.isna(r.predicted) else f"{r.predicted:.6g}",
                    "verdict": verdict or "-"})
        if multi_output:
            row["output"] = "-" if r.output is None or pd.isna(r.output) else r.output
        rows.append(row)
    return pd.DataFrame(rows)


def claims_display_frame(result, width: int = 110) -> pd.DataFrame:
    """One display row per claim: name, kind, verdict, the reason.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import verify_family
    >>> res = verify_family("fc", [4, 8], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> frame = claims_display_frame(res, width=60)
    >>> list(frame.columns), len(frame) == len(res.claims), bool(frame["detail"].str.len().max() <= 60)
    (['claim', 'kind', 'verdict', 'detail'], True, True)
    """
    rows = []
    for c in result.claims:
        detail = c.detail if len(c.detail) <= width else c.detail[: width - 3] + "..."
        rows.append({"claim": c.name, "kind": c.kind, "verdict": c.verdict, "detail": detail})
    return pd.DataFrame(rows)


def report_markdown(result, *, command: str, figures: Sequence[str] = ()) -> str:
    """A Markdown report of a verification: settings, measurements, claims, figures.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import verify_family
    >>> res = verify_family("fc", [4, 8], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> md = report_markdown(res, command="initstats verify fc --dims 4 8")
    >>> md.splitlines()[0], "## Measurements" in md, "| scaling:grad_logit_l2 | scaling |" in md
    ('# initstats verify report', True, True)
    """
    m0 = result.measurements[0]
    lines = [
        "# initstats verify report", "",
        f"Command: `{command}`", "",
        f"Device {m0.device}; {m0.inputs_per_net} input(s) per network; means and standard errors over independent "
        f"networks.", "",
        "## Measurements", "",
        frame_to_markdown(rows_display_frame(result)),
        "## Claims", "",
        frame_to_markdown(pd.DataFrame([{"claim": c.name, "kind": c.kind, "verdict": c.verdict,
                                         "statement": c.statement, "detail": c.detail} for c in result.claims])),
    ]
    if result.width_trends:
        lines += ["## Widths", "", "Each network at several widths: the deviation of the measured mean from the "
                  "infinite-width value, fitted as a + b / width (claims `width_trend:*`).", "",
                  frame_to_markdown(width_display_frame(result))]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + [""]
    return "\n".join(lines)


def coordinate_map_frame(measurement, analysis) -> pd.DataFrame:
    """Per input coordinate: measured ``E(df/dx_i)^2`` (first measured output), its SE, the exact value."""
    first = analysis.outputs[0]
    predicted = first.grad_sq.to_numpy() if first.grad_sq is not None else None
    names = measurement.input_names or tuple(str(n) for n, _ in first.walk.items())
    return pd.DataFrame({"input": names, "measured": measurement.coord_mean[0], "stderr": measurement.coord_se[0],
                         "predicted": predicted if predicted is not None else float("nan")})


def exact_inputs_frame(analyses: Sequence[GraphAnalysis]) -> pd.DataFrame:
    """One row per (d, output group, input coordinate): the walk probability ``r``, ``d r`` and the
    exact annealed ``E(df/dx)^2`` as fractions, with float copies.  Outputs with identical results
    (the logits of a dense head) share one block; ``outputs`` names the group, ``output`` its first."""
    frames = []
    for a in analyses:
        for names, out in output_groups(a):
            f = a.inputs_frame(out.name)
            f.insert(2, "outputs", _names_label(names))
            f["px"] = a.px
            frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    for col in ("r", "grad_sq"):
        frame[f"{col}_float"] = [None if v is None else float(v) for v in frame[col]]
    return frame[["arch", "d", "px", "output", "outputs", "input", "r", "d_r", "grad_sq", "r_float", "grad_sq_float"]]


def exact_json(analyses: Sequence[GraphAnalysis]) -> str:
    """What ``initstats graph --format json`` prints: one object per size, a list when several."""
    payload = [a.to_dict() for a in analyses]
    return to_json(payload[0] if len(payload) == 1 else payload)


def exact_csv(analyses: Sequence[GraphAnalysis]) -> str:
    """What ``initstats graph --format csv`` prints: one row per (size, output, quantity)."""
    return frame_to_csv(pd.concat([a.to_frame() for a in analyses], ignore_index=True))
