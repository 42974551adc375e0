"""Helpers shared by the CLI commands: option parsing, error handling, output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

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


def write_stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def console():
    """A rich console; when stdout is not a terminal, wide enough that tables do not wrap."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=200)
