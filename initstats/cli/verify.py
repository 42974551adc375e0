"""``initstats verify``: measure initialised networks and give each theorem a verdict."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from ..errors import OptionError
from ..graph.io import read_graph
from ..render import (claims_display_frame, frame_to_csv, report_markdown, rich_table, rows_display_frame, to_json,
                      width_display_frame)
from ..saving import write_verification
from ..verify_measured import verify_module_measured
from ..verify import VerifySettings, verify_archs, verify_family, verify_graph
from .app import app
from .common import (FORMATS, NetworkOptions, ProgressBars, check_choice, check_out_dir, handle_errors,
                     network_options, parse_int_list, write_stdout)
from .common import console as make_console


@app.command("verify")
@handle_errors
@network_options
def verify_command(
    network: NetworkOptions,
    pool: str = typer.Option("1", "--pool", help="Average-pooling sizes before the head, e.g. 1,2,4 (Theorems 7/11)."),
    nets: Optional[int] = typer.Option(None, "--nets", help="Networks per input size (default: until --rel-se is reached)."),
    rel_se: Optional[float] = typer.Option(None, "--rel-se", help="Target relative standard error of E|grad f|^2 "
                                           "(default 0.013: a 5% error detected at 99% confidence with 90% power)."),
    max_nets: int = typer.Option(20000, "--max-nets", help="Cap on networks per input size."),
    max_time: Optional[float] = typer.Option(None, "--max-time", help="Time budget of the whole run in seconds, "
                                             "split over the input sizes; sampling stops there with a warning."),
    inputs_per_net: Optional[int] = typer.Option(None, "--inputs-per-net", help="Inputs per network (default 1; 16 with BatchNorm)."),
    logits: Optional[int] = typer.Option(None, "--logits", help="Logits differentiated per network (default 1 for families, all for --spec)."),
    inputs: str = typer.Option("normal", "--inputs", help="normal (N(0,1) per coordinate) | uniform "
                                "(U[0,1)) | path to an .npy file of inputs."),
    init: str = typer.Option("he", "--init", help="he (variance 2/fan_in) | lecun (1/fan_in)."),
    literal_h1: bool = typer.Option(False, "--literal-h1", help="ReLU on the logits (H1 taken literally: total 1)."),
    eps: float = typer.Option(1.0, "--eps", help="eps_inf of the damage statistic eps*|grad L|_1."),
    confidence: float = typer.Option(0.99, "--confidence", help="Confidence level of every test."),
    exponent_tolerance: float = typer.Option(0.1, "--exponent-tolerance", help="Tolerance on exponents tested "
                                             "against asymptotic laws (pooling degree; networks with pooling or sums)."),
    bridge_tolerance: float = typer.Option(0.05, "--bridge-tolerance", help="Tolerance on the l1 and l_inf "
                                           "exponents against their finite-d Gaussian references."),
    excess_tolerance: float = typer.Option(0.1, "--excess-tolerance", help="Band within which the excess of real "
                                           "networks over the annealed value (pooling, residual sums) passes."),
    infinite: int = typer.Option(0, "--infinite-width", metavar="N",
                                 help="Also the infinite-width (NNGP) prediction of E|grad f|^2, averaged over N "
                                 "inputs x ~ N(0, I) (0 = off): a row column, and where merges make the annealed value "
                                 "inexact, a claim testing the measurement against it. Large zero-padded inputs sample "
                                 "input coordinates; the standard error includes it."),
    widths: Optional[str] = typer.Option(None, "--widths", metavar="C1,C2,...", help="Also measure each network at "
                                         "these channel widths (fc: layer widths) and fit its deviation from the "
                                         "infinite-width value against 1/width: width_trend claims and a widths "
                                         "table (uses --infinite-width N inputs, 8 if unset). Families only."),
    empirical_only: bool = typer.Option(False, "--empirical-only", help="With --module: measure the model as it is "
                                        "(torch.func over fresh He parameters), without translating it into a spec; "
                                        "every claim is then not covered.  For models the tracer refuses."),
    holm: bool = typer.Option(True, "--holm/--no-holm", help="Holm's correction over the run's point tests "
                              "(a correct network fails one with probability <= 1 - confidence)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed and device: same numbers)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | float64."),
    fmt: str = typer.Option("table", "--format", help="table | json | csv | markdown."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write rows.csv, claims.csv, verify.json, report.md, "
                                       "the per-coordinate maps (map_*.csv) and the figures (PNG) here."),
    plot: Optional[bool] = typer.Option(None, "--plot/--no-plot", help="Write the figures (PNG) into --out "
                                        "(the default with --out); --no-plot writes the tables only."),
) -> None:
    """Draw He-initialised networks, measure input gradients, and test Theorems 4, 5, 7, 11 and Corollary 6."""
    from ..empirical.measure import DEFAULT_REL_SE, MeasureOptions

    check_choice("--format", fmt, FORMATS)
    if plot and out is None:
        raise OptionError("--plot writes figures into --out DIR; give --out")
    plot = out is not None and plot is not False
    if nets is not None and rel_se is not None:
        raise OptionError("give either --nets N (fixed) or --rel-se R (adaptive), not both")
    options = MeasureOptions(nets=nets, rel_se=DEFAULT_REL_SE if rel_se is None else rel_se, max_nets=max_nets,
                             min_nets=min(64, max_nets), max_time=max_time, inputs_per_net=inputs_per_net, logits=logits,
                             inputs=inputs, eps=eps, init=init, seed=seed, device=device, dtype=dtype)
    settings = VerifySettings(confidence=confidence, exponent_tolerance=exponent_tolerance,
                              bridge_tolerance=bridge_tolerance, excess_tolerance=excess_tolerance, holm=holm,
                              infinite_width=infinite)
    pools = parse_int_list(pool, "--pool")
    width_list = None if widths is None else parse_int_list(widths, "--widths")
    if width_list is not None and network.arch is None:
        raise OptionError("--widths needs a family (--arch): a spec or module has one fixed width")
    conflicts = {"pool": pool if pools != [1] else None, "literal_h1": literal_h1}
    if empirical_only and network.module is None:
        raise OptionError("--empirical-only is for --module (families and specs are always translated exactly)")
    if empirical_only:
        archs, spec_file, sizes = None, None, []
        module_dims, module_shape = network.module_sizes(conflicts)
    elif network.module is not None:
        archs, spec_file, sizes = network.module_archs(conflicts=conflicts), None, []
    else:
        archs, (spec_file, sizes) = None, network.source(spec_conflicts=conflicts)
    from ..empirical.common import resolve_device

    resolve_device(device)  # fail fast, before any work
    check_out_dir(out)
    with ProgressBars() as progress:
        if empirical_only:
            result = verify_module_measured(network.module, module_dims, input_shape=module_shape, options=options,
                                            settings=settings, progress=progress)
            title = f"initstats verify --module {network.module} --empirical-only"
        elif archs is not None:
            result = verify_archs(archs, options=options, settings=settings, progress=progress)
            title = f"initstats verify --module {network.module}"
        elif spec_file is not None:
            result = verify_graph(read_graph(spec_file), options=options, settings=settings, progress=progress)
            title = f"initstats verify --spec {spec_file}"
        else:
            result = verify_family(network.arch, sizes, pools=pools,  # type: ignore[arg-type]
                                   family_options=network.family(), options=options, literal_h1=literal_h1,
                                   settings=settings, progress=progress, widths=width_list)
            title = f"initstats verify: {network.arch}"

    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    command = "initstats " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if out is not None:
        write_verification(result, out, command=command, plot=plot)
    if fmt == "json":
        write_stdout(to_json(result.to_dict()))
    elif fmt == "csv":
        write_stdout(frame_to_csv(result.rows))
    elif fmt == "markdown":
        write_stdout(report_markdown(result, command=command, figures=()))
    else:
        console = make_console()
        console.print(rich_table(rows_display_frame(result), title=title))
        console.print(rich_table(claims_display_frame(result), title="claims"))
        if result.width_trends:
            console.print(rich_table(width_display_frame(result), title="widths"))
        counts = pd.Series([c.verdict for c in result.claims]).value_counts().to_dict()
        summary = ", ".join(f"{n} {v}" for v, n in counts.items())
        m0 = result.measurements[0]
        console.print(f"{len(result.claims)} claims: {summary}.  Means and standard errors are over independent "
                      f"networks ({m0.inputs_per_net} input(s) each, device {m0.device}).", soft_wrap=True)
        if out is not None:
            console.print(f"wrote {out}/")
    if result.failed:
        raise typer.Exit(1)
