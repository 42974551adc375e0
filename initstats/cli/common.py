"""Helpers shared by the CLI commands: option parsing, error handling, output."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Optional, TypeVar, get_type_hints

import typer

from ..errors import InitStatsError, OptionError

F = TypeVar("F", bound=Callable[..., object])

FORMATS = ("table", "json", "csv", "markdown")


def handle_errors(func: F) -> F:
    """Turn an :class:`InitStatsError` into a one-line message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InitStatsError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def parse_int_list(text: str, option: str, *, minimum: int = 1) -> list[int]:
    """``'32,64'`` -> ``[32, 64]``; an OptionError naming the bad entry otherwise."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise OptionError(f"{option} {text!r} is empty; expected comma-separated integers such as 32,64")
    out = []
    for t in items:
        try:
            v = int(t)
        except ValueError:
            raise OptionError(f"{option}: {t!r} is not an integer; expected comma-separated integers such as 32,64") from None
        if v < minimum:
            raise OptionError(f"{option}: {v} is invalid; values must be >= {minimum}")
        out.append(v)
    return out


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"{option} {value!r} is unknown; expected one of {', '.join(choices)}")
    return value


def check_out_dir(out: Path | None) -> None:
    """``--out`` must be a directory or not exist yet (it is created); nothing is written before this check."""
    if out is not None and out.exists() and not out.is_dir():
        raise OptionError(f"--out {str(out)!r} exists and is not a directory")


def write_stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def console():
    """A rich console; when stdout is not a terminal, wide enough that tables do not wrap."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=200)


