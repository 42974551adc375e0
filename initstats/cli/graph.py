"""``initstats graph``: the exact engine on a family or a node-link file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import OptionError
from ..exact import analyse
from ..exact.analysis import METHODS
from ..families import make_arch
from ..graph.io import read_graph
from ..infinite import with_infinite_width
from ..render import (exact_csv, exact_json, exact_summary_frame, frame_to_markdown, hypothesis_lines, output_groups,
                      rich_table, witness_text)
from ..saving import write_exact
from .app import app
from .common import (FORMATS, NetworkOptions, check_choice, check_out_dir, handle_errors, network_options,
                     write_stdout)
from .common import console as make_console


@app.command("graph")
@handle_errors
@network_options
def graph_command(
    network: NetworkOptions,
    method: str = typer.Option("auto", "--method", help="auto | neuron | compressed (families only)."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv | markdown."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write graph.json, summary.csv and inputs.csv (every "
                                       "input coordinate: walk probability and exact E(df/dx)^2, per output) here."),
    infinite: int = typer.Option(0, "--infinite-width", metavar="N",
                                 help="Also the infinite-width (NNGP) prediction of E|grad f|^2, gate correlations "
                                 "included, averaged over N inputs x ~ N(0, I) (seed 0; float64; 0 = off). Large "
                                 "zero-padded inputs sample input coordinates; the standard error includes it."),
) -> None:
    """Exact Lemma 8/9, symmetry (S) and annealed gradient prediction for every output."""
    check_choice("--format", fmt, FORMATS)
    check_out_dir(out)
    check_choice("--method", method, METHODS)
    if infinite < 0:
        raise OptionError(f"--infinite-width {infinite} is invalid; expected a number of inputs (0 = off)")
    spec_file, sizes = (None, []) if network.module is not None else network.source()
    if spec_file is not None and method == "compressed":
        raise OptionError("--method compressed is for families (--arch): a node-link --spec is analysed at neuron "
                          "level; use --method auto or neuron")
    if spec_file is not None:
        if infinite:
            raise OptionError("--infinite-width needs an architecture (--arch or --module); a node-link --spec "
                              "has no convolution structure to recurse over")
        analyses = [analyse(read_graph(spec_file))]
    else:
        archs = (network.module_archs() if network.module is not None else
                 [make_arch(network.arch, px, **network.family()) for px in sizes])  # type: ignore[arg-type]
        analyses = [analyse(arch, method=method) for arch in archs]
        if infinite:
            analyses = [with_infinite_width(a, arch, n_inputs=infinite)
                        for a, arch in zip(analyses, archs)]
    if out is not None:
        write_exact(analyses, out)

    if fmt == "json":
        write_stdout(exact_json(analyses))
    elif fmt == "csv":
        write_stdout(exact_csv(analyses))
    elif fmt == "markdown":
        write_stdout(frame_to_markdown(exact_summary_frame(analyses)))
    else:
        console = make_console()
        title = f"initstats graph: {analyses[0].name}, exact identities"
        console.print(rich_table(exact_summary_frame(analyses, witness=False), title=title))
        for a in analyses:
            for names, first in output_groups(a):
                if first.witness is not None:
                    console.print(f"(S) fails at d={a.d} for {names[0]}: {witness_text(first)}", soft_wrap=True,
                                  markup=False)
                for label, text in hypothesis_lines(first):
                    console.print(f"{label} at d={a.d} for {names[0]}: {text}", soft_wrap=True, markup=False)
        console.print("Long fractions are shown as floats; --format json gives every value exactly.")
        if out is not None:
            console.print(f"wrote {out}/")
