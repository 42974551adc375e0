"""What ``--out`` writes: the tables, JSON, report and figures of a verification or an exact analysis.

Every file is written atomically (:func:`initstats.files.write_atomic`); tables first, so that a
failure while plotting loses nothing already computed.  The text itself comes from
:mod:`initstats.render`, the figures from :mod:`initstats.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .exact.results import GraphAnalysis
from .render import (coordinate_map_frame, exact_csv, exact_inputs_frame, exact_json, frame_to_csv, report_markdown,
                     to_json)

__all__ = ["write_exact", "write_verification"]


def write_exact(analyses: Sequence[GraphAnalysis], out: str | Path) -> list[Path]:
    """Write graph.json (:func:`exact_json`), summary.csv (:func:`exact_csv`) and inputs.csv
    (:func:`exact_inputs_frame`) into ``out``, each file atomically; exact values as ``p/q``.

    Examples
    --------
    >>> import tempfile
    >>> from initstats.exact import analyse
    >>> from initstats.families import make_arch
    >>> out = Path(tempfile.mkdtemp())
    >>> [p.name for p in write_exact([analyse(make_arch("fc", 4, width=8))], out)]
    ['graph.json', 'summary.csv', 'inputs.csv']
    """
    from .files import write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"graph.json": exact_json(analyses), "summary.csv": exact_csv(analyses),
             "inputs.csv": frame_to_csv(exact_inputs_frame(analyses))}
    for name, text in files.items():
        write_atomic(out / name, text)
    return [out / name for name in files]


def write_verification(result, out: str | Path, *, command: str, plot: bool = False) -> list[Path]:
    """Write rows.csv, claims.csv, verify.json, report.md, the per-coordinate maps (``map_px_32.csv``,
    ``map_px_32_pool_2.csv``, ``map_graph.csv``), ``widths.csv`` with width trends
    and, with ``plot``, figures into ``out``, each file atomically.

    Tables are written first, so that a failure while plotting loses nothing already computed.

    Examples
    --------
    >>> from initstats.empirical.measure import MeasureOptions
    >>> from initstats.verify import verify_family
    >>> res = verify_family("fc", [4, 8], family_options={"width": 16, "depth": 1},
    ...                     options=MeasureOptions(nets=100, seed=0, device="cpu"))
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = [p.name for p in write_verification(res, tmp, command="initstats verify fc --dims 4 8")]
    >>> written
    ['rows.csv', 'claims.csv', 'verify.json', 'map_px_4.csv', 'map_px_8.csv', 'report.md']
    """
    from .files import write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("rows.csv", frame_to_csv(result.rows)), ("claims.csv", frame_to_csv(result.claims_frame())),
                       ("verify.json", to_json(result.to_dict()))):
        write_atomic(out / name, text)
        written.append(out / name)
    if result.width_trends:
        write_atomic(out / "widths.csv", frame_to_csv(result.width_frame()))
        written.append(out / "widths.csv")
    for stem, m, exact in zip(_map_stems(result), result.measurements, result.analyses):
        write_atomic(out / f"{stem}.csv", coordinate_map_frame(m, exact).to_csv(index=False))
        written.append(out / f"{stem}.csv")
    figures: list[str] = []
    write_atomic(out / "report.md", report_markdown(result, command=command))
    written.append(out / "report.md")
    if plot:
        figures = _write_figures(result, out)
        write_atomic(out / "report.md", report_markdown(result, command=command, figures=figures))
        written += [Path(f) for f in figures]
    return written


def _write_figures(result, out: Path) -> list[str]:
    from .plots import plot_coordinate_map, plot_scaling, save_figure
    from .claims import SCALING_LAWS

    paths = []
    rows = result.rows
    if "pool" in rows.columns:
        rows = rows[rows["pool"] == rows["pool"].min()]
    if rows["d"].nunique() >= 2:
        fig = plot_scaling(rows, {k: v[0] for k, v in SCALING_LAWS.items()}, title="gradient norms against d")
        save_figure(fig, out / "scaling.png")
        paths.append(str(out / "scaling.png"))
    for stem, m, exact in zip(_map_stems(result), result.measurements, result.analyses):
        first = exact.outputs[0]
        if first.grad_sq is None:
            continue
        arch_shape = _input_shape(exact, m)
        fig = plot_coordinate_map(m.coord_mean[0], first.grad_sq.to_numpy(), arch_shape,
                                  title=f"{exact.name}, d={m.d}: per-coordinate E(df/dx)^2")
        path = out / f"{stem}.png"
        save_figure(fig, path)
        paths.append(str(path))
    return paths


def _map_stems(result) -> list[str]:
    """File stems of the per-coordinate maps, one per measurement: ``map_px_32``, ``map_px_32_pool_2``."""
    labels = result.labels or tuple(f"d{m.d}" for m in result.measurements)
    return ["map_" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) for label in labels]


def _input_shape(exact, m) -> tuple[int, ...]:
    """The input grid of a compressed analysis, or a flat shape for a DAG."""
    shape = getattr(exact.outputs[0].walk, "shape", None)
    return tuple(shape) if shape is not None else (1, m.d)
