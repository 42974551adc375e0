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
