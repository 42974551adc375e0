"""The ``initstats`` command line: a thin layer that parses options, calls the library and renders.

Commands: ``graph`` (exact engine), ``verify`` (Monte Carlo engine and verdicts).  Exit codes:
0 success, 1 a claim failed (``verify``), 2 bad input (one-line message on stderr).
"""

from __future__ import annotations

from .app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
