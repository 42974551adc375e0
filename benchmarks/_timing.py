"""Timers for the benchmark scripts: wall-clock time, page faults, and how busy the machine is.

- :func:`best_seconds` times a call (best of several), queued GPU work included;
- :class:`Background` measures the CPU cores *other* processes used over an interval;
- :class:`Quiet` waits, within a budget, for a quiet machine, and :func:`undisturbed` repeats a
  measurement that other processes disturbed while waiting time is left;
- :func:`minflt` counts this process's minor page faults.

Everything is measured by the caller's run; nothing here holds a figure of its own.
"""

from __future__ import annotations

import math
import os
import resource
import time
from typing import Callable, TypeVar

import torch

__all__ = ["CPU", "Background", "Quiet", "add_quiet_options", "best_seconds", "minflt", "sync", "undisturbed"]

T = TypeVar("T")
CPU = torch.device("cpu")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock times cover it (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(run: Callable[[], object], repeats: int, device: torch.device = CPU,
                 warmup: bool = True) -> float:
    """The fastest of ``repeats`` timed calls of ``run`` (after one untimed call unless ``warmup`` is
    False), queued work on ``device`` included."""
    if warmup:
        run()
        sync(device)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def minflt() -> int:
    """Minor page faults of this process so far (``getrusage``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# -- how busy the machine is -------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _system_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (``/proc/stat``), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(v[:8]) - v[3] - v[4]) / _TICK  # all but idle and iowait (guest time is in user)


def _own_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Background:
    """CPU cores used by *other* processes over an interval (None where ``/proc/stat`` is missing):
    ``/proc/stat`` minus this process's ``getrusage``."""

    def __enter__(self) -> "Background":
        self.t, self.busy, self.own = time.perf_counter(), _system_busy_seconds(), _own_seconds()
        self.cores: float | None = None
        return self

    def __exit__(self, *exc) -> None:
        busy = _system_busy_seconds()
        wall = time.perf_counter() - self.t
        if busy is not None and self.busy is not None and wall > 0:
            self.cores = max(0.0, (busy - self.busy - (_own_seconds() - self.own)) / wall)


class Quiet:
    """Waits, within a total budget, until other processes use less than ``threshold`` cores."""

    def __init__(self, threshold: float, budget: float) -> None:
        self.threshold, self.budget, self.waited = threshold, budget, 0.0

    def wait(self) -> float | None:
        while True:
            with Background() as bg:
                time.sleep(0.5)
            self.waited += 0.5
            if bg.cores is None or bg.cores < self.threshold or self.waited >= self.budget:
                return bg.cores
            time.sleep(min(2.0, max(0.0, self.budget - self.waited)))
            self.waited += 2.0

    def ok(self, cores: float | None) -> bool:
        """Whether a round that saw ``cores`` of background may stand (or no waiting time is left)."""
        return cores is None or cores < self.threshold or self.waited >= self.budget

    @classmethod
    def from_args(cls, args) -> Quiet:
        """From the options of :func:`add_quiet_options` (``--max-wait``, else its default for the run)."""
        wait, quick_wait = args.quiet_budgets
        return cls(args.quiet, args.max_wait if args.max_wait is not None else (quick_wait if args.quick else wait))


def add_quiet_options(ap, *, wait: float, quick_wait: float) -> None:
    """``--quiet`` (the background load that counts as quiet) and ``--max-wait`` (seconds to wait in all
    for it: ``wait`` by default, ``quick_wait`` with ``--quick``); read them with :meth:`Quiet.from_args`."""
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="wait until other processes use fewer than this many cores (default 0.25)")
    ap.add_argument("--max-wait", type=float, default=None,
                    help=f"seconds to wait in all for a quiet machine (default {wait:g}, --quick {quick_wait:g})")
    ap.set_defaults(quiet_budgets=(wait, quick_wait))


def undisturbed(quiet: Quiet, run: Callable[[], T],
                on_repeat: Callable[[float | None], None] | None = None) -> tuple[T, float | None, int]:
    """``run()`` on a quiet machine: wait for one, call it under :class:`Background`, and call it
    again while other processes disturbed it and waiting time is left.

    Returns ``run``'s last result, the cores other processes used during that call, and how many
    disturbed calls were repeated (``on_repeat`` is told each one's background first).
    """
    repeated = 0
    while True:
        quiet.wait()
        with Background() as bg:
            result = run()
        if quiet.ok(bg.cores):
            return result, bg.cores, repeated
        repeated += 1
        if on_repeat is not None:
            on_repeat(bg.cores)
