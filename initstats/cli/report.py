"""``initstats report``: regenerate the report pages, figures and data in a docs folder."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from .app import app
from .common import check_out_dir, handle_errors
from .reference import write_cli_reference


@app.command("report")
@handle_errors
def report_command(
    out: Path = typer.Option(..., "--out", help="The docs folder to write (index.md, report/, cli.md)."),
    profile: str = typer.Option("quick", "--profile", help="quick (2-core CPU, minutes) | full (paper scale, GPU)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed and device: same pages)."),
) -> None:
    """Run the paper's claims at initialisation and write Markdown pages, figures (PNG) and data (CSV)."""
    from ..empirical.common import resolve_device
    from ..report import build_report, get_profile

    get_profile(profile)
    resolve_device(device)
    check_out_dir(out)
    start = time.perf_counter()

    def progress(section: str) -> None:
        typer.echo(f"[{time.perf_counter() - start:6.0f} s] {section}", err=True)

    result = build_report(out, profile=profile, device=device, seed=seed, progress=progress)
    files = (*result.files, write_cli_reference(out))  # the library's pages, then this command line's reference
    for section, secs in result.seconds.items():
        typer.echo(f"{section:>15}: {secs:6.1f} s")
    typer.echo(f"wrote {len(files)} files under {out}/ in {time.perf_counter() - start:.0f} s")
