"""The generated CLI reference (``initstats.cli.reference``) against ``--help`` and ``docs/cli.md``.

The option names are read from ``--help`` (typer's rich panels, at a wide terminal) and from the reference's
tables, and must agree both ways for every command the app has at run time, so a new command or option that is
not in the reference -- or a stale ``docs/cli.md`` -- fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Optional

import pytest
import typer
from typer.testing import CliRunner

from initstats.cli import app
from initstats.cli.reference import cli_reference_markdown
from .console import console_script

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def command_paths(command=None, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """``()`` for the root, then ``('graph',)``, ``('verify',)``, ...: every visible command, as registered."""
    command = typer.main.get_command(app) if command is None else command
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            paths += command_paths(sub, (*prefix, name))
    return paths


def help_options(text: str) -> dict[str, str | None]:
    """Option name -> what ``--help`` shows as its default (``'required'`` for a required option, else None).

    A row of an option panel starts with the option's names (after the required-marker column): the leading
    ``-x`` / ``--xx`` tokens of the row, comma-separated where one side has several spellings; a line that
    starts with anything else continues the row above (a wrapped help text).
    """
    rows: list[tuple[list[str], str]] = []
    current = None
    for line in ANSI.sub("", text).splitlines():
        if not line.startswith("│"):
            current = None  # a panel's border or the text around the panels
            continue
        body = line.strip("│ ")
        tokens = body.split()
        if tokens and tokens[0] == "*":
            tokens = tokens[1:]
        names = []
        for token in tokens:
            if not token.startswith("-"):
                break
            names += [t for t in token.split(",") if t]
        if names:
            current = (names, [body])
            rows.append(current)
        elif current is not None:
            current[1].append(body)
    found: dict[str, str | None] = {}
    for names, lines in rows:
        row = " ".join(lines)
        default = re.search(r"\[default: (.*?)\]", row)
        shown = "required" if "[required]" in row else default.group(1) if default else None
        found.update(dict.fromkeys(names, shown))
    return found


def reference_sections(markdown: str) -> dict[str, list[tuple[list[str], str]]]:
    """``'initstats graph'`` -> ``[(names, default), ...]`` from the reference's option tables."""
    sections: dict[str, list[tuple[list[str], str]]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None and line.startswith("| `-"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            names = [n for side in cells[0].strip("`").split(" / ") for n in side.split(", ")]
            current.append((names, cells[2].strip("`")))
    return sections


def invoke_help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, (path, result.output, result.exception)
    return result.output


def section_title(path: tuple[str, ...]) -> str:
    return " ".join(("initstats", *path))


@pytest.fixture(scope="module")
def reference() -> str:
    return cli_reference_markdown()


# --------------------------------------------------------------------------------------------
# (a) the reference and --help agree, for every command the app has now
# --------------------------------------------------------------------------------------------

def test_every_command_has_a_section(reference):
    sections = reference_sections(reference)
    paths = command_paths()
    assert len(paths) >= 3  # the root, graph, verify (and whatever has been added since)
    for path in paths:
        assert section_title(path) in sections, f"no '## {section_title(path)}' section in the reference"
    assert set(sections) == {section_title(p) for p in paths}, "the reference has sections for unknown commands"
    assert [s for s in sections] == [section_title(p) for p in paths], "sections are not in registration order"


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "initstats")
def test_reference_options_match_help(path, reference):
    shown = help_options(invoke_help(path))
    assert "--help" in shown, "could not read the options panel of --help"
    rows = reference_sections(reference)[section_title(path)]
    listed = {name: default for names, default in rows for name in names}
    missing = sorted(set(shown) - set(listed))
    assert not missing, f"{section_title(path)} --help shows {missing}, the reference does not list them"
    unknown = sorted(set(listed) - set(shown))
    assert not unknown, f"the reference lists {unknown} for {section_title(path)}; --help does not show them"
    for name, default in shown.items():
        expected = "*required*" if default == "required" else default or ""
        assert listed[name] == expected, f"{section_title(path)} {name}: --help shows default {default!r}, " \
                                         f"the reference {listed[name]!r}"


def test_reference_options_are_accepted_by_the_commands(reference):
    """Every option named in the reference is one the command's parser knows."""
    root = typer.main.get_command(app)
    for path in command_paths():
        command = root
        for name in path:
            command = command.commands[name]
        ctx = command.context_class(command, info_name=path[-1] if path else "initstats")
        known = {o for p in command.get_params(ctx) for o in (*p.opts, *p.secondary_opts)}
        for names, _ in reference_sections(reference)[section_title(path)]:
            assert set(names) <= known, (path, names)


def test_installed_console_script_help_matches(reference):
    """One real run of the console script (the command with the most options), not typer's test runner."""
    exe = console_script()
    root = typer.main.get_command(app)
    name = max(root.commands, key=lambda n: len(root.commands[n].params))
    env = {**os.environ, **WIDE}
    for var in ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS"):
        env.pop(var, None)
    done = subprocess.run([exe, name, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = help_options(done.stdout)
    declared = {o for p in root.commands[name].params if not p.hidden for o in (*p.opts, *p.secondary_opts)}
    assert set(shown) == declared | {"--help"}  # the parsing of a real terminal's help worked
    listed = {n for names, _ in reference_sections(reference)[f"initstats {name}"] for n in names}
    assert set(shown) == listed


def test_reference_is_deterministic_and_plain(reference):
    assert cli_reference_markdown() == reference
    assert "\x1b" not in reference and "\r" not in reference
    assert reference.startswith("# ") and reference.endswith("\n") and not reference.endswith("\n\n")
    assert "Exit codes:" in reference and "`error:`" in reference
    for code in ("`0`", "`1`", "`2`"):
        assert code in reference
    assert "| `--batchnorm / --no-batchnorm` | `<bool>` |" in reference
    assert "| `--method` | `<str>` | `auto` |" in reference


# --------------------------------------------------------------------------------------------
# (b) docs/cli.md is the generator's output
# --------------------------------------------------------------------------------------------

def test_docs_cli_md_is_current(reference):
    if not DOCS.exists():
        pytest.skip("docs/cli.md has not been generated yet (run `initstats report --out docs/` to write it)")
    assert DOCS.read_text(encoding="utf-8") == reference, "docs/cli.md is stale: run `initstats report --out docs/`"


def test_report_command_writes_the_reference_itself(tmp_path, monkeypatch, reference):
    """``initstats report`` writes OUT/cli.md after the library's pages (``build_report`` no longer does)."""
    import initstats.report as report

    def build_report(out, **kw):  # the pages without running the experiments
        index = Path(out) / "index.md"
        index.write_text("# index\n")
        return report.ReportResult(Path(out), kw["profile"], (index,), {"exact": 0.0}, ())

    monkeypatch.setattr(report, "build_report", build_report)
    result = runner.invoke(app, ["report", "--out", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert (tmp_path / "cli.md").read_text(encoding="utf-8") == reference
    assert f"wrote 2 files under {tmp_path}/" in result.stdout  # index.md and cli.md


# --------------------------------------------------------------------------------------------
# (c) the generator follows the app: an added option changes the reference
# --------------------------------------------------------------------------------------------

def _tiny_app(with_beta: bool) -> typer.Typer:
    tiny = typer.Typer(add_completion=False)

    @tiny.callback()
    def _root() -> None:
        """A tiny app."""

    if with_beta:
        @tiny.command("run")
        def run(alpha: int = typer.Option(3, "--alpha", help="The first option."),
                beta: Optional[str] = typer.Option(None, "--beta", help="The added option.")) -> None:
            """Run it."""
    else:
        @tiny.command("run")
        def run(alpha: int = typer.Option(3, "--alpha", help="The first option.")) -> None:
            """Run it."""

    return tiny


def test_generator_catches_drift():
    before = cli_reference_markdown(_tiny_app(with_beta=False), prog_name="tiny")
    assert "## tiny run" in before and "Run it." in before
    assert "| `--alpha` | `<int>` | `3` | The first option. |" in before
    assert "--beta" not in before
    after = cli_reference_markdown(_tiny_app(with_beta=True), prog_name="tiny")
    assert "| `--beta` | `<str>` |  | The added option. |" in after
    assert after != before  # a docs file written from `before` would now be reported stale
    assert cli_reference_markdown(_tiny_app(with_beta=False), prog_name="tiny") == before
