"""The examples in the library's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import initstats

MODULES = sorted(m.name for m in pkgutil.walk_packages(initstats.__path__, "initstats."))
#: a doctest prompt with code on it (doctest skips ``>>>`` lines that hold only a comment)
PROMPT = re.compile(r"^\s*>>> (?!\s*(#|$))", re.M)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed"


def test_every_module_is_collected():
    """Every ``.py`` file of the package is one of the modules above (a subpackage without
    ``__init__.py`` would be skipped by ``walk_packages``, and its examples never run)."""
    root = Path(initstats.__file__).parent
    on_disk = {".".join(("initstats", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
               for p in root.rglob("*.py")}
    assert on_disk - {"initstats"} == set(MODULES)


def prompts_and_examples(module) -> tuple[int, int]:
    """``>>>`` prompts with code in the module's source, and examples doctest collects from it."""
    return (len(PROMPT.findall(inspect.getsource(module))),
            sum(len(t.examples) for t in doctest.DocTestFinder().find(module)))


@pytest.mark.parametrize("name", MODULES)
def test_every_example_in_the_source_is_run(name):
    """doctest collects as many examples as the module's source has ``>>>`` prompts: none sits where
    ``testmod`` does not look (a plain string, a nested function, an object defined elsewhere), so
    the test above cannot pass by skipping examples."""
    prompts, collected = prompts_and_examples(importlib.import_module(name))
    assert collected == prompts, f"{name}: {prompts} '>>>' prompts in the source, {collected} examples collected"


def test_an_example_doctest_cannot_see_is_reported(tmp_path, monkeypatch):
    (tmp_path / "hidden_example.py").write_text(
        'def outer():\n'
        '    """\n    >>> 1 + 1\n    2\n    """\n'
        '    def inner():\n'
        '        """\n        >>> 2 + 2\n        5\n        >>> # a comment is not an example\n        """\n'
        '    return inner\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert prompts_and_examples(importlib.import_module("hidden_example")) == (2, 1)   # the wrong 5 never runs


def test_the_examples_are_collected():
    """A floor on the total, so that examples deleted everywhere at once are noticed too."""
    assert sum(prompts_and_examples(importlib.import_module(n))[1] for n in MODULES) >= 50
