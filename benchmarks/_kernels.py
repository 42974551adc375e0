"""Kernel probes: the attainable float32 rate (a matmul), the convolution kernels of a network timed
in isolation, and the throughput of the weight sampler (``Tensor.normal_``)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from _timing import CPU, best_seconds
from initstats.spec import Arch

__all__ = ["PROBE_SIZE", "ConvBound", "ConvShape", "conv_bound", "matmul_probe", "probe_convs", "probe_sampling"]

#: the matmul probe multiplies two PROBE_SIZE x PROBE_SIZE float32 matrices
PROBE_SIZE = 2048


def matmul_probe(device: torch.device, size: int = PROBE_SIZE, repeats: int = 7) -> float:
    """Best float32 GFLOP/s of ``size x size @ size x size`` (output buffer preallocated)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    c = torch.empty(size, size, device=device)
    return 2 * size ** 3 / best_seconds(lambda: torch.mm(a, b, out=c), repeats, device) / 1e9


# -- convolution kernels ----------------------------------------------------------------------------

@dataclass
class ConvShape:
    """One distinct grouped convolution of a network, its ``stages`` of that shape, and the best
    seconds of each kernel for one of them: ``forward``, ``grad`` (input gradient, torch's backward),
    ``flipped`` (the same gradient as a flipped forward conv; inf for strided layers),
    ``channels_last`` and ``NCHW`` (forward + input gradient in that layout)."""
    c_in: int
    c_out: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    px_in: int
    px_out: int
    macs: int
    seconds: dict[str, float]
    stages: int = 1


def _time_conv(x0: torch.Tensor, w: torch.Tensor, gy0: torch.Tensor, stride: tuple[int, ...],
               pads: tuple[int, ...], dil: tuple[int, ...], n: int, repeats: int, name: str) -> dict[str, float]:
    """The kernels of one convolution (input ``x0``, ``n`` groups of weights ``w``, output cotangent
    ``gy0``; see :class:`ConvShape`), best of ``repeats`` each."""
    s_channels, c_in, k = w.shape[0] // n, w.shape[1], tuple(w.shape[2:])
    t: dict[str, float] = {}
    for layout, fmt in (("channels_last", torch.channels_last), ("NCHW", torch.contiguous_format)):
        x = x0.contiguous(memory_format=fmt).requires_grad_(True)
        gy = gy0.contiguous(memory_format=fmt)

        def fwd_grad() -> None:
            y = F.conv2d(x, w, stride=stride, padding=pads, dilation=dil, groups=n)  # noqa: B023
            torch.autograd.grad(y, x, grad_outputs=gy)  # noqa: B023
        t[layout] = best_seconds(fwd_grad, repeats)
        if layout != "channels_last":
            continue
        with torch.no_grad():
            t["forward"] = best_seconds(lambda: F.conv2d(x, w, stride=stride, padding=pads,  # noqa: B023
                                                         dilation=dil, groups=n), repeats)
        t["grad"] = max(t[layout] - t["forward"], 0.0)
        t["flipped"] = math.inf
        if all(v == 1 for v in stride):  # input gradient = conv(gy, flipped kernel, padding d(k-1) - p)
            w_t = (w.reshape(n, s_channels, c_in, *k).transpose(1, 2).flip((-2, -1))
                   .reshape(n * c_in, s_channels, *k).contiguous())
            pad_t = tuple(di * (ki - 1) - p for di, ki, p in zip(dil, k, pads))
            want, = torch.autograd.grad(F.conv2d(x, w, padding=pads, dilation=dil, groups=n), x, gy)
            got = F.conv2d(gy, w_t, padding=pad_t, dilation=dil, groups=n)
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max())), name
            with torch.no_grad():
                t["flipped"] = best_seconds(lambda: F.conv2d(gy, w_t, padding=pad_t,  # noqa: B023
                                                             dilation=dil, groups=n), repeats)
    return t


def probe_convs(arch: Arch, n: int, repeats: int) -> list[ConvShape]:
    """Each distinct conv of ``arch`` with ``n`` groups and batch 1 on the CPU, best of ``repeats``,
    input in channels_last (as ArchEnsemble runs it): the forward ``F.conv2d``, the input gradient
    through torch's backward kernels (autograd, as the engine computes it), and, for stride-1
    layers, the same input gradient as a forward convolution with the flipped, transposed kernel
    (an alternative kernel for the same linear map); plus forward + input gradient in contiguous
    NCHW.  Shapes in order of first appearance, each with the number of its stages."""
    shapes: dict[tuple, ConvShape] = {}
    for s in arch.stages[1:]:
        if not s.is_conv:
            continue
        src = arch.stages[s.sources[0]]
        k, stride, dil, pads = s.kernel, s.stride, s.dilation, s.pad
        key = (src.shape, s.shape, k, stride, dil, pads)
        if key in shapes:
            shapes[key].stages += 1
            continue
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn((1, n * src.channels, *src.spatial), generator=g)
        w = torch.randn((n * s.channels, src.channels, *k), generator=g)
        gy0 = torch.randn((1, n * s.channels, *s.spatial), generator=g)
        seconds = _time_conv(x0, w, gy0, stride, pads, dil, n, repeats, s.name)
        shapes[key] = ConvShape(c_in=src.channels, c_out=s.channels, kernel=k, stride=stride, dilation=dil,
                                px_in=src.spatial[0], px_out=s.spatial[0], macs=s.size * s.fan_in * n,
                                seconds=seconds)
    return list(shapes.values())


@dataclass(frozen=True)
class ConvBound:
    """Seconds per chunk of ``n`` that the convolution kernels alone take for a forward and two
    input-gradient passes: with torch's backward kernels (``engine``, what the engine runs), and
    with the faster of those and the flipped forward convolution per shape (``best``)."""
    n: int
    engine: float
    best: float

    @property
    def rate(self) -> float:
        return self.n / self.engine

    @property
    def best_rate(self) -> float:
        return self.n / self.best


def conv_bound(shapes: list[ConvShape], n: int) -> ConvBound:
    """The bound the convolution kernels of ``shapes`` (timed with ``n`` groups) put on a chunk."""
    engine = sum(c.stages * (c.seconds["forward"] + 2 * c.seconds["grad"]) for c in shapes)
    best = sum(c.stages * (c.seconds["forward"] + 2 * min(c.seconds["grad"], c.seconds["flipped"])) for c in shapes)
    return ConvBound(n=n, engine=engine, best=best)


# -- the weight sampler -----------------------------------------------------------------------------

def probe_sampling(numel: int, repeats: int = 3) -> dict:
    """``Tensor.normal_`` throughput (G floats/s) of ``numel`` floats: into a reused buffer
    (``reused``), into a fresh tensor (``fresh``), and the reused buffer split into one part per
    torch thread, each filled from its own generator in its own Python thread (``split``)."""
    g = torch.Generator().manual_seed(0)
    buf = torch.empty(numel)
    buf.normal_(generator=g)

    def best(fn) -> float:
        return numel / best_seconds(fn, repeats, CPU, warmup=False) / 1e9

    reused = best(lambda: buf.normal_(generator=g))
    fresh = best(lambda: torch.empty(numel).normal_(generator=g))
    threads = torch.get_num_threads()
    parts = buf.chunk(threads)
    gens = [torch.Generator().manual_seed(i) for i in range(threads)]

    def split() -> None:
        ts = [threading.Thread(target=p.normal_, kwargs={"generator": q}) for p, q in zip(parts, gens)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    return {"reused": reused, "fresh": fresh, "split": best(split), "threads": threads, "numel": numel}
