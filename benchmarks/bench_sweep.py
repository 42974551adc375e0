"""Benchmark of ``initstats sweep``: throughput by backend against a plain ``verify``, and the store's cost per chunk.

Usage::

    python benchmarks/bench_sweep.py            # full measurement (a few minutes), writes docs/benchmarks.md
    python benchmarks/bench_sweep.py --quick    # small cases, one round, smoke test only

In one run:

1. throughput: small ``fc`` and ``cnn`` cases with fixed ``nets`` (:data:`CASES`), measured and
   verified (a) by a plain sequential ``verify_family(..., options=case.options())`` per case, torch
   on 1 thread and on its default threads, and (b) by ``run_sweep`` into a fresh directory with
   ``backend='local'``, 1 and 2 workers, and ``'ray'`` (a local Ray, 2 CPUs) if ``import ray`` works;
   each once per round, in alternation; the table gives the median of the rounds.  The parallel
   backends' fixed costs are timed alone too (a ``spawn`` pool, ``ray.init`` + ``ray.shutdown``).
   After each 1-worker sweep, ``report_only=True`` on its finished directory times the
   verification alone (it runs in the main process whatever the backend);
2. the store's overhead per chunk: real chunks from ``run_chunk`` (the last point of the first and
   of the last case; also timed as one ``measure()`` of the whole point, per chunk), then per chunk
   ``encode_measurement``, ``decode_measurement``, ``SweepStore.put_chunk`` (SQLite, WAL,
   ``synchronous = FULL``, one transaction per chunk), the same append into DuckDB (one
   transaction per chunk, a BLOB column; when ``import duckdb`` works: it is not a dependency of
   initstats) and reading a point's chunks back from each, next to the time to compute the chunk.

Each timed call runs on a quiet machine as far as ``--max-wait`` allows (``_timing.undisturbed``).
The benchmark process keeps glibc's freed memory from the start
(:func:`~initstats.empirical.common.keep_freed_memory`), as every process that runs sweep chunks
does, so that the baseline and the in-process sweep run alike.
The full run writes the section ``sweep`` of ``docs/benchmarks.md``; ``--quick`` writes nothing
unless ``--doc PATH`` is given.  Exit status 0 (nothing here is a requirement).
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _timing  # noqa: E402
from _common import benchmark_parser, load_average, machine_info, publish  # noqa: E402
from _sweep_md import render  # noqa: E402
from _sweep_store import Source, missing, store_costs  # noqa: E402
from _timing import Quiet, add_quiet_options, undisturbed  # noqa: E402

from initstats.empirical.common import keep_freed_memory  # noqa: E402
from initstats.sweep import parse_sweep, run_sweep  # noqa: E402
from initstats.sweep.worker import chunk_size  # noqa: E402
from initstats.verify import verify_family  # noqa: E402

SECTION = "sweep"
#: the cases of the full run and of --quick: [[case]] tables of a sweep file (all on the CPU, seed 0)
CASES = ({"arch": "fc", "dims": [16, 32], "width": 256, "nets": 4000},
         {"arch": "cnn", "dims": [8, 16], "channels": 16, "nets": 4000},
         {"arch": "cnn", "dims": [16, 32], "channels": 16, "nets": 2000})
QUICK_CASES = ({"arch": "fc", "dims": [4, 8], "width": 16, "nets": 512},
               {"arch": "cnn", "dims": [8], "channels": 2, "nets": 512})
NOT_FAMILY = ("arch", "dims", "nets", "device")
WORKERS = 2  # of the parallel backends


@dataclass(frozen=True)
class Config:
    rounds: int          # alternating rounds of every throughput configuration
    store_chunks: int    # chunks appended per store and chunk kind
    compute_reps: int    # run_chunk calls timed per chunk kind (median)
    read_reps: int       # read-backs of a whole point timed (median)
    startup: bool        # time the parallel backends' start-up alone too


QUICK = Config(rounds=1, store_chunks=20, compute_reps=3, read_reps=3, startup=False)
FULL = Config(rounds=3, store_chunks=300, compute_reps=7, read_reps=5, startup=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _own_and_children() -> float:
    """CPU seconds of this process and of its reaped children: a sweep's worker processes are this run's
    work, not background (``_timing.Background`` counts this process alone)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


_timing._own_seconds = _own_and_children


def _cpu_by_process() -> dict[int, float]:
    """CPU seconds so far of every process (``/proc/PID/stat``: utime + stime)."""
    out = {}
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            out[int(name)] = (int(fields[11]) + int(fields[12])) / _timing._TICK
        except (OSError, ValueError, IndexError):
            continue
    return out


