"""The ``initstats`` command line: a thin layer that parses options, calls the library and renders.

Commands: ``graph`` (exact engine), ``verify`` (Monte Carlo engine and verdicts).  Exit codes:
0 success, 1 a claim failed (``verify``), 2 bad input (one-line message on stderr).
"""

from __future__ import annotations

import sys

from .app import app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: usage errors become one line on stderr and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as err:  # click's UsageError family (typer vendors click privately)
        if getattr(err, "exit_code", None) == 2 and hasattr(err, "format_message"):
            ctx = getattr(err, "ctx", None)
            if not err.format_message():  # bare 'initstats': the help was printed
                sys.exit(2)
            where = f"initstats {ctx.info_name}" if ctx is not None and ctx.parent is not None else "initstats"
            sys.stderr.write(f"error: {err.format_message()} (see '{where} --help')\n")
            sys.exit(2)
        if type(err).__name__ == "Abort":
            sys.stderr.write("aborted\n")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
