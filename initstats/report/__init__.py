"""``initstats report``: the paper's claims as regenerated tables, figures and findings.

:func:`build_report` runs in three steps:

1. *experiments* (:mod:`.experiments`) run the exact engine and the networks and return tidy
   frames and verdict frames, no text;
2. *findings* (:mod:`.findings`) select each sentence from those verdicts and exact values --
   other data select other sentences, or none;
3. *pages* (:mod:`.pages`) render the frames as Markdown tables (from the CSV written beside
   them) and PNG figures, each page ending with its findings.

It writes ``OUT/index.md`` and ``OUT/report/*.md`` with ``figures/`` and ``data/`` beside them.
The ``initstats report`` command then adds the CLI reference ``OUT/cli.md``: the command line
documents itself, so this package never imports :mod:`initstats.cli`.  Every number in a page
comes from this run (see :mod:`initstats.report.core`); the same seed and device give the same
pages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..empirical.measure import MeasureOptions
from ..files import write_atomic
from ..verify import VerifySettings
from . import experiments, pages
from .core import ReportWriter
from .findings import RELATION_LABELS, Finding, select_findings
from .profiles import PROFILES, Profile, get_profile

__all__ = ["build_report", "ReportResult", "PROFILES", "Profile", "SECTIONS", "Finding"]

#: (slug, title) of the report pages, in order
SECTIONS = (
    ("lemmas", "Lemma 8, (S) and Lemma 9: exact atlas"),
    ("theorems-4-5", "Theorems 4, 5 and Corollary 6 across d"),
    ("theorems-7-11", "Theorems 7 and 11: average pooling"),
    ("paper-figures", "The paper's Figures 3 and 4 at initialisation"),
    ("lemma2", "Lemma 2: first-order damage against a one-step attack"),
    ("findings", "Findings"),
)

#: (name, title) of the experiments, in the order they run
EXPERIMENTS = ("exact", "theorems-4-5", "theorems-7-11", "figure-3", "figure-4", "lemma2")


@dataclass(frozen=True)
class ReportResult:
    """What a report run wrote, its findings, and how long each experiment took."""

    out: Path
    profile: str
    files: tuple[Path, ...]
    seconds: dict[str, float]
    findings: tuple[Finding, ...]


def build_report(out: str | Path, *, profile: str = "quick", device: str = "auto", seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Run the experiments, select the findings and write the pages (see the module docstring).

    Parameters
    ----------
    out : path
        The docs folder, e.g. ``docs/``.
    profile : {'quick', 'full'}
        ``quick`` fits a 2-core CPU in minutes; ``full`` is the paper's scale, for a GPU.
    device : str
        ``auto``, ``cpu``, ``cuda``.
    seed : int
    progress : callable, optional
        Called with the name of each experiment as it starts.

    Returns
    -------
    ReportResult
    """
    prof = get_profile(profile)
    out = Path(out)
    options = MeasureOptions(rel_se=prof.rel_se, max_nets=prof.max_nets, seed=seed, device=device)
    settings = VerifySettings()
    seconds: dict[str, float] = {}

    def run(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        if progress is not None:
            progress(name)
        t = time.perf_counter()
        result = fn(*args)
        seconds[name] = time.perf_counter() - t
        return result

    exact = run("exact", experiments.run_exact, prof.dims)
    thm45 = run("theorems-4-5", experiments.run_theorems_4_5, prof, options, settings)
    pooling = run("theorems-7-11", experiments.run_pooling, prof, options, settings)
    fig3 = run("figure-3", experiments.run_figure3, prof, options, settings, thm45)
    fig4 = run("figure-4", experiments.run_figure4, prof, options, settings)
    lemma2 = run("lemma2", experiments.run_lemma2, prof, options, settings)
    findings = select_findings(exact, thm45, pooling, fig3, fig4, lemma2, confidence=settings.confidence,
                               detectable=settings.detectable)

    writer = ReportWriter(out)
    pages.lemmas_page(writer, exact, findings)
    pages.theorems_4_5_page(writer, prof, thm45, exact, findings, settings.confidence)
    pages.theorems_7_11_page(writer, prof, pooling, findings, settings.confidence)
    pages.paper_figures_page(writer, prof, fig3, fig4, findings)
    pages.lemma2_page(writer, prof, lemma2, findings)
    pages.findings_page(writer, findings)
    files = list(writer.written)
    files.append(_write_index(out, prof, seed, device, thm45.verdicts, findings))
    return ReportResult(out, prof.name, tuple(files), seconds, tuple(findings))


def _write_index(out: Path, prof: Profile, seed: int, device: str, verdicts: pd.DataFrame,
                 findings: list[Finding]) -> Path:
    counts = verdicts["verdict"].value_counts()
    lines = [
        "# initstats documentation",
        "",
        "initstats checks, for feed-forward networks at initialisation, the theory of *Adversarial vulnerability of "
        "neural networks increases with input dimension* (Simon-Gabriel et al.): exactly on the network's DAG, and "
        "empirically on He-initialised networks.",
        "",
        "## Guides",
        "",
        "- [Getting started](getting-started.md): install, the main job, reading its output",
        "- [Theory](theory.md): what each claim means and which kind of verdict it gets",
        "- [Python API](api.md): spec -> graph -> prediction, spec -> measurement -> DataFrame -> plot",
        "- [Command line reference](cli.md) (generated from the commands themselves)",
        "- [Design](design.md): data flow and modules",
        "- [Benchmarks](benchmarks.md): speed of the exact and Monte Carlo engines",
        "",
        "## Report: the paper's claims at initialisation",
        "",
        f"Generated by `initstats report --out docs/ --profile {prof.name} --seed {seed}` (device {device}); "
        "every table and figure below comes from that run, with its data as CSV beside it.",
        "",
    ]
    for slug, title in SECTIONS:
        lines.append(f"- [{title}](report/{slug}.md)")
    lines += ["", "Claims of Theorems 4/5 on the `fc` and `cnn` families: "
              + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "", "## Findings", "",
              "Each is selected from this run's verdicts and exact values; the bracket says how it relates to the "
              "paper.", ""]
    for i, f in enumerate(findings, 1):
        text = f.markdown().replace(f"]({f.page}.md)", f"](report/{f.page}.md)").replace("](findings.md)",
                                                                                         "](report/findings.md)")
        lines.append(f"{i}. [{RELATION_LABELS[f.relation]}] {text}")
    path = out / "index.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
