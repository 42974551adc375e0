"""Where a sweep's chunks run: this machine's processes (``local``) or a Ray cluster (``ray``).

A backend takes :class:`~initstats.sweep.worker.ChunkTask` s with :meth:`submit` and hands back
finished :class:`~initstats.sweep.worker.ChunkResult` s, in whatever order they finish, from
:meth:`next_result`; the scheduler (:mod:`initstats.sweep.run`) puts them back in order.  What a
chunk computes does not depend on the backend: the same seed gives the same numbers on all.

- ``local`` with one worker runs each chunk in this process, when asked for its result; with
  ``N`` workers, in ``N`` processes started with ``spawn`` (torch does not survive ``fork``).
- ``ray`` submits each chunk as a Ray task (``num_cpus`` = the chunk's threads; one GPU instead
  when the case's device is ``cuda``, or ``auto`` on a cluster with GPUs: :func:`wants_gpu`) to
  the cluster at ``address``, or to a Ray started here with ``workers`` CPUs.  Ray is an optional dependency: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import json
from collections import deque
from functools import lru_cache
from typing import Protocol

from ..errors import SweepError
from .worker import ChunkResult, ChunkTask, run_chunk

__all__ = ["LocalBackend", "make_backend", "wants_gpu", "BACKENDS"]

BACKENDS = ("local", "ray")


class Backend(Protocol):
    slots: int

    def submit(self, task: ChunkTask) -> None: ...

    def next_result(self) -> ChunkResult: ...

    def close(self) -> None: ...


class LocalBackend:
    """Chunks in this process (``workers=1``) or in ``workers`` spawned processes.

    Examples
    --------
    >>> from initstats.sweep.cases import Case
    >>> from initstats.sweep.worker import ChunkTask
    >>> case = Case.make({"arch": "fc", "dims": [4], "width": 8, "nets": 8, "chunk": 4}, index=1)
    >>> backend = LocalBackend()
    >>> for j in (1, 0):
    ...     backend.submit(ChunkTask(recipe=case.recipe(), point=0, chunk=j, nets=4, chunk_size=4))
    >>> [backend.next_result().chunk for _ in range(2)]
    [1, 0]
    >>> backend.close()
    """

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
        future = min(done, key=lambda f: self.pending[f].key)  # of those finished, the earliest chunk
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
                    ray.init(num_cpus=workers * threads, **kwargs)  # GPUs: as Ray detects them
                else:
                    ray.init(address=address, **kwargs)
            except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError ...
                where = f"the Ray cluster at {address!r}" if address else "a local Ray"
                raise SweepError(f"cannot start {where}: {type(err).__name__}: {err}") from None
        self.pending: dict = {}
        resources = ray.cluster_resources()
        cpus, self.cluster_gpus = int(resources.get("CPU", workers)), int(resources.get("GPU", 0))
        if gpus and not self.cluster_gpus:
            self.close()
            raise SweepError("a case asks for device cuda, but the Ray cluster has no GPU; use device = \"auto\" "
                             "or \"cpu\", or a cluster with GPUs")
        self.slots = max(2, 2 * cpus // max(threads, 1), 2 * self.cluster_gpus)
        self.remote = ray.remote(num_cpus=threads, num_gpus=0, max_retries=2)(run_chunk)

    def submit(self, task: ChunkTask) -> None:
        if wants_gpu(_device(task.recipe), self.cluster_gpus):
            ref = self.remote.options(num_cpus=1, num_gpus=1).remote(task)
        else:
            ref = self.remote.remote(task)
        self.pending[ref] = task

    def next_result(self) -> ChunkResult:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        ref = ready[0]
        self.pending.pop(ref)
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:  # the chunk's own error, not Ray's wrapper
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise SweepError(f"a chunk failed on Ray: {err}") from None

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.started:
            self.ray.shutdown()
            self.started = False


def wants_gpu(device: str, cluster_gpus: int) -> bool:
    """Whether a chunk of a case with ``device`` asks Ray for a GPU: ``cuda`` always, ``auto`` when the
    cluster has GPUs (Ray hides the GPUs from a task that did not ask for one, so ``auto`` then
    runs it on a CPU).

    Examples
    --------
    >>> wants_gpu("cuda:0", 0), wants_gpu("auto", 0), wants_gpu("auto", 2), wants_gpu("cpu", 2)
    (True, False, True, False)
    """
    return device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)


@lru_cache(maxsize=64)
def _device(recipe: str) -> str:
    return str(json.loads(recipe)["keys"].get("device", "auto"))


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
