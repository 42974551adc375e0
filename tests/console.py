"""The installed ``initstats`` console script, for the tests that run it as a user would."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def console_script() -> str:
    here = Path(sys.executable).with_name("initstats")
    found = str(here) if here.exists() else shutil.which("initstats")
    if found is None:
        pytest.fail("the 'initstats' console script is not installed next to the Python running the tests")
    return found


def assert_bad_input(result, *needles: str) -> str:
    """A ``CliRunner`` result of bad input: exit 2, one line ``error: ...`` on stderr naming the needles.

    No traceback, nothing on stdout, and the exit comes from our handler (``SystemExit``), not
    from an uncaught exception.  Returns the error line.
    """
    assert result.exit_code == 2, (result.exit_code, result.stdout[-2000:], result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