def undisturbed_ray(quiet: Quiet, run, on_repeat):
    """:func:`_timing.undisturbed` for a Ray run: Ray's processes are neither this process nor its reaped children,
    so *background* is the CPU of the processes that ran through the whole call, other than this one."""
    repeated = 0
    while True:
        quiet.wait()
        before, t = _cpu_by_process(), time.perf_counter()
        result = run()
        after, wall = _cpu_by_process(), time.perf_counter() - t
        cores = sum(after[p] - before[p] for p in before.keys() & after.keys() if p != os.getpid()) / wall
        if quiet.ok(cores):
            return result, cores, repeated
        repeated += 1
        on_repeat(cores)


def _filesystem(path: str) -> str:
    """The file system type of ``path`` (its longest mount point in ``/proc/mounts``)."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) > 2]
    except OSError:
        return "unknown file system"
    under = [(len(m), kind) for m, kind in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
    return max(under)[1] if under else "unknown file system"


# -- throughput ---------------------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    label: str
    workers: int
    threads_label: str
    threads: int = 1
    walls: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)
    backgrounds: list[float | None] = field(default_factory=list)
    networks: int = 0
    chunks: int = 0
    missing: str | None = None

    wall = property(lambda self: statistics.median(self.walls))
    startup = property(lambda self: statistics.median(self.startups) if self.startups else None)
    background = property(lambda self: max([b for b in self.backgrounds if b is not None], default=None))


def _networks(rows) -> int:
    return int(rows.query("statistic == 'grad_logit_l2_sq'")["n_nets"].sum())


def run_verify(sweep, threads: int) -> tuple[float, int, None, None]:
    """Plain sequential ``verify_family`` of every case on ``threads`` torch threads: (seconds, networks, None, None)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gc.collect()
        t = time.perf_counter()
        done = [verify_family(c.keys["arch"], c.keys["dims"], options=c.options(), settings=c.settings(),
                              family_options={k: v for k, v in c.keys.items() if k not in NOT_FAMILY})
                for c in sweep.cases]
        wall = time.perf_counter() - t
    finally:
        torch.set_num_threads(before)
    return wall, sum(_networks(v.rows) for v in done), None, None


def run_one_sweep(sweep, backend: str, workers: int, tmp: str, report: bool = False):
    """``run_sweep`` into a fresh directory: (seconds, networks, the result, seconds of a ``report_only`` run on
    the finished directory after it, if ``report``)."""
    with tempfile.TemporaryDirectory(prefix="bench-sweep-", dir=tmp) as out:
        gc.collect()
        t = time.perf_counter()
        res = run_sweep(sweep, out, backend=backend, workers=workers)
        wall = time.perf_counter() - t
        if report:
            t = time.perf_counter()
            if not run_sweep(sweep, out, report_only=True).rows().equals(res.rows()):
                raise AssertionError("report_only gave other rows than the sweep")
            report = time.perf_counter() - t
    return wall, _networks(res.rows()), res, report or None


