"""Where a sweep's chunks run: this machine's processes (``local``) or a Ray cluster (``ray``).

A backend takes :class:`~initstats.sweep.worker.ChunkTask` s with :meth:`submit` and hands back
finished :class:`~initstats.sweep.worker.ChunkResult` s, in whatever order they finish, from
:meth:`next_result`; the scheduler (:mod:`initstats.sweep.run`) puts them back in order.  What a
chunk computes does not depend on the backend: the same seed gives the same numbers on all.

- ``local`` with one worker runs each chunk in this process, when asked for its result; with
  ``N`` workers, in ``N`` processes started with ``spawn`` (torch does not survive ``fork``).
- ``ray`` submits each chunk as a Ray task (``num_cpus`` = the chunk's threads, and one GPU when
  the case's device is CUDA) to the cluster at ``address``, or to a Ray started here with
  ``workers`` CPUs.  Ray is an optional dependency: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ..errors import SweepError
from .worker import ChunkResult, ChunkTask, run_chunk

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend", "BACKENDS"]

BACKENDS = ("local", "ray")


class Backend(Protocol):
    slots: int

    def submit(self, task: ChunkTask) -> None: ...

    def next_result(self) -> ChunkResult: ...

    def close(self) -> None: ...


class LocalBackend:
    """Chunks in this process (``workers=1``) or in ``workers`` spawned processes."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.slots = 2 * workers  # tasks in flight: each worker has the next one queued
        self.queue: deque[ChunkTask] = deque()
        self.pool = None
        self.pending: dict = {}
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: ChunkTask) -> None:
        if self.pool is None:
            self.queue.append(task)
        else:
            self.pending[self.pool.submit(run_chunk, task)] = task

    def next_result(self) -> ChunkResult:
        if self.pool is None:
            return run_chunk(self.queue.popleft())
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
        future = min(done, key=lambda f: self.pending[f].key)  # the same order whatever finished first
        self.pending.pop(future)
        return future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class RayBackend:
    """Chunks as Ray tasks on the cluster at ``address`` (None: a local Ray with ``workers`` CPUs)."""

    def __init__(self, workers: int = 1, address: str | None = None, gpus: bool = False, threads: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise SweepError("--backend ray needs Ray: pip install -e \".[ray]\" (or pip install 'ray>=2.9')") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                if address is None:
                    ray.init(num_cpus=workers * threads, num_gpus=None if gpus else 0, **kwargs)
                else:
                    ray.init(address=address, **kwargs)
            except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError ...
                where = f"the Ray cluster at {address!r}" if address else "a local Ray"
                raise SweepError(f"cannot start {where}: {type(err).__name__}: {err}") from None
        cpus = int(ray.cluster_resources().get("CPU", workers))
        self.slots = max(2, 2 * cpus // max(threads, 1))
        self.remote = ray.remote(num_cpus=threads, num_gpus=1 if gpus else 0, max_retries=2)(run_chunk)
        self.pending: dict = {}

    def submit(self, task: ChunkTask) -> None:
        self.pending[self.remote.remote(task)] = task

    def next_result(self) -> ChunkResult:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        ref = ready[0]
        self.pending.pop(ref)
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:
            raise err.as_instanceof_cause() from None

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.started:
            self.ray.shutdown()
            self.started = False


def make_backend(name: str, *, workers: int = 1, address: str | None = None, gpus: bool = False,
                 threads: int = 1) -> Backend:
    """The backend ``name`` (``local`` or ``ray``) with ``workers`` workers.

    Examples
    --------
    >>> make_backend("local").slots
    2
    >>> make_backend("mpi")
    Traceback (most recent call last):
    ...
    initstats.errors.OptionError: --backend 'mpi' is unknown; expected local or ray
    """
    from ..errors import OptionError

    if name not in BACKENDS:
        raise OptionError(f"--backend {name!r} is unknown; expected {' or '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"--workers {workers!r} is invalid; expected a positive integer")
    if address is not None and name != "ray":
        raise OptionError("--ray-address is for --backend ray")
    if name == "ray":
        return RayBackend(workers, address, gpus=gpus, threads=threads)
    return LocalBackend(workers)
