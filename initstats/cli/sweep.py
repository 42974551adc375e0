"""``initstats sweep``: many verify cases from a TOML file, measured into a store that resumes."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from ..errors import OptionError
from ..render import claims_display_frame, frame_to_csv, rich_table, to_json
from ..sweep import load_sweep, run_sweep, write_sweep
from ..sweep.output import sweep_markdown
from .app import app
from .common import FORMATS, ProgressBars, check_choice, handle_errors, write_stdout
from .common import console as make_console


@app.command("sweep")
@handle_errors
def sweep_command(
    file: Path = typer.Argument(..., help="The sweep file (TOML): [[case]] tables with the options of "
                                "'initstats verify' (_ for -), and an optional top-level seed."),
    out: Path = typer.Option(..., "--out", help="The sweep's directory: its store (sweep.sqlite), rows.csv, "
                             "claims.csv, sweep.json, report.md and cases/NAME/. Rerun to resume."),
    backend: str = typer.Option("local", "--backend", help="local (processes on this machine) | ray."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (local), or the CPUs of a Ray started here."),
    threads: int = typer.Option(1, "--threads", help="torch threads per chunk on a CPU; the same value gives the "
                                "same numbers with any backend and number of workers."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --backend ray: an existing "
                                              "cluster (e.g. ray://head:10001 or auto); default: start Ray here."),
    force: bool = typer.Option(False, "--force", help="Discard the measurements of cases that changed since "
                               "--out was started (default: refuse, naming the changed case)."),
    report_only: bool = typer.Option(False, "--report-only", help="Measure nothing: recompute tables, claims "
                                     "and reports from the store."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv | markdown (json, csv and markdown: "
                            "no progress bar)."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write each case's figures (PNG) under "
                              "--out/cases/NAME/."),
) -> None:
    """Run the cases of FILE into --out: every finished chunk is stored, so an interrupted sweep resumes
    where it stopped and gives the numbers of an uninterrupted one."""
    check_choice("--format", fmt, FORMATS)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {str(out)!r} exists and is not a directory")
    sweep = load_sweep(file)
    with ProgressBars(quiet=fmt != "table", prefix="case ", overall="all cases") as progress:
        try:
            result = run_sweep(sweep, out, backend=backend, workers=workers, threads=threads, ray_address=ray_address,
                               force=force, report_only=report_only, progress=progress)
        except KeyboardInterrupt:
            sys.stderr.write(f"interrupted: the finished chunks are in {out}; run the same command to resume\n")
            raise typer.Exit(130) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    command = "initstats " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_sweep(result, out, command=command, plot=plot)
    if fmt == "json":
        d = result.to_dict()
        write_stdout(to_json({"rows": d["rows"], "claims": d["claims"]}))
    elif fmt == "csv":
        write_stdout(frame_to_csv(result.rows()))
    elif fmt == "markdown":
        write_stdout(sweep_markdown(result, command=command))
    else:
        console = make_console()
        claims = pd.concat([claims_display_frame(v, width=80).assign(case=c)
                            for c, v in zip(result.cases, result.verifications)], ignore_index=True)
        claims = claims[["case", *[col for col in claims.columns if col != "case"]]]
        console.print(rich_table(claims, title=f"initstats sweep {file}"))
        counts = claims["verdict"].value_counts().to_dict()
        console.print(f"{len(result.cases)} cases, {len(claims)} claims: "
                      f"{', '.join(f'{n} {v}' for v, n in counts.items())}.  {result.chunks_run} chunks run now, "
                      f"{result.chunks_stored} in the store.  Wrote {out}/", soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)
