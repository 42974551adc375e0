"""The documentation runs: every Python example of the hand-written pages, and every relative link.

Pages: ``README.md`` and ``docs/*.md`` except the generated ones (``docs/index.md`` and
``docs/cli.md`` are written by ``initstats report``, ``docs/benchmarks.md`` by ``benchmarks/``).
The ```` ```python ```` blocks of one page run in order in one fresh namespace (a later block may use
what an earlier one defined), in a temporary working directory; a block whose first line is
``# not run`` is skipped (reserved for examples that need a GPU).  A failure names the page, the
block number and its line in the page.

Printed output is checked: the comment lines directly below a top-level statement that calls
``print`` (``# `` stripped, no blank line in between) are the output it must print, compared as
doctest compares (``...`` matches anything, whitespace runs are equal).  A narrative comment
after such a statement needs a blank line before it.

Links: every relative link of ``README.md`` and ``docs/*.md`` must point to an existing file, and
an anchor into a hand-written page must name one of its headings.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import io
import json
import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: pages written by a program, not by hand (their examples are not executed here)
GENERATED = {"index.md", "cli.md", "benchmarks.md"}
#: the hand-written guides that must exist
GUIDES = ("getting-started.md", "api.md", "theory.md", "design.md")
NOT_RUN = "# not run"

FENCE = re.compile(r"^(`{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def hand_written_pages() -> list[Path]:
    return [ROOT / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name not in GENERATED)


def all_pages() -> list[Path]:
    return [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


def code_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """``(line number of the opening fence, code)`` of every fenced block in ``language``."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(3))
            for m in FENCE.finditer(text) if m.group(2) == language]


def prose(text: str) -> str:
    """The page without fenced blocks and inline code (links there are examples, not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(FENCE.sub("", page.read_text())):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------------------------
# the examples run
# --------------------------------------------------------------------------------------------

def test_guides_exist():
    missing = [g for g in GUIDES if not (DOCS / g).is_file()]
    assert not missing, f"missing hand-written pages: {missing}"


def _prints(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
               for n in ast.walk(node))


def expected_output(lines: list[str], node: ast.stmt) -> str | None:
    """The comment lines right below a printing statement, ``# `` stripped; None if there are none."""
    if not _prints(node):
        return None
    want = []
    for line in lines[node.end_lineno:]:
        if not line.startswith("#"):
            break
        want.append(re.sub(r"^# ?", "", line))
    return "\n".join(want) + "\n" if want else None


def run_block(code: str, line: int, namespace: dict, filename: str) -> tuple[int, list[str]]:
    """Run one block statement by statement in ``namespace``; returns how many printed outputs were
    compared and a message per output that differs from the comment lines below its statement."""
    lines = code.splitlines()
    checked, wrong = 0, []
    for node in ast.parse(code, filename).body:
        want, first = expected_output(lines, node), node.lineno
        module = ast.Module([node], type_ignores=[])
        ast.increment_lineno(module, line)                 # tracebacks give line numbers of the page
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(module, filename, "exec"), namespace)
        if want is None:
            continue
        checked += 1
        got = out.getvalue()
        if not doctest.OutputChecker().check_output(want, got, doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE):
            wrong.append(f"line {line + first}: {lines[first - 1].strip()}\n"
                         f"    documented: {want.rstrip()!r}\n    printed:    {got.rstrip()!r}")
    return checked, wrong


@pytest.mark.parametrize("page", hand_written_pages(), ids=rel)
def test_python_examples_run(page: Path, tmp_path, monkeypatch):
    """The page's ```python blocks, in order, in one namespace, from a temporary directory; what they
    print is what the page shows below each ``print``."""
    monkeypatch.chdir(tmp_path)  # an example that writes a relative path writes it here
    namespace: dict = {"__name__": f"docs:{page.name}"}
    blocks = code_blocks(page.read_text(), "python")
    wrong: list[str] = []
    for number, (line, code) in enumerate(blocks, start=1):
        if code.lstrip().startswith(NOT_RUN):
            continue
        try:
            wrong += run_block(code, line, namespace, rel(page))[1]
        except Exception:
            error = traceback.format_exc(limit=-3)
            pytest.fail(f"{rel(page)}: python block {number} (opening at line {line}) raised:\n{error}",
                        pytrace=False)
    assert not wrong, f"{rel(page)}: printed output differs from the page:\n" + "\n".join(wrong)


