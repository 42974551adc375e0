"""The batched engine as ``measure()`` runs it: its raw inner loop timed per phase, ``measure()``
end to end, and the raw loop at several chunk sizes."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from _timing import Quiet, minflt, sync, undisturbed
from initstats.empirical.common import chunk_generator
from initstats.empirical.ensemble import ArchEnsemble
from initstats.empirical.measure import MeasureOptions, measure, plan
from initstats.spec import Arch

__all__ = ["PHASES", "EngineTimer", "MeasureRun", "SweepPoint", "bench_measure", "engine_chunk", "sweep_chunks"]

PHASES = ("resample", "inputs", "forward", "backward")


def engine_chunk(ens: ArchEnsemble, arch: Arch, n: int, j: int, device: torch.device,
                 seed: int = 0) -> dict[str, float]:
    """One chunk of ``measure()``'s inner loop with default options, timed per phase."""
    k_total = arch.num_classes
    sync(device)
    t0 = time.perf_counter()
    g = chunk_generator(seed, (j,), device)
    ens.resample(g)
    sync(device)
    t1 = time.perf_counter()
    x = torch.empty((1, n, *arch.input_shape), device=device).normal_(generator=g).requires_grad_(True)
    labels = torch.randint(0, k_total, (1, n), generator=g, device=device)
    sync(device)
    t2 = time.perf_counter()
    out = ens(x)
    sync(device)
    t3 = time.perf_counter()
    grad, = torch.autograd.grad(out[..., 0].sum(), x, retain_graph=True)
    loss = F.cross_entropy(out.reshape(n, k_total), labels.reshape(-1), reduction="sum")
    grad_loss, = torch.autograd.grad(loss, x)
    sync(device)
    t4 = time.perf_counter()
    if not (torch.isfinite(grad).all() and torch.isfinite(grad_loss).all()):
        raise AssertionError(f"{arch.name}: non-finite input gradient")
    return {"resample": t1 - t0, "inputs": t2 - t1, "forward": t3 - t2, "backward": t4 - t3}


class EngineTimer:
    """The raw engine loop on one preallocated ensemble of ``n`` networks, timed in rounds.

    :meth:`round` times chunks; :meth:`accept` adds a round that stands to the totals (``chunks``,
    ``seconds``, ``faults``, ``phases``); ``warmup`` is the first chunk, allocation included.
    """

    def __init__(self, arch: Arch, n: int, implicit_dense: bool, device: torch.device) -> None:
        self.arch, self.n, self.device = arch, n, device
        t = time.perf_counter()
        self.ens = ArchEnsemble(arch, n, device=device, implicit_dense=implicit_dense)
        self._chunk(0)  # allocation, first touch, oneDNN primitive creation
        self.warmup = time.perf_counter() - t
        self.j = 0
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.chunks, self.seconds, self.faults = 0, 0.0, 0

    def _chunk(self, j: int) -> dict[str, float]:
        return engine_chunk(self.ens, self.arch, self.n, j, self.device)

    def round(self, min_seconds: float) -> tuple[int, float, dict]:
        """At least one chunk, and chunks until ``min_seconds`` of them: (chunks, seconds, details)."""
        chunks, total, phases = 0, 0.0, dict.fromkeys(PHASES, 0.0)
        f0 = minflt()
        while chunks < 1 or total < min_seconds:
            self.j += 1
            t = self._chunk(self.j)
            for key, v in t.items():
                phases[key] += v
            total += sum(t.values())
            chunks += 1
        return chunks, total, {"phases": phases, "faults": minflt() - f0}

    def accept(self, chunks: int, total: float, extra: dict) -> None:
        self.chunks += chunks
        self.seconds += total
        self.faults += extra["faults"]
        for key, v in extra["phases"].items():
            self.phases[key] += v

    @property
    def rate(self) -> float:
        """Samples per second over the accepted rounds."""
        return self.n * self.chunks / self.seconds

    def close(self) -> None:
        del self.ens
        gc.collect()


@dataclass(frozen=True)
class MeasureRun:
    """One timed ``measure()`` call: ``nets`` networks in ``seconds``, and its E‖∇f‖² (mean, se)."""
    seconds: float
    nets: int
    grad_sq: tuple[float, float]
    background: float | None

    @property
    def rate(self) -> float:
        return self.nets / self.seconds


def bench_measure(arch: Arch, n: int, chunks: int, quiet: Quiet, device: torch.device) -> MeasureRun:
    """``measure()`` end to end: a one-chunk warm-up call, then a timed call of ``chunks`` chunks."""
    measure(arch, MeasureOptions(nets=n, chunk=n, device=str(device), seed=1))
    gc.collect()

    def timed() -> tuple[float, tuple[float, float]]:
        t = time.perf_counter()
        m = measure(arch, MeasureOptions(nets=n * chunks, chunk=n, device=str(device), seed=2))
        wall = time.perf_counter() - t
        return wall, m.mean_se("grad_logit_l2_sq")

    (wall, grad_sq), background, _ = undisturbed(quiet, timed)
    gc.collect()
    return MeasureRun(seconds=wall, nets=n * chunks, grad_sq=grad_sq, background=background)


@dataclass(frozen=True)
class SweepPoint:
    """The raw engine loop at chunk size ``n``: ``chunks`` chunks in ``seconds``."""
    n: int
    chunks: int
    seconds: float
    faults_per_chunk: float
    background: float | None

    @property
    def rate(self) -> float:
        return self.n * self.chunks / self.seconds


def sweep_chunks(arch: Arch, sizes: list[int], chunks: int, quiet: Quiet, device: torch.device) -> list[SweepPoint]:
    """The raw engine loop at each chunk size of ``sizes``: one warm-up chunk, then ``chunks`` timed."""
    points = []
    implicit = plan(arch, MeasureOptions(device=str(device))).implicit_dense
    for n in sizes:
        timer = EngineTimer(arch, n, implicit, device)

        def timed() -> tuple[float, float]:
            f0 = minflt()
            total = 0.0
            for _ in range(chunks):
                total += timer.round(0.0)[1]  # noqa: B023 - called before the next timer is made
            return total, (minflt() - f0) / chunks

        (total, faults), background, _ = undisturbed(quiet, timed)
        timer.close()
        points.append(SweepPoint(n=n, chunks=chunks, seconds=total, faults_per_chunk=faults, background=background))
    return points

