"""The package's imports point down: no circle, no module importing a higher layer.

Layers, bottom to top (a module may import its own layer and those below):

0. ``errors``, ``files``, ``_format``: the standard library only
1. ``spec``, ``inference``
2. ``graph``, ``measurement``
3. ``exact``, ``families``, ``testing``
4. ``empirical`` (torch), ``claims``, ``scaling``
5. ``verify``, ``verification``
6. ``render``, ``plots``, ``saving``
7. ``report``
8. ``cli``, ``__main__`` and the package's ``__init__`` (the curated API)

Imports are read from the source (``ast``), including those inside functions, so a lazy import
that runs up a layer is caught too.  The exact side and the torch-free data modules must also
import without torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "initstats"

LAYERS: dict[str, int] = {
    "errors": 0, "files": 0, "_format": 0,
    "spec": 1, "inference": 1,
    "graph": 2, "measurement": 2,
    "exact": 3, "families": 3, "testing": 3,
    "empirical": 4, "claims": 4, "scaling": 4, "points": 4,
    "verify": 5, "verification": 5, "infinite": 5, "verify_measured": 5, "width_trend": 5,
    "render": 6, "plots": 6, "saving": 6,
    "report": 7, "sweep": 7,
    "cli": 8, "__main__": 8, "": 8,
}


def unit(module: str) -> str:
    """The layer unit of a dotted module name: ``initstats.exact.paths`` -> ``exact``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``initstats`` module a file imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "initstats":
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "initstats")
    return found


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        src = unit(module_name(path))
        for target in imports_of(path):
            dst = unit(target)
            if dst != src:
                graph[src].add(dst)
    return graph


def violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Imports from a lower layer to a higher one, and units missing from ``layers``."""
    out = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            if src not in layers or dst not in layers:
                out.append(f"{src or 'initstats'} -> {dst or 'initstats'}: unit without a layer")
            elif layers[dst] > layers[src]:
                out.append(f"{src or 'initstats'} (layer {layers[src]}) imports {dst} (layer {layers[dst]})")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle found by depth-first search (empty for a DAG)."""
    found, state = [], {}

    def visit(u: str, stack: list[str]) -> None:
        state[u] = "open"
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack + [v])
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u, [u])
    return found


def test_every_unit_has_a_layer():
    units = {unit(module_name(p)) for p in ROOT.rglob("*.py")}
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


def test_imports_point_down_and_never_circle():
    graph = unit_graph()
    assert violations(graph, LAYERS) == []
    assert cycles(graph) == []


def test_the_checks_can_fail():
    """An upward import and a circle, as report -> cli -> report once was, are both reported."""
    graph = {"report": {"cli", "verify"}, "cli": {"report"}, "verify": {"claims"}}
    assert violations(graph, LAYERS) == ["report (layer 7) imports cli (layer 8)"]
    assert cycles(graph) == [["cli", "report", "cli"]]
    assert violations({"exact": {"newthing"}}, LAYERS) == ["exact -> newthing: unit without a layer"]


@pytest.mark.parametrize("module", ["initstats.exact", "initstats.graph", "initstats.spec", "initstats.measurement",
                                    "initstats.claims", "initstats.scaling", "initstats.files"])
def test_torch_free_modules_import_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", f"{module} imports torch"