# -- options shared by the commands that take a network -------------------------------------------
@dataclass(frozen=True)
class NetworkOptions:
    """The network options of ``graph`` and ``verify``, declared once: each field is a typer option.

    A command takes them as one parameter annotated ``NetworkOptions`` and decorated with
    :func:`network_options`; ``--help`` lists the fields in this order, where that parameter stands.
    """

    arch: Annotated[Optional[str], typer.Option("--arch", help="Family: fc, cnn, cnn-avgpool, resnet.")] = None
    dims: Annotated[Optional[str], typer.Option("--dims", help="Input sizes in pixels, comma-separated "
                                                               "(e.g. 32,64,128,256).")] = None
    spec: Annotated[Optional[Path], typer.Option("--spec", help="A node-link JSON file describing the DAG.")] = None
    module: Annotated[Optional[str], typer.Option("--module", help="A PyTorch model: SRC:FACTORY, SRC an importable "
                                                                   "module (pkg.models) or a .py file, FACTORY a class "
                                                                   "or function returning an nn.Module (called with "
                                                                   "px=... per size if it takes px).")] = None
    input_shape: Annotated[Optional[str], typer.Option("--input-shape", help="With --module: the input shape "
                                                                             "without the batch axis, C,H,W or C,L "
                                                                             "or F (default: from the first layer "
                                                                             "and --dims).")] = None
    channels: Annotated[Optional[int], typer.Option("--channels", help="Channels per conv layer (cnn, cnn-avgpool, "
                                                                       "resnet; default 16, a CPU width; 64 is the "
                                                                       "paper's).")] = None
    padding: Annotated[Optional[str], typer.Option("--padding", help="zero | circular | reflect.")] = None
    downsample: Annotated[Optional[str], typer.Option("--downsample", help="stride | avg | max (cnn, "
                                                                           "cnn-avgpool).")] = None
    head: Annotated[Optional[str], typer.Option("--head", help="dense | avgpool | maxpool.")] = None
    batchnorm: Annotated[Optional[bool], typer.Option("--batchnorm/--no-batchnorm",
                                                      help="Conv -> BatchNorm -> ReLU.")] = None
    classes: Annotated[Optional[int], typer.Option("--classes", help="Number of logits.")] = None
    width: Annotated[Optional[int], typer.Option("--width", help="Units per hidden layer (fc).")] = None
    depth: Annotated[Optional[int], typer.Option("--depth", help="Hidden layers (fc).")] = None
    blocks: Annotated[Optional[int], typer.Option("--blocks", help="Residual blocks (resnet).")] = None

    def family(self) -> dict[str, object]:
        """The family options (all but the network sources and ``dims``), as ``make_arch`` keywords."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("arch", "dims", "spec", "module", "input_shape")}

    def source(self, *, spec_conflicts: dict[str, object] | None = None) -> tuple[Path | None, list[int]]:
        """``(spec, [])`` or ``(None, pixel sizes)``; see :func:`network_source`.  Not with ``--module``."""
        if self.input_shape is not None and self.module is None:
            raise OptionError("--input-shape is for --module (a family's or a spec's input shape is known)")
        return network_source(self.arch, self.dims, self.spec, self.family(), spec_conflicts=spec_conflicts)

    def module_archs(self, *, conflicts: dict[str, object] | None = None) -> list:
        """With ``--module``: one spec per input size (:func:`initstats.empirical.modules.module_archs`)."""
        from ..empirical.modules import module_archs

        dims, shape = self.module_sizes(conflicts)
        return module_archs(self.module, dims, input_shape=shape)  # type: ignore[arg-type]

    def module_sizes(self, conflicts: dict[str, object] | None = None):
        """With ``--module``: ``(dims, input_shape)`` as given, after refusing family options."""
        named = {"arch": self.arch, "spec": self.spec, **self.family(), **(conflicts or {})}
        given = _given_options(named)
        if given:
            raise OptionError(f"--module describes the whole network; do not combine it with {', '.join(given)}")
        dims = parse_int_list(self.dims, "--dims") if self.dims is not None else None
        shape = tuple(parse_int_list(self.input_shape, "--input-shape")) if self.input_shape is not None else None
        return dims, shape


def network_options(func: F) -> F:
    """Give ``func``'s parameter annotated :class:`NetworkOptions` to typer as the options it declares.

    In the signature typer reads, that parameter is replaced, at its place, by one parameter per
    field of :class:`NetworkOptions`; each call gathers their values into one object.
    """
    signature = inspect.signature(func, eval_str=True)
    names = [n for n, p in signature.parameters.items() if p.annotation is NetworkOptions]
    if len(names) != 1:
        raise TypeError(f"{func.__qualname__} needs exactly one parameter annotated NetworkOptions")
    hints = get_type_hints(NetworkOptions, include_extras=True)
    kind = signature.parameters[names[0]].kind  # typer passes every parameter by keyword
    options = [inspect.Parameter(f.name, kind, default=f.default, annotation=hints[f.name])
               for f in fields(NetworkOptions)]
    params = []
    for name, param in signature.parameters.items():
        params.extend(options if name == names[0] else [param])
    if clash := {p.name for p in options} & (set(signature.parameters) - {names[0]}):
        raise TypeError(f"{func.__qualname__} already has parameters named {sorted(clash)}")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs[names[0]] = NetworkOptions(**{p.name: kwargs.pop(p.name) for p in options})
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    return wrapper  # type: ignore[return-value]


def _given_options(named: dict[str, object]) -> list[str]:
    """``--name value`` for each option given: ``None`` values and ``False`` flags count as not given."""
    return [f"--{k.replace('_', '-')} {v!r}" for k, v in named.items() if v is not None and v is not False]


def network_source(arch: str | None, dims: str | None, spec: Path | None, family: dict[str, object],
                   *, spec_conflicts: dict[str, object] | None = None) -> tuple[Path | None, list[int]]:
    """Check the ``--arch/--dims`` or ``--spec`` choice: ``(spec, [])`` or ``(None, pixel sizes)``.

    ``spec_conflicts`` names further options (with the values given) that make no sense with
    ``--spec``; ``None`` values and ``False`` flags count as not given.
    """
    if spec is not None:
        named = {"arch": arch, "dims": dims, **family, **(spec_conflicts or {})}
        given = _given_options(named)
        if given:
            raise OptionError(f"--spec describes the whole network; do not combine it with {', '.join(given)} "
                              f"(--arch, --dims and family options are only for --arch)")
        return spec, []
    if arch is None:
        raise OptionError("give --arch NAME --dims 32,64 or --spec FILE")
    if dims is None:
        raise OptionError("--arch needs --dims, e.g. --dims 32,64")
    return None, parse_int_list(dims, "--dims")


class ProgressBars:
    """Rich progress bars on stderr, one per label, when stderr is a terminal and not ``quiet``.

    Entering gives the ``progress(label, done, total)`` callback of the library (None when there
    are no bars).  ``prefix`` goes before each label; ``overall`` names a bar that sums all the
    others, and adds the time remaining.
    """

    def __init__(self, *, quiet: bool = False, prefix: str = "", overall: str | None = None) -> None:
        self.quiet, self.prefix, self.overall = quiet, prefix, overall
        self.bar = None

    def __enter__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        console = Console(stderr=True)
        if self.quiet or not console.is_terminal:
            return None
        eta = (TextColumn("ETA"), TimeRemainingColumn()) if self.overall else ()
        self.bar = bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("nets"), TimeElapsedColumn(), *eta, console=console, transient=True)
        bar.__enter__()
        overall = None if self.overall is None else bar.add_task(self.overall, total=None)
        tasks: dict[str, int] = {}
        totals: dict[str, tuple[int, int]] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"{self.prefix}{label}", total=total)
            bar.update(tasks[label], completed=done, total=total)
            if overall is not None:
                totals[label] = (done, total)
                bar.update(overall, completed=sum(d for d, _ in totals.values()),
                           total=sum(t for _, t in totals.values()))

        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