def test_printed_output_is_compared():
    """The check above can fail: a wrong documented output is reported, ``...`` and whitespace are
    doctest's, and a comment after a blank line, or below a statement that prints nothing, is prose."""
    block = ("x = 6 * 7\n"
             "print(x, 'answer')\n"
             "# 42 answer\n"
             "print([x] * 3)\n"
             "# [42,   42, ...]\n"
             "\n"
             "# only prose here\n"
             "y = x\n"
             "# prose too: y prints nothing\n"
             "for i in range(2):\n"
             "    print(i)\n"
             "# 0\n"
             "# 1\n")
    assert run_block(block, 10, {}, "page.md") == (3, [])
    checked, wrong = run_block(block.replace("# 42 answer", "# 41 answer").replace("# 1\n", "# 2\n"), 10, {}, "page.md")
    assert checked == 3 and len(wrong) == 2
    assert wrong[0].startswith("line 12: print(x, 'answer')") and "'41 answer'" in wrong[0] and "'42 answer'" in wrong[0]
    assert wrong[1].startswith("line 20: for i in range(2):")
    with pytest.raises(ZeroDivisionError) as info:          # errors keep the page's line numbers
        run_block("a = 1\nb = a / 0\n", 30, {}, "page.md")
    assert info.traceback[-1].lineno + 1 == 32


def test_not_run_is_rare():
    """``# not run`` is for GPU-only examples: at most one per page, and it must mention the GPU."""
    for page in hand_written_pages():
        skipped = [code for _, code in code_blocks(page.read_text(), "python")
                   if code.lstrip().startswith(NOT_RUN)]
        assert len(skipped) <= 1, f"{rel(page)}: {len(skipped)} blocks marked '{NOT_RUN}'"
        for code in skipped:
            assert "cuda" in code, f"{rel(page)}: a '{NOT_RUN}' block that needs no GPU:\n{code}"


@pytest.mark.parametrize("page", hand_written_pages(), ids=rel)
def test_json_examples_are_valid(page: Path):
    """Every ```json block parses; one with ``nodes`` and ``links`` is a valid network DAG."""
    from initstats.exact import analyse
    from initstats.graph import from_node_link

    for line, code in code_blocks(page.read_text(), "json"):
        try:
            data = json.loads(code)
        except json.JSONDecodeError as err:
            pytest.fail(f"{rel(page)}: json block at line {line} is not JSON: {err}", pytrace=False)
        if isinstance(data, dict) and "nodes" in data and "links" in data:
            g = from_node_link(data, source=f"{rel(page)}:{line}")
            assert all(o.lemma8_sum == 1 for o in analyse(g).outputs)


# --------------------------------------------------------------------------------------------
# the links resolve
# --------------------------------------------------------------------------------------------

def generated_by_report(target: Path) -> bool:
    """docs/index.md, docs/cli.md and docs/report/ are written by ``initstats report``.

    They may not exist in a fresh checkout; tests/test_report.py (the report test) covers them and
    the links inside them.
    """
    if target in (DOCS / "index.md", DOCS / "cli.md"):
        return True
    return target == DOCS / "report" or DOCS / "report" in target.parents


def relative_links(page: Path) -> list[str]:
    text = prose(page.read_text())
    links = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [t for t in links if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t)]  # http:, https:, mailto: ...


@pytest.mark.parametrize("page", all_pages(), ids=rel)
def test_relative_links_resolve(page: Path):
    hand_written = set(hand_written_pages())
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if generated_by_report(target):
            continue
        if not target.exists():
            broken.append(f"{link} (no file {target})")
        elif anchor and target in hand_written and anchor not in anchors(target):
            broken.append(f"{link} (no heading with anchor #{anchor} in {rel(target)})")
    assert not broken, f"{rel(page)}: broken relative links:\n  " + "\n  ".join(broken)


def test_readme_links_the_guides():
    links = {link.partition("#")[0] for link in relative_links(ROOT / "README.md")}
    missing = [g for g in (*GUIDES, "benchmarks.md") if f"docs/{g}" not in links]
    assert not missing, f"README.md does not link {missing}"
