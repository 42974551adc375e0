"""The cases of a sweep: a TOML file's ``[[case]]`` tables, checked, and the networks each one measures.

A case takes the options of ``initstats verify`` with ``_`` for ``-`` (``arch`` or ``spec`` or
``module``, ``dims``, ``channels``, ``pool``, ``nets``, ``rel_se``, ``init``, ...), plus ``name``
(default: the network's name, ``#2``, ``#3`` ... for repeats) and ``chunk`` (networks per batched
pass).  A top-level ``seed`` is the default of every case's ``seed``.  Relative paths (``spec``,
a ``module``'s ``.py`` file, an ``inputs`` ``.npy`` file) are relative to the sweep file.

Not keys of a case: ``out``, ``format`` and ``plot`` belong to the whole sweep (command line),
and ``max_time`` would make the numbers depend on timing: a sweep stops by ``nets``, ``rel_se``
and ``max_nets`` alone, so that it resumes and parallelises bit for bit.

Each case is one verification (:mod:`initstats.verify`); its *points* are the networks that
verification measures, in its order (one per input size and pooling size).  Point ``i`` of case
``c`` draws chunk ``j`` from the stream ``(seed, crc32(c), size, pool, j)``: it depends on the
case's name, the point and the chunk, never on what else the sweep holds or on scheduling.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InitStatsError, SweepFileError
from ..measurement import DEFAULT_REL_SE, MeasureOptions
from ..points import border_rings, family_grid, graph_groups
from ..verification import Verification, VerifySettings

__all__ = ["Case", "Point", "Sweep", "parse_sweep", "load_sweep", "CASE_KEYS", "NOT_CASE_KEYS"]

_INT, _FLOAT, _BOOL, _STR, _INTS = "an integer", "a number", "true or false", "a string", "a list of integers"
#: every key of a case and the type it takes (the options of ``initstats verify``, plus name and chunk)
CASE_KEYS: dict[str, str] = {
    "name": _STR, "arch": _STR, "spec": _STR, "module": _STR, "dims": _INTS, "input_shape": _INTS,
    "channels": _INT, "padding": _STR, "downsample": _STR, "head": _STR, "batchnorm": _BOOL, "classes": _INT,
    "width": _INT, "depth": _INT, "blocks": _INT, "pool": _INTS, "literal_h1": _BOOL,
    "nets": _INT, "rel_se": _FLOAT, "max_nets": _INT, "chunk": _INT, "inputs_per_net": _INT, "logits": _INT,
    "inputs": _STR, "init": _STR, "eps": _FLOAT, "seed": _INT, "device": _STR, "dtype": _STR,
    "confidence": _FLOAT, "exponent_tolerance": _FLOAT, "bridge_tolerance": _FLOAT, "excess_tolerance": _FLOAT,
    "infinite_width": _INT, "empirical_only": _BOOL, "holm": _BOOL,
}
#: options of ``initstats verify`` that a case does not take, and why
NOT_CASE_KEYS: dict[str, str] = {
    "out": "the sweep's output directory is the command's --out DIR",
    "format": "the output format is the command's --format",
    "plot": "figures are the command's --plot/--no-plot",
    "max_time": "a time budget would make the numbers depend on timing, so a resumed or parallel sweep could not "
                "reproduce them; a sweep stops by nets, rel_se and max_nets alone",
    "widths": "a width trend measures every network again at each width, outside the sweep's store; give one case "
              "per width (channels) and fit them with initstats.width_trend.width_fit, or run initstats verify "
              "--widths",
}
_FAMILY_KEYS = ("channels", "padding", "downsample", "head", "batchnorm", "classes", "width", "depth", "blocks")
_SETTINGS_KEYS = ("confidence", "exponent_tolerance", "bridge_tolerance", "excess_tolerance", "holm",
                  "infinite_width")


def _check_type(where: str, key: str, value: Any) -> Any:
    """``value`` in the canonical form of ``key``'s type, or a SweepFileError naming both."""
    kind = CASE_KEYS[key]
    ok = {_INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
          _FLOAT: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          _BOOL: lambda v: isinstance(v, bool),
          _STR: lambda v: isinstance(v, str) and v != ""}
    if kind == _INTS:
        given = value
        if isinstance(value, str):  # "32,64" as on the command line
            try:
                value = [int(t) for t in value.split(",") if t.strip()]
            except ValueError:
                value = None
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not (isinstance(value, list) and value and all(ok[_INT](v) and v >= 1 for v in value)):
            raise SweepFileError(f"{where}: {key} = {given!r} is invalid; expected {kind} >= 1, e.g. [32, 64]")
        return list(value)
    if not ok[kind](value):
        raise SweepFileError(f"{where}: {key} = {value!r} is invalid; expected {kind}")
    return float(value) if kind == _FLOAT else value


