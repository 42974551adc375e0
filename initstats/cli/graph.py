"""``initstats graph``: the exact engine on a family or a node-link file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from ..errors import OptionError
from ..exact import analyse
from ..exact.analysis import METHODS
from ..families import make_arch
from ..graph.io import read_graph
from ..render import (exact_summary_frame, frame_to_csv, frame_to_markdown, output_groups, rich_table, to_json,
                      witness_text)
from .app import app
from .common import FORMATS, check_choice, handle_errors, parse_int_list, write_stdout
from .common import console as make_console


def family_options(channels, padding, downsample, head, batchnorm, classes, width, depth, blocks) -> dict:
    return {"channels": channels, "padding": padding, "downsample": downsample, "head": head,
            "batchnorm": batchnorm, "classes": classes, "width": width, "depth": depth, "blocks": blocks}


@app.command("graph")
@handle_errors
def graph_command(
    arch: Optional[str] = typer.Option(None, "--arch", help="Family: fc, cnn, cnn-avgpool, resnet."),
    dims: Optional[str] = typer.Option(None, "--dims", help="Input sizes in pixels, comma-separated (e.g. 32,64)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="A node-link JSON file describing the DAG."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Channels per conv layer (cnn, cnn-avgpool, resnet)."),
    padding: Optional[str] = typer.Option(None, "--padding", help="zero | circular | reflect."),
    downsample: Optional[str] = typer.Option(None, "--downsample", help="stride | avg | max (cnn, cnn-avgpool)."),
    head: Optional[str] = typer.Option(None, "--head", help="dense | avgpool | maxpool."),
    batchnorm: Optional[bool] = typer.Option(None, "--batchnorm/--no-batchnorm", help="Conv -> BatchNorm -> ReLU."),
    classes: Optional[int] = typer.Option(None, "--classes", help="Number of logits."),
    width: Optional[int] = typer.Option(None, "--width", help="Units per hidden layer (fc)."),
    depth: Optional[int] = typer.Option(None, "--depth", help="Hidden layers (fc)."),
    blocks: Optional[int] = typer.Option(None, "--blocks", help="Residual blocks (resnet)."),
    method: str = typer.Option("auto", "--method", help="auto | neuron | compressed (families only)."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv | markdown."),
) -> None:
    """Exact Lemma 8/9, symmetry (S) and annealed gradient prediction for every output."""
    check_choice("--format", fmt, FORMATS)
    check_choice("--method", method, METHODS)
    options = family_options(channels, padding, downsample, head, batchnorm, classes, width, depth, blocks)
    if spec is not None:
        given = [f"--{k} {v!r}" for k, v in (("arch", arch), ("dims", dims), *options.items()) if v is not None]
        if given:
            raise OptionError(f"--spec describes the whole network; do not combine it with {', '.join(given)} "
                              f"(--arch, --dims and family options are only for --arch)")
        analyses = [analyse(read_graph(spec))]
    elif arch is not None:
        if dims is None:
            raise OptionError("--arch needs --dims, e.g. --dims 32,64")
        analyses = [analyse(make_arch(arch, px, **options), method=method) for px in parse_int_list(dims, "--dims")]
    else:
        raise OptionError("give --arch NAME --dims 32,64 or --spec FILE")

    if fmt == "json":
        payload = [a.to_dict() for a in analyses]
        write_stdout(to_json(payload[0] if len(payload) == 1 else payload))
    elif fmt == "csv":
        write_stdout(frame_to_csv(pd.concat([a.to_frame() for a in analyses], ignore_index=True)))
    elif fmt == "markdown":
        write_stdout(frame_to_markdown(exact_summary_frame(analyses)))
    else:
        console = make_console()
        title = f"initstats graph: {analyses[0].arch}, exact identities"
        console.print(rich_table(exact_summary_frame(analyses, witness=False), title=title))
        for a in analyses:
            for names, out in output_groups(a):
                if out.witness is not None:
                    console.print(f"(S) fails at d={a.d} for {names[0]}: {witness_text(out)}", soft_wrap=True,
                                  markup=False)
        console.print("Long fractions are shown as floats; --format json gives every value exactly.")
