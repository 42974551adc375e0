"""What ``initstats sweep --out DIR`` writes beside its store: the whole sweep's tables, JSON and report.

``rows.csv`` and ``claims.csv`` (a ``case`` column first), ``sweep.json`` (``{"rows": [...],
"claims": [...], "warnings": [...]}``) and ``report.md`` for the whole sweep, and in
``cases/NAME/`` what ``initstats verify --out`` writes for each case (its tables, per-coordinate
maps, report and figures).  Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from ..files import write_atomic
from ..render import frame_to_csv, frame_to_markdown, report_markdown, to_json
from ..saving import write_verification
from .run import SweepResult

__all__ = ["write_sweep", "case_dir"]


def case_dir(name: str) -> str:
    """A case's folder name: its name with anything but letters, digits, ``-`` and ``_`` as ``_``.

    Examples
    --------
    >>> case_dir("cnn#2"), case_dir("zero padding")
    ('cnn_2', 'zero_padding')
    """
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def sweep_markdown(result: SweepResult, *, command: str) -> str:
    """The sweep's report: a summary table of verdicts per case, then each case's ``verify`` report."""
    import pandas as pd

    summary = pd.DataFrame([{"case": c, "claims": len(v.claims), "verdict": v.verdict,
                             **{k: sum(cl.verdict == k for cl in v.claims) for k in ("pass", "fail", "inconclusive")},
                             "report": f"[cases/{case_dir(c)}/report.md](cases/{case_dir(c)}/report.md)"}
                            for c, v in zip(result.cases, result.verifications)])
    lines = ["# initstats sweep report", "", f"Command: `{command}`", "",
             f"{len(result.cases)} cases; means and standard errors over independent networks, from the store "
             f"`{result.root / 'sweep.sqlite'}` ({result.chunks_stored} chunks).", "",
             "## Verdicts", "", frame_to_markdown(summary)]
    for c, v in zip(result.cases, result.verifications):
        body = report_markdown(v, command=f"{command} (case {c})").splitlines()[1:]
        lines += [f"## Case `{c}`", *[("#" + ln if ln.startswith("#") else ln) for ln in body], ""]
    return "\n".join(lines)


def write_sweep(result: SweepResult, out: str | Path, *, command: str, plot: bool = True) -> list[Path]:
    """Write the sweep's tables, JSON and report into ``out``, and each case's files into ``out/cases/NAME``.

    Tables come first, so that a failure while plotting loses nothing already computed.

    Examples
    --------
    >>> import tempfile
    >>> from initstats.sweep import parse_sweep, run_sweep
    >>> out = Path(tempfile.mkdtemp())
    >>> res = run_sweep(parse_sweep({"case": [{"arch": "fc", "dims": [4], "width": 8, "nets": 40}]}), out)
    >>> [p.relative_to(out).as_posix() for p in write_sweep(res, out, command="example", plot=False)][:4]
    ['rows.csv', 'claims.csv', 'sweep.json', 'cases/fc/rows.csv']
    """
    out = Path(out)
    written = []
    for name, text in (("rows.csv", frame_to_csv(result.rows())), ("claims.csv", frame_to_csv(result.claims_frame())),
                       ("sweep.json", to_json(result.to_dict()))):
        write_atomic(out / name, text)
        written.append(out / name)
    for c, v in zip(result.cases, result.verifications):
        written += write_verification(v, out / "cases" / case_dir(c), command=f"{command} (case {c})", plot=plot)
    write_atomic(out / "report.md", sweep_markdown(result, command=command))
    written.append(out / "report.md")
    return written