def _close(key: str, names) -> str:
    near = difflib.get_close_matches(key, list(names), n=1)
    return f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(sorted(names))}"


@dataclass(frozen=True, kw_only=True)
class Point:
    """One network a case measures: its label (as ``verify`` prints it), size, pooling size, stream.

    ``network`` is a spec (:class:`~initstats.spec.Arch`), a networkx DAG, or ``(model, input
    shape, name)`` for ``empirical_only``; ``groups`` holds the coordinate group of each input for
    the per-coordinate map claim.

    Examples
    --------
    >>> case = Case.make({"arch": "cnn", "dims": [16], "channels": 2, "pool": [1, 2], "nets": 10}, index=1)
    >>> [(p.label, p.size, p.pool, p.network.input_shape, len(p.groups)) for p in case.points]
    [('px=16,pool=1', 16, 1, (3, 16, 16), 768), ('px=16,pool=2', 16, 2, (3, 16, 16), 768)]
    """

    index: int
    label: str
    size: int
    pool: int
    network: Any = field(repr=False)
    groups: np.ndarray = field(repr=False)
    stream: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class Case:
    """One case of a sweep: its name, seed and the ``verify`` options it gives (checked).

    Examples
    --------
    >>> case = Case.make({"arch": "fc", "dims": [4, 8], "width": 16, "nets": 50}, index=1)
    >>> case.name, case.kind, case.seed, [p.label for p in case.points]
    ('fc', 'arch', 0, ['px=4', 'px=8'])
    >>> case.options().nets, case.points[0].stream[1:]
    (50, (4, 1))
    """

    name: str
    seed: int
    keys: Mapping[str, Any]

    @classmethod
    def make(cls, table: Mapping[str, Any], *, index: int, seed: int = 0, base: Path | None = None,
             name: str | None = None) -> Case:
        """Check a ``[[case]]`` table (``index`` counts from 1, for messages) and resolve its paths."""
        where = f"case {index}"
        if not isinstance(table, Mapping):
            raise SweepFileError(f"{where}: expected a table of options, got {table!r}")
        keys: dict[str, Any] = {}
        for key, value in table.items():
            if key in NOT_CASE_KEYS:
                raise SweepFileError(f"{where}: {key!r} is not a key of a case: {NOT_CASE_KEYS[key]}")
            if key not in CASE_KEYS:
                raise SweepFileError(f"{where}: unknown key {key!r}{_close(key, CASE_KEYS)}")
            keys[key] = _check_type(where, key, value)
        sources = [k for k in ("arch", "spec", "module") if k in keys]
        if len(sources) != 1:
            raise SweepFileError(f"{where}: give exactly one of arch, spec, module (got {', '.join(sources) or 'none'})")
        if sources == ["arch"] and "dims" not in keys:
            raise SweepFileError(f"{where}: arch needs dims, e.g. dims = [32, 64]")
        not_with = {"spec": ("dims", "input_shape", "pool", "literal_h1", "empirical_only", *_FAMILY_KEYS),
                    "module": ("pool", "literal_h1", *_FAMILY_KEYS), "arch": ("input_shape", "empirical_only")}
        if clash := [k for k in not_with[sources[0]] if k in keys]:
            raise SweepFileError(f"{where}: {', '.join(clash)} do not combine with {sources[0]} "
                                 f"({'it describes the whole network' if sources[0] != 'arch' else 'module options'})")
        if "nets" in keys and "rel_se" in keys:
            raise SweepFileError(f"{where}: give either nets (fixed) or rel_se (adaptive), not both")
        base = base or Path.cwd()
        if "spec" in keys:
            keys["spec"] = str((base / keys["spec"]).resolve())
        if "module" in keys and ":" in keys["module"]:
            src, _, attr = keys["module"].rpartition(":")
            if src.endswith(".py") or "/" in src:
                keys["module"] = f"{(base / src).resolve()}:{attr}"
        if "inputs" in keys and keys["inputs"].endswith(".npy"):
            keys["inputs"] = str((base / keys["inputs"]).resolve())
        case_seed = keys.pop("seed", seed)
        if case_seed < 0:
            raise SweepFileError(f"{where}: seed = {case_seed} is invalid; expected a non-negative integer")
        label = keys.pop("name", None) or name or cls._default_name(keys)
        case = cls(name=label, seed=case_seed, keys=dict(sorted(keys.items())))
        try:  # options, settings and the networks are checked now, before any work
            case.options(), case.settings(), case.points
        except InitStatsError as err:
            raise SweepFileError(f"{where} ({label}): {err}") from None
        return case

    @staticmethod
    def _default_name(keys: Mapping[str, Any]) -> str:
        if "arch" in keys:
            return str(keys["arch"])
        if "spec" in keys:
            return Path(keys["spec"]).stem
        return str(keys["module"]).rpartition(":")[2]

    @property
    def kind(self) -> str:
        """``'arch'``, ``'spec'``, ``'module'`` or ``'empirical'`` (a module with ``empirical_only``)."""
        if "module" in self.keys:
            return "empirical" if self.keys.get("empirical_only") else "module"
        return "spec" if "spec" in self.keys else "arch"

    def recipe(self, *, measured: bool = False) -> str:
        """The case as canonical JSON: what a worker rebuilds the case from.

        With ``measured``, only what the measurements depend on (without the verification
        settings: ``confidence``, the tolerances, ``holm``, ``infinite_width``): what the store
        compares, so that changing a setting re-verifies the stored chunks without measuring.

        Examples
        --------
        >>> a = Case.make({"arch": "fc", "dims": [4], "nets": 10}, index=1)
        >>> b = Case.make({"arch": "fc", "dims": [4], "nets": 10, "confidence": 0.95}, index=1)
        >>> a.recipe() == b.recipe(), a.recipe(measured=True) == b.recipe(measured=True)
        (False, True)
        """
        keys = {k: v for k, v in self.keys.items() if not (measured and k in _SETTINGS_KEYS)}
        return json.dumps({"name": self.name, "seed": self.seed, "keys": keys}, sort_keys=True)

    @classmethod
    def from_recipe(cls, text: str) -> Case:
        data = json.loads(text)
        return cls(name=data["name"], seed=data["seed"], keys=data["keys"])

    def options(self) -> MeasureOptions:
        """The case's sampling options (as ``initstats verify`` builds them from the same options)."""
        k = self.keys
        max_nets = k.get("max_nets", 20000)
        return MeasureOptions(nets=k.get("nets"), rel_se=k.get("rel_se", DEFAULT_REL_SE), max_nets=max_nets,
                              min_nets=min(64, max_nets), chunk=k.get("chunk"), inputs_per_net=k.get("inputs_per_net"),
                              logits=k.get("logits"), inputs=k.get("inputs", "normal"), eps=k.get("eps", 1.0),
                              init=k.get("init", "he"), seed=self.seed, device=k.get("device", "auto"),
                              dtype=k.get("dtype", "float32"))

    def settings(self) -> VerifySettings:
        return VerifySettings(**{key: self.keys[key] for key in _SETTINGS_KEYS if key in self.keys})

    @cached_property
    def points(self) -> tuple[Point, ...]:
        """The networks the case's verification measures, in its order (built once: traces, reads files)."""
        k, tag = self.keys, zlib.crc32(self.name.encode()) & 0x7FFFFFFF
        groups_of = lambda shape: border_rings(shape)[0]  # noqa: E731
        if self.kind == "arch":
            pools = k.get("pool", [1])
            grid = family_grid(k["arch"], k["dims"], pools=pools, literal_h1=k.get("literal_h1", False),
                               family_options={key: k[key] for key in _FAMILY_KEYS if key in k})
            return tuple(Point(index=i, label=f"px={px}" + (f",pool={a}" if len(pools) > 1 else ""), size=px, pool=a,
                               network=arch, groups=groups_of(arch.input_shape), stream=(tag, px, a))
                         for i, (px, a, arch) in enumerate(grid))
        if self.kind == "spec":
            from ..exact import analyse
            from ..graph.io import read_graph

            g = read_graph(k["spec"])
            scale = Fraction(1) if self.options().init == "he" else Fraction(1, 2)
            groups, _ = graph_groups(analyse(g, var_scale=scale))
            d = len(groups)
            return (Point(index=0, label="graph", size=d, pool=1, network=g, groups=groups, stream=(tag, d, 1)),)
        from ..empirical.modules import module_archs, module_instances

        shape = tuple(k["input_shape"]) if "input_shape" in k else None
        if self.kind == "empirical":
            nets = [((model, s, name), s) for model, s, name in module_instances(k["module"], k.get("dims"),
                                                                                  input_shape=shape)]
        else:
            nets = [(arch, arch.input_shape) for arch in module_archs(k["module"], k.get("dims"), input_shape=shape)]
        size_name = "px" if all(len(s) > 1 for _, s in nets) else "d"
        sizes = [s[1] if size_name == "px" else math.prod(s) for _, s in nets]
        return tuple(Point(index=i, label=f"{size_name}={size}", size=size, pool=1, network=net,
                           groups=groups_of(s), stream=(tag, size, 1))
                     for i, (size, (net, s)) in enumerate(zip(sizes, nets)))

    def verify(self, measurer: Callable) -> Verification:
        """The case's verification, with ``measurer`` in place of the Monte Carlo (see :mod:`initstats.verify`)."""
        from ..verify import verify_archs, verify_family, verify_graph
        from ..verify_measured import verify_module_measured

        k, opt, settings = self.keys, self.options(), self.settings()
        if self.kind == "arch":
            return verify_family(k["arch"], k["dims"], pools=k.get("pool", [1]), literal_h1=k.get("literal_h1", False),
                                 family_options={key: k[key] for key in _FAMILY_KEYS if key in k}, options=opt,
                                 settings=settings, measurer=measurer)
        if self.kind == "spec":
            return verify_graph(self.points[0].network, options=opt, settings=settings, measurer=measurer)
        if self.kind == "empirical":
            return verify_module_measured(k["module"], k.get("dims"), options=opt, settings=settings, measurer=measurer,
                                          input_shape=tuple(k["input_shape"]) if "input_shape" in k else None)
        return verify_archs([p.network for p in self.points], options=opt, settings=settings, measurer=measurer)


