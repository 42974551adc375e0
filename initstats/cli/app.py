"""The typer application; each command lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="initstats",
    help="Verify theorems about neural networks at initialization (Simon-Gabriel et al., 'Adversarial "
    "vulnerability of neural networks increases with input dimension').",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """initstats: exact identities and Monte Carlo verdicts for networks at initialization."""


from . import graph as _graph  # noqa: E402,F401  (registers the command)
from . import verify as _verify  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import sweep as _sweep  # noqa: E402,F401
