"""Running a sweep: chunks scheduled on a backend, committed to the store, put back in order, verified.

Each point (one network of one case) is a sequence of chunks ``0, 1, 2, ...``.  Chunks run on
the backend in any order and are committed to the store as they finish; the scheduler folds them
in index order and stops a point exactly where one uninterrupted ``measure()`` would: after
``nets`` networks, or, sampling adaptively, after the first chunk at which ``rel_se`` is reached
(with at least ``min_nets``), else at ``max_nets``.  A few chunks past that stop may have run
(adaptive points look ahead to keep the workers busy); they stay in the store, unused.

So the numbers depend on the seed, the cases and the chunk sizes alone: a resumed run, a run
with more workers or on Ray gives the rows of an uninterrupted one, bit for bit.  The
verification of each case is then :mod:`initstats.verify`'s, with the measurements assembled
from the store in place of the Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SweepError
from ..inference import precision_reached
from ..measurement import Measurement
from ..verification import Verification, _clean
from .cases import Case, Sweep
from .store import StoredPoint, SweepStore, decode_measurement
from .worker import ChunkTask, chunk_size

__all__ = ["SweepResult", "run_sweep", "Progress"]

#: ``progress(case, nets_done, nets_target)`` after each folded chunk; targets of adaptive points
#: are their ``max_nets`` until they stop
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True, eq=False)
class SweepResult:
    """The verification of every case of a sweep, and the store they came from.

    ``rows()`` and ``claims_frame()`` are tidy frames with a ``case`` column first: one row per
    case x size x statistic, one per claim.

    Examples
    --------
    >>> import tempfile
    >>> from initstats.sweep import parse_sweep
    >>> res = run_sweep(parse_sweep({"case": [{"arch": "fc", "dims": [4, 8], "width": 8, "nets": 64}]}),
    ...                 tempfile.mkdtemp())
    >>> res.cases, res.chunks_run, list(res.claims_frame().columns[:3])
    (('fc',), 2, ['case', 'claim', 'kind'])
    >>> sorted(res.to_dict())
    ['claims', 'rows', 'warnings']
    """

    cases: tuple[str, ...]
    verifications: tuple[Verification, ...] = field(repr=False)
    root: Path
    chunks_run: int = 0
    chunks_stored: int = 0

    def rows(self) -> pd.DataFrame:
        return pd.concat([v.rows.assign(case=c) for c, v in zip(self.cases, self.verifications)],
                         ignore_index=True).pipe(_case_first)

    def claims_frame(self) -> pd.DataFrame:
        return pd.concat([v.claims_frame().assign(case=c) for c, v in zip(self.cases, self.verifications)],
                         ignore_index=True).pipe(_case_first)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{c}: {w}" for c, v in zip(self.cases, self.verifications) for w in v.warnings)

    @property
    def verdict(self) -> str:
        from ..claims import combine_verdicts

        return combine_verdicts([v.verdict for v in self.verifications])

    @property
    def failed(self) -> bool:
        return any(v.failed for v in self.verifications)

    def to_dict(self) -> dict:
        """``{"rows": [...], "claims": [...], "warnings": [...]}``, each row and claim with its ``case``."""
        out: dict[str, list] = {"rows": [], "claims": [], "warnings": list(self.warnings)}
        for c, v in zip(self.cases, self.verifications):
            d = v.to_dict()
            out["rows"] += [{"case": c, **r} for r in d["rows"]]
            out["claims"] += [{"case": c, **{k: _clean(x) for k, x in r.items()}} for r in d["claims"]]
        return out


def _case_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["case", *[c for c in frame.columns if c != "case"]]]


class _Point:
    """The scheduling state of one point: chunks finished, folded in order, and where it stops."""

    def __init__(self, case: Case, index: int, stored: StoredPoint, adaptive: bool, done: dict[int, np.ndarray]):
        opt = case.options()
        self.case, self.index, self.stored, self.adaptive = case, index, stored, adaptive
        self.rel_se, self.min_nets = opt.rel_se, opt.min_nets
        self.n_chunks = math.ceil(stored.target / stored.chunk_size)
        self.l2: dict[int, np.ndarray] = dict(done)  # chunk -> per-network ||grad f||^2
        self.folded, self.nets = 0, 0
        self.stop: int | None = None
        self.stopped = "nets"
        self.in_flight: set[int] = set()
        self.next = 0
        self._fold()

    def size(self, j: int) -> int:
        return min(self.stored.chunk_size, self.stored.target - j * self.stored.chunk_size)

    def _fold(self) -> None:
        while self.stop is None and self.folded in self.l2:
            self.folded += 1
            self.nets += self.size(self.folded - 1)
            if self.adaptive and self.nets >= self.min_nets and precision_reached(
                    np.concatenate([self.l2[j] for j in range(self.folded)]), self.rel_se):
                self.stop, self.stopped = self.folded, "rel_se"
            elif self.folded == self.n_chunks:
                self.stop, self.stopped = self.folded, "max_nets" if self.adaptive else "nets"

    def add(self, j: int, l2: np.ndarray) -> None:
        self.in_flight.discard(j)
        self.l2[j] = l2
        self._fold()

    def wanted(self, lookahead: int) -> int | None:
        """The next chunk to run, or None (stopped, all run, or far enough ahead of the fold)."""
        if self.stop is not None:
            return None
        while self.next < self.n_chunks and (self.next in self.l2 or self.next in self.in_flight):
            self.next += 1
        if self.next >= self.n_chunks or (self.adaptive and self.next >= self.folded + lookahead):
            return None
        return self.next

    @property
    def target(self) -> int:
        return self.nets if self.stop is not None else self.stored.target


def _prepare(store: SweepStore, sweep: Sweep, report_only: bool) -> list[_Point]:
    points = []
    for case in sweep.cases:
        opt = case.options()
        for p in case.points:
            stored = store.point(case.name, p.index)
            if stored is None:
                if report_only:
                    raise SweepError(f"case {case.name!r}, {p.label}: not measured yet; run the sweep without "
                                     "--report-only to measure it")
                target = opt.nets if opt.nets is not None else opt.max_nets
                stored = StoredPoint(label=p.label, chunk_size=chunk_size(case, p), target=target)
                store.add_point(case.name, p.index, stored)
            done = store.chunk_values(case.name, p.index, "grad_logit_l2_sq")
            points.append(_Point(case, p.index, stored, opt.nets is None, done))
    return points


def run_sweep(sweep: Sweep, out: str | Path, *, backend: str = "local", workers: int = 1, threads: int = 1,
              ray_address: str | None = None, force: bool = False, report_only: bool = False,
              progress: Progress | None = None) -> SweepResult:
    """Measure every case of ``sweep`` into the store in ``out`` (resuming what it holds), then verify.

    Parameters
    ----------
    sweep : Sweep
        From :func:`~initstats.sweep.load_sweep` or :func:`~initstats.sweep.parse_sweep`.
    out : path
        The sweep's directory: its store (``sweep.sqlite``) and lock.  What it holds is kept:
        finished chunks are not run again.
    backend : {'local', 'ray'}
    workers : int
        Worker processes (``local``), or the CPUs of a Ray started here (``ray`` without
        ``ray_address``).
    threads : int
        torch threads per chunk on a CPU (see :mod:`initstats.sweep.worker`).
    force : bool
        Discard the chunks of cases that changed since the directory was started (else an error).
    report_only : bool
        Measure nothing: verify from the store (an error if a point is unfinished).  The
        verification settings of a case (``confidence``, tolerances, ``holm``,
        ``infinite_width``) may differ from the run that measured it; anything else is a change.
    progress : callable, optional
        ``progress(case, nets_done, nets_target)``.

    Returns
    -------
    SweepResult

    Examples
    --------
    >>> import tempfile
    >>> from initstats.sweep import parse_sweep
    >>> sweep = parse_sweep({"case": [{"arch": "fc", "dims": [4, 8], "width": 16, "nets": 200}]})
    >>> res = run_sweep(sweep, tempfile.mkdtemp())
    >>> res.rows().query("statistic == 'grad_logit_l2_sq'")[["case", "px", "n_nets", "predicted"]].values.tolist()
    [['fc', 4, 200, 2.0], ['fc', 8, 200, 2.0]]
    """
    from .backends import make_backend

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        from ..errors import OptionError

        raise OptionError(f"--threads {threads!r} is invalid; expected a positive integer")
    with SweepStore.open(out, create=not report_only) as store:
        store.check_cases({c.name: c.recipe(measured=True) for c in sweep.cases}, force=force)
        points = _prepare(store, sweep, report_only)
        ran = 0
        if not report_only and any(p.stop is None for p in points):
            gpus = any(c.options().device.startswith("cuda") for c in sweep.cases)
            engine = make_backend(backend, workers=workers, address=ray_address, gpus=gpus, threads=threads)
            try:
                ran = _schedule(points, engine, store, threads, progress)
            finally:
                engine.close()
        unfinished = [f"{p.case.name!r} {p.stored.label} ({p.folded} of {p.n_chunks} chunks)"
                      for p in points if p.stop is None]
        if unfinished:
            raise SweepError(f"unfinished in the store: {', '.join(unfinished)}; run the sweep without --report-only")
        verifications = tuple(case.verify(_Replay(store, case, [p for p in points if p.case is case]))
                              for case in sweep.cases)
        stored = int(store.db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    return SweepResult(cases=tuple(c.name for c in sweep.cases), verifications=verifications, root=Path(out),
                       chunks_run=ran, chunks_stored=stored)


def _schedule(points: list[_Point], engine, store: SweepStore, threads: int, progress: Progress | None) -> int:
    """Run chunks until every point has stopped; returns the number of chunks run."""
    by_key = {(p.case.name, p.index): p for p in points}
    recipes = {p.case.name: p.case.recipe() for p in points}
    lookahead = max(2, engine.slots)
    in_flight = ran = 0
    _report(points, progress)
    while True:
        for p in points:  # fill the backend's slots, earliest points first
            while in_flight < engine.slots and (j := p.wanted(lookahead)) is not None:
                engine.submit(ChunkTask(recipe=recipes[p.case.name], point=p.index, chunk=j, nets=p.size(j),
                                        chunk_size=p.stored.chunk_size, threads=threads))
                p.in_flight.add(j)
                in_flight += 1
        if in_flight == 0:
            return ran
        r = engine.next_result()
        in_flight -= 1
        ran += 1
        m = decode_measurement(r.payload)
        store.put_chunk(r.case, r.point, r.chunk, m, payload=r.payload)
        p = by_key[(r.case, r.point)]
        p.add(r.chunk, m.per_net["grad_logit_l2_sq"])
        _report([q for q in points if q.case is p.case], progress)


def _report(points: list[_Point], progress: Progress | None) -> None:
    if progress is None:
        return
    cases: dict[str, list[int]] = {}
    for p in points:
        done, target = cases.setdefault(p.case.name, [0, 0])
        cases[p.case.name] = [done + p.nets, target + p.target]
    for name, (done, target) in cases.items():
        progress(name, done, target)


class _Replay:
    """A stand-in for ``measure()`` that returns, call by call, the stored measurements of a case's points."""

    def __init__(self, store: SweepStore, case: Case, points: list[_Point]) -> None:
        self.store, self.case, self.points, self.calls = store, case, points, 0

    def __call__(self, network, *args, **kwargs) -> Measurement:
        p = self.points[self.calls]
        self.calls += 1
        chunks = self.store.chunks(self.case.name, p.index, stop=p.stop)  # not the look-ahead past the stop
        m = Measurement.merge_all([chunks[j] for j in range(p.stop)])  # type: ignore[arg-type]
        opt = self.case.options()
        m = replace(m, stopped=p.stopped, rel_se=None if opt.nets is not None else opt.rel_se)
        expected = self.case.points[p.index]
        if m.d != len(expected.groups):  # the store and the case must describe the same network
            raise SweepError(f"case {self.case.name!r}, {p.stored.label}: the store holds d={m.d}, the case has "
                             f"d={len(expected.groups)}; rerun with --force")
        return m