@dataclass(frozen=True, kw_only=True)
class Sweep:
    """The cases of a sweep file, in order, with unique names.

    Examples
    --------
    >>> sweep = parse_sweep({"seed": 3, "case": [{"arch": "fc", "dims": [4, 8]}, {"arch": "fc", "dims": [4]}]})
    >>> [(c.name, c.seed) for c in sweep.cases]
    [('fc', 3), ('fc#2', 3)]
    """

    cases: tuple[Case, ...]
    source: str = ""

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


def parse_sweep(data: Mapping[str, Any], *, base: Path | None = None, source: str = "") -> Sweep:
    """Check a parsed sweep file: top-level ``seed`` and ``case`` only, one or more cases, unique names.

    ``base`` is the folder relative paths are resolved against (default: the working directory).

    Examples
    --------
    >>> sweep = parse_sweep({"seed": 2, "case": [{"arch": "fc", "dims": "8,16", "nets": 100, "name": "mlp"}]})
    >>> [(c.name, c.seed, c.keys["dims"], c.kind) for c in sweep.cases]
    [('mlp', 2, [8, 16], 'arch')]
    """
    if unknown := [k for k in data if k not in ("seed", "case")]:
        raise SweepFileError(f"unknown top-level key {unknown[0]!r}{_close(unknown[0], ('seed', 'case'))} "
                             "(options go into [[case]] tables)")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SweepFileError(f"seed = {seed!r} is invalid; expected a non-negative integer")
    tables = data.get("case", [])
    if not isinstance(tables, list) or not tables:
        raise SweepFileError("the sweep has no cases; add one or more [[case]] tables, e.g. "
                             "'[[case]]' with 'arch = \"fc\"' and 'dims = [16, 32]' on the lines below it")
    cases: list[Case] = []
    names: dict[str, int] = {}
    for i, table in enumerate(tables, start=1):
        case = Case.make(table, index=i, seed=seed, base=base)
        if isinstance(table, Mapping) and "name" in table:
            if case.name in names:
                raise SweepFileError(f"case {i}: the name {case.name!r} is taken by case {names[case.name]}")
        else:
            n, base_name = 2, case.name
            while case.name in names:
                case, n = replace(case, name=f"{base_name}#{n}"), n + 1
        names[case.name] = i
        cases.append(case)
    return Sweep(cases=tuple(cases), source=source)


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file (TOML); relative paths in it are relative to its folder.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "sweep.toml"
    >>> _ = path.write_text('seed = 0\\n[[case]]\\narch = "fc"\\ndims = [16, 32]\\nnets = 200\\n')
    >>> [(c.name, dict(c.keys)) for c in load_sweep(path).cases]
    [('fc', {'arch': 'fc', 'dims': [16, 32], 'nets': 200})]
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SweepFileError(f"cannot read the sweep file {str(path)!r}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SweepFileError(f"{path}: not valid TOML: {err}") from None
    try:
        return parse_sweep(data, base=path.resolve().parent, source=str(path))
    except SweepFileError as err:
        raise SweepFileError(f"{path}: {err}") from None
    except InitStatsError as err:  # pragma: no cover - every option error is re-raised above with its case
        raise SweepFileError(f"{path}: {err}") from None