def pool_startup(workers: int) -> float:
    """A ``spawn`` pool of ``workers`` processes importing torch and initstats's worker, shut down."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(exec, ["import torch, initstats.sweep.worker"] * workers))
    return time.perf_counter() - t


def ray_startup(workers: int) -> float:
    """``ray.init`` with ``workers`` CPUs (as the ray backend starts it) and ``ray.shutdown``."""
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - t


def throughput(sweep, cfg: Config, quiet: Quiet, tmp: str, default_threads: int):
    """The throughput rows, whether all sweeps gave identical rows, the ``report_only`` seconds after each
    1-worker sweep, and how many disturbed calls were repeated."""
    rows = [Row(f"verify-{t}", f"`verify`, sequential, {t} thread{'s' if t > 1 else ''}", 1, str(t), threads=t)
            for t in sorted({1, default_threads})]
    rows += [Row("local-1", "sweep, `local`, 1 worker", 1, "1"),
             Row(f"local-{WORKERS}", f"sweep, `local`, {WORKERS} workers", WORKERS, "1 per worker"),
             Row(f"ray-{WORKERS}", f"sweep, `ray` (local Ray, {WORKERS} CPUs)", WORKERS, "1 per task",
                 missing=missing("ray"))]
    expected = sum(math.ceil(c.options().nets / chunk_size(c, p)) for c in sweep.cases for p in c.points)
    first, identical, redone, reports = None, True, 0, []

    def timed(fn, what: str):
        nonlocal redone

        def repeating(cores: float | None) -> None:
            log(f"  {what}: other processes used {cores:.2f} cores; repeating it")

        result, bg, again = (undisturbed_ray if what.startswith("ray") or "`ray`" in what else undisturbed)(
            quiet, fn, repeating)
        redone += again
        return result, bg

    for r in range(cfg.rounds):
        for row in rows:
            if row.missing:
                continue
            backend, _, n = row.key.partition("-")
            if backend == "verify":
                (wall, nets, res, _), bg = timed(lambda: run_verify(sweep, row.threads), row.label)
                row.chunks = expected
            else:
                (wall, nets, res, report), bg = timed(
                    lambda: run_one_sweep(sweep, backend, int(n), tmp, report=row.key == "local-1"), row.label)
                reports += [report] if report else []
                if res.chunks_run != expected:
                    raise AssertionError(f"{row.label}: {res.chunks_run} chunks run, {expected} expected")
                row.chunks = res.chunks_run
                first = first if first is not None else res.rows()
                identical &= res.rows().equals(first)
                start = {"local": pool_startup if int(n) > 1 else None, "ray": ray_startup}[backend]
                if cfg.startup and start is not None:
                    row.startups.append(timed(lambda: start(int(n)), f"{backend} start-up")[0])
            if row.networks and nets != row.networks:
                raise AssertionError(f"{row.label}: {nets} networks, {row.networks} before")
            row.networks = nets
            row.walls.append(wall)
            row.backgrounds.append(bg)
            log(f"  round {r + 1}: {row.label}: {wall:.2f} s, {nets / wall:,.0f} networks/s, background "
                f"{'?' if bg is None else f'{bg:.2f}'} cores")
    if len({r.networks for r in rows if not r.missing}) != 1:
        raise AssertionError("the configurations measured different numbers of networks")
    return rows, identical, reports, redone


# -- main ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    quick: bool
    info: str
    default_threads: int
    load_start: str
    load_end: str
    quiet_threshold: float
    quiet_waited: float
    redone: int
    tmp: str
    filesystem: str
    cases: tuple[dict, ...]
    total_chunks: int
    cfg: Config
    duckdb_version: str | None
    rows: list[Row]
    rows_identical: bool
    reports: list[float]       # seconds of report_only on the finished directory, after each 1-worker sweep
    sources: list[Source]
    elapsed: float

    @property
    def baselines(self) -> list[Row]:
        return [r for r in self.rows if r.key.startswith("verify-")]


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "small cases, one round (seconds), smoke test")
    add_quiet_options(ap, wait=60, quick_wait=5)
    ap.add_argument("--tmp", help="where to make sweep directories and stores (default: the temporary directory)")
    args = ap.parse_args(argv)
    keep_freed_memory()  # as every process that runs sweep chunks does: all configurations run alike
    cfg = QUICK if args.quick else FULL
    quiet = Quiet.from_args(args)
    tmp = os.path.realpath(args.tmp or tempfile.gettempdir())
    load_start = load_average()
    t_total = time.perf_counter()
    info = machine_info()
    default_threads = torch.get_num_threads()
    log(info)
    tables = tuple({**c, "device": "cpu"} for c in (QUICK_CASES if args.quick else CASES))
    sweep = parse_sweep({"seed": 0, "case": list(tables)})

    warm = parse_sweep({"seed": 0, "case": [{**c, "device": "cpu", "nets": 64} for c in QUICK_CASES]})
    run_verify(warm, 1)                                      # untimed: imports, kernels, the claims' code paths
    run_one_sweep(warm, "local", 1, tmp)
    rows, identical, reports, redone = throughput(sweep, cfg, quiet, tmp, default_threads)

    sources = []
    for case in (sweep.cases[0], sweep.cases[-1]):
        point = case.points[-1]
        (source, bg, again) = undisturbed(quiet, lambda: store_costs(case, point, cfg, tmp))
        redone += again
        log(f"  store, `{case.name}` {point.label}: " + ", ".join(
            f"{o.key} {o.median * 1e3:.2f} ms" for o in source.ops if not o.missing)
            + f"; compute {source.compute * 1e3:.1f} ms; background {'?' if bg is None else f'{bg:.2f}'} cores")
        sources.append(source)

    run = Run(quick=args.quick, info=info, default_threads=default_threads, load_start=load_start,
              load_end=load_average(), quiet_threshold=args.quiet, quiet_waited=quiet.waited, redone=redone, tmp=tmp,
              filesystem=_filesystem(tmp), cases=tables, total_chunks=rows[0].chunks, cfg=cfg,
              duckdb_version=None if missing("duckdb") else f"duckdb {importlib.import_module('duckdb').__version__}", rows=rows, rows_identical=identical, reports=reports,
              sources=sources, elapsed=time.perf_counter() - t_total)
    md = render(run)
    publish(args, SECTION, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
