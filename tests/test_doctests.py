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


#: a numpydoc ``Examples`` heading followed, somewhere below it, by a ``>>>`` prompt with code
EXAMPLES_SECTION = re.compile(r"^[ \t]*Examples[ \t]*\n[ \t]*-{8,}[ \t]*\n(?:.*\n)*?[ \t]*>>> \S", re.M)
#: modules whose public names need not have examples (the command line documents itself in docs/cli.md)
WITHOUT_EXAMPLES = ("initstats.cli",)


def public_definitions(module) -> list[tuple[str, object]]:
    """The functions and classes a module lists in ``__all__`` and defines itself (re-exports are
    checked where they are defined)."""
    out = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == module.__name__:
            out.append((name, obj))
    return out


def missing_examples(module) -> list[str]:
    """``module.name`` of every public function and class whose own docstring has no ``Examples``
    section with a doctest in it (a docstring inherited from a base class does not count)."""
    def own_doc(obj) -> str:
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        return inspect.cleandoc(doc or "") + "\n"

    return [f"{module.__name__}.{name}" for name, obj in public_definitions(module)
            if not EXAMPLES_SECTION.search(own_doc(obj))]


def test_every_public_name_has_an_example():
    """Every function and class in a module's ``__all__`` (defined there; the CLI excepted) shows how it
    is used in an ``Examples`` section, and the tests above run that example."""
    offenders = [name for m in MODULES if not f"{m}.".startswith(tuple(f"{w}." for w in WITHOUT_EXAMPLES))
                 for name in missing_examples(importlib.import_module(m))]
    assert not offenders, f"{len(offenders)} public names without an Examples section: " + ", ".join(offenders)


def test_a_public_name_without_an_example_is_reported(tmp_path, monkeypatch):
    (tmp_path / "examples_or_not.py").write_text(
        'from os.path import join\n'
        '__all__ = ["shown", "told", "bare", "Inherits", "Shown", "CONSTANT", "join"]\n'
        'CONSTANT = 1\n'
        'def shown():\n'
        '    """Has one.\n\n    Examples\n    --------\n    >>> shown()\n    1\n    """\n'
        '    return 1\n'
        'def told():\n'
        '    """A heading and prose, but no doctest.\n\n    Examples\n    --------\n    Call it.\n    """\n'
        'def bare():\n'
        '    """>>> bare()  (a prompt without the heading)"""\n'
        'class Shown:\n'
        '    """A class.\n\n    Examples\n    --------\n    >>> Shown().__class__.__name__\n    \'Shown\'\n    """\n'
        'class Inherits(Shown):\n'
        '    pass\n'
        'def _private():\n'
        '    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("examples_or_not")
    assert [n for n, _ in public_definitions(module)] == ["shown", "told", "bare", "Inherits", "Shown"]  # not join
    assert missing_examples(module) == ["examples_or_not.told", "examples_or_not.bare", "examples_or_not.Inherits"]
