"""One chunk of a sweep, measured wherever a backend runs it: this process, a worker process, a Ray task.

A :class:`ChunkTask` names its case by recipe (canonical JSON), so a worker rebuilds the case's
networks itself (once per process: traced models and read files are cached) and nothing but
plain data crosses process or machine boundaries.  Chunk ``j`` of a point is the ``j``-th chunk
of :func:`~initstats.empirical.measure.measure` run with the point's stream
(``MeasureOptions(first_chunk=j, stream=...)``), so merging a point's chunks in order gives the
measurement of one uninterrupted run.

Every chunk runs with ``threads`` torch threads on the CPU, on every backend: CPU kernels may
sum in another order with another thread count, so the same ``threads`` gives the same numbers
with any number of workers.  A process that runs chunks keeps glibc's freed memory for reuse
(:func:`~initstats.empirical.common.keep_freed_memory`): each chunk is its own ``measure()``
call, and without it every chunk page-faults its activations again (measured with
``benchmarks/bench_sweep.py`` on a 2-core CPU: 1.28-1.35x the time of the same chunk inside one
``measure()`` without it, 0.99-1.04x with it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import lru_cache

from .cases import Case, Point

__all__ = ["ChunkTask", "ChunkResult", "run_chunk", "chunk_size"]


@dataclass(frozen=True, kw_only=True)
class ChunkTask:
    """Chunk ``chunk`` (``nets`` networks; ``chunk_size`` per chunk) of point ``point`` of a case.

    Examples
    --------
    >>> case = Case.make({"arch": "fc", "dims": [4, 8], "nets": 100}, index=1)
    >>> ChunkTask(recipe=case.recipe(), point=1, chunk=3, nets=10, chunk_size=30).key
    ('fc', 1, 3)
    """

    recipe: str
    point: int
    chunk: int
    nets: int
    chunk_size: int
    threads: int = 1

    @property
    def key(self) -> tuple[str, int, int]:
        return (Case.from_recipe(self.recipe).name, self.point, self.chunk)


@dataclass(frozen=True, kw_only=True)
class ChunkResult:
    """A finished chunk: its measurement as an ``.npz`` blob (:func:`~initstats.sweep.store.encode_measurement`).

    Examples
    --------
    >>> case = Case.make({"arch": "fc", "dims": [4], "width": 8, "nets": 4}, index=1)
    >>> r = run_chunk(ChunkTask(recipe=case.recipe(), point=0, chunk=0, nets=4, chunk_size=4))
    >>> r.case, r.point, r.chunk, r.payload[:2]
    ('fc', 0, 0, b'PK')
    """

    case: str
    point: int
    chunk: int
    payload: bytes
    seconds: float


@lru_cache(maxsize=8)
def _case(recipe: str) -> Case:
    return Case.from_recipe(recipe)


def _options(case: Case, point: Point, *, nets: int, chunk_size: int, first_chunk: int):
    return replace(case.options(), nets=nets, chunk=chunk_size, first_chunk=first_chunk, stream=point.stream)


def chunk_size(case: Case, point: Point) -> int:
    """Networks per chunk for a point: what ``verify`` would take (``chunk``, else from the network's size).

    Examples
    --------
    >>> case = Case.make({"arch": "fc", "dims": [4], "nets": 100, "chunk": 32, "device": "cpu"}, index=1)
    >>> chunk_size(case, case.points[0])
    32
    """
    opt = case.options()
    if case.kind == "empirical":
        from ..empirical.direct import module_chunk

        return module_chunk(opt)
    from ..empirical.sampling import plan

    return plan(point.network, opt).chunk


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Measure one chunk (see the module docstring) and return it encoded.

    Examples
    --------
    >>> from initstats.sweep.store import decode_measurement
    >>> case = Case.make({"arch": "fc", "dims": [4], "width": 8, "nets": 6, "chunk": 4}, index=1)
    >>> r = run_chunk(ChunkTask(recipe=case.recipe(), point=0, chunk=1, nets=2, chunk_size=4))
    >>> decode_measurement(r.payload).n_nets
    2
    """
    import torch

    from ..empirical.measure import measure

    from ..empirical.common import keep_freed_memory

    keep_freed_memory()  # once per process (cached); see the module docstring
    case = _case(task.recipe)
    point = case.points[task.point]
    opt = _options(case, point, nets=task.nets, chunk_size=task.chunk_size, first_chunk=task.chunk)
    threads = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    start = time.perf_counter()
    try:
        if case.kind == "empirical":
            from ..empirical.direct import measure_module

            model, shape, name = point.network
            m = measure_module(model, shape, opt, name=name, coord_groups=point.groups)
        else:
            m = measure(point.network, opt, coord_groups=point.groups)
    finally:
        torch.set_num_threads(threads)
    from .store import encode_measurement

    return ChunkResult(case=case.name, point=task.point, chunk=task.chunk, payload=encode_measurement(m),
                       seconds=time.perf_counter() - start)
