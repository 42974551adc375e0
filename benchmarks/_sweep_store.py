"""The store half of ``bench_sweep.py``: what committing, encoding and reading back a chunk costs,
SQLite (the sweep's store) against DuckDB (when importable), next to the chunk's compute.

See ``bench_sweep.py``'s docstring, item 2.
"""

from __future__ import annotations

import importlib
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace

import torch

from initstats.empirical.measure import measure
from initstats.sweep.store import SweepStore, StoredPoint, decode_measurement, encode_measurement
from initstats.sweep.worker import ChunkTask, chunk_size, run_chunk

__all__ = ["Op", "Source", "missing", "store_costs"]


def missing(module: str) -> str | None:
    """None if ``import module`` works, else '``module`` not installed'."""
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{module} not installed"
    return None


@dataclass
class Op:
    key: str
    name: str
    times: list[float] = field(default_factory=list)   # seconds per chunk, one per timing
    chunks: int = 0                                     # chunks these timings cover
    missing: str | None = None

    median = property(lambda self: statistics.median(self.times))
    mean = property(lambda self: statistics.fmean(self.times))


@dataclass
class Source:
    label: str
    nets: int
    d: int
    payload: int
    compute: float
    whole: float        # per chunk, inside one measure() of all the point's chunks (1 thread)
    chunks: int         # the point's chunks
    ops: list[Op]

    def op(self, key: str) -> Op:
        return next(o for o in self.ops if o.key == key)


_DUCK_SCHEMA = ("CREATE TABLE chunks (case_name VARCHAR NOT NULL, point INTEGER NOT NULL, chunk INTEGER NOT NULL, "
                "nets INTEGER NOT NULL, seconds DOUBLE NOT NULL, device VARCHAR NOT NULL, payload BLOB NOT NULL, "
                "PRIMARY KEY (case_name, point, chunk))")


def _each(n: int, fn) -> list[float]:
    """Seconds of each of ``n`` calls ``fn(j)``."""
    out = []
    for j in range(n):
        t = time.perf_counter()
        fn(j)
        out.append(time.perf_counter() - t)
    return out


def _per_chunk(reps: int, n: int, fn) -> list[float]:
    """Seconds per chunk of each of ``reps`` calls ``fn()`` that each handle ``n`` chunks."""
    return [t / n for t in _each(reps, lambda _: fn())]


def store_costs(case, point, cfg, tmp: str) -> Source:
    """The store's operations on one real chunk of ``point`` (see the module docstring)."""
    size = chunk_size(case, point)
    task = ChunkTask(recipe=case.recipe(), point=point.index, chunk=0, nets=size, chunk_size=size)
    run_chunk(task)                                          # untimed: case built, kernels warm
    compute = statistics.median(_each(cfg.compute_reps, lambda _: run_chunk(task)))
    payload = run_chunk(task).payload
    k, threads = math.ceil(case.options().nets / size), torch.get_num_threads()
    torch.set_num_threads(1)
    try:                                                     # the point's chunks in one measure() call, as verify
        whole = statistics.median(_per_chunk(cfg.compute_reps, k, lambda: measure(
            point.network, replace(case.options(), chunk=size, stream=point.stream), coord_groups=point.groups)))
    finally:
        torch.set_num_threads(threads)
    m = decode_measurement(payload)
    n = cfg.store_chunks
    ops = [Op("encode", "`encode_measurement` (.npz blob)", _each(n, lambda _: encode_measurement(m)), n),
           Op("decode", "`decode_measurement`", _each(n, lambda _: decode_measurement(payload)), n)]
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=tmp) as root:
        with SweepStore.open(root) as store:
            store.check_cases({case.name: case.recipe()})
            store.add_point(case.name, point.index, StoredPoint(label=point.label, chunk_size=size, target=n * size))
            put = _each(n, lambda j: store.put_chunk(case.name, point.index, j, m))
            back = _per_chunk(cfg.read_reps, n, lambda: store.chunks(case.name, point.index))
            if len(store.chunks(case.name, point.index)) != n:
                raise AssertionError("the SQLite store holds other chunks than were put")
        duck, duck_read = Op("duckdb", "DuckDB: encode + INSERT + COMMIT (BLOB column)"), \
            Op("duckdb-read", "DuckDB: SELECT + decode, per chunk")
        ops += [Op("sqlite", "SQLite: `SweepStore.put_chunk` (encode + INSERT + COMMIT, WAL, synchronous = FULL)",
                   put, n), duck, Op("sqlite-read", "SQLite: `SweepStore.chunks` (SELECT + decode), per chunk", back, n),
                duck_read]
        duck.missing = duck_read.missing = missing("duckdb")
        if not duck.missing:
            con = importlib.import_module("duckdb").connect(os.path.join(root, "store.duckdb"))
            try:
                con.execute(_DUCK_SCHEMA)

                def put_duck(j: int) -> None:
                    blob = encode_measurement(m)
                    con.begin()
                    con.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (case.name, point.index, j, m.n_nets, m.seconds, m.device, blob))
                    con.commit()

                def read_duck() -> dict:
                    rows = con.execute("SELECT chunk, payload FROM chunks WHERE case_name = ? AND point = ? "
                                       "ORDER BY chunk", (case.name, point.index)).fetchall()
                    return {j: decode_measurement(bytes(blob)) for j, blob in rows}

                duck.times, duck.chunks = _each(n, put_duck), n
                duck_read.times, duck_read.chunks = _per_chunk(cfg.read_reps, n, read_duck), n
                if len(read_duck()) != n:
                    raise AssertionError("the DuckDB table holds other chunks than were put")
            finally:
                con.close()
    return Source(label=f"`{case.name}` {point.label}", nets=m.n_nets, d=m.d, payload=len(payload), compute=compute,
                  whole=whole, chunks=k, ops=ops)
