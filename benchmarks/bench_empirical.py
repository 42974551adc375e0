"""Benchmark of the batched Monte Carlo engine (:mod:`initstats.empirical`).

Usage::

    python benchmarks/bench_empirical.py            # full measurement (a few minutes), writes docs/benchmarks.md
    python benchmarks/bench_empirical.py --quick    # small chunks (< 1 min), smoke test only

One *sample* is one network drawn fresh (new He weights) and evaluated on one input
``x ~ N(0, I)`` with the input gradients of one logit and of the cross-entropy loss (a forward
and two backward passes): what :func:`initstats.empirical.measure.measure` does per network with
its default options (``inputs_per_net=1``, ``logits=1``).  For ``make_arch("fc", px)`` and
``make_arch("cnn", px)`` at 32 and 128 px, in one run:

1. the batched engine: :class:`~initstats.empirical.ensemble.ArchEnsemble` with ``n`` networks
   (``n`` chosen as ``measure()`` chooses it, ``plan``, unless its weights would not fit
   ``--max-weight-gib``), timed as the raw inner loop of ``measure()`` (``resample``, input draw,
   forward, two ``torch.autograd.grad`` calls) per phase, and end to end as
   ``measure(arch, MeasureOptions(nets=..., device="cpu"))``;
2. the naive baseline: a Python loop over networks, each a fresh ``torch.nn.Sequential`` of
   ``nn.Conv2d``/``nn.Linear``/``nn.ReLU`` built for that one network (``kaiming_normal_``, no
   bias, zero padding through ``nn.Conv2d(padding=...)``), one input, the same two gradients.
   Its architecture is checked once per case: with the weights of a 1-network ``ArchEnsemble``
   copied in, the logits must agree to float32 tolerance;
3. the attainable float32 rate: a 2048x2048 @ 2048x2048 matmul probe (best of several) before
   every case and at the end, against the engine's achieved rate from an analytic FLOP count
   (see :func:`flops_per_sample`).

Engine and naive loop are timed in alternating rounds, so that both see the same machine.  The
machine may be shared: before each round the script waits (up to ``--max-wait`` seconds in all)
until other processes use less than ``--quiet`` cores, measures the other processes' CPU use
during every round (``/proc/stat`` minus this process's ``getrusage``), repeats a round that was
disturbed while waiting time is left, and reports what it saw.

Requirement (from the issue): >= 4x the naive loop; target: >= 50 % of the attainable rate.
Also reported: the share of weight sampling (``resample``, ``Tensor.normal_``) in the chunk
time, minor page faults, a chunk-size sweep for the cnn, and the convolution kernels of the cnn
at 128 px timed in isolation: the engine's forward and input-gradient kernels (the bound they put
on the engine's rate) against plain ``F.conv2d`` autograd in channels_last and contiguous NCHW.
Like ``measure()``, the script first calls ``keep_freed_memory()`` (glibc keeps freed memory, so
fresh activations do not page-fault in every chunk); the naive loop runs in the same process.

The full run writes the section ``empirical`` of ``docs/benchmarks.md``; ``--quick`` writes
nothing unless ``--doc PATH`` is given (its numbers are not the measurement).  The exit status is
1 when the requirement fails for some case in a full run (the 50 % target does not count), else 0.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import benchmark_parser, load_average, machine_info, markdown_table, update_section  # noqa: E402

from initstats.empirical.common import (  # noqa: E402
    chunk_generator,
    keep_freed_memory,
    resolve_device,
    strict_numerics,
)
from initstats.empirical.ensemble import ArchEnsemble, _geometry  # noqa: E402
from initstats.empirical.measure import MeasureOptions, measure, plan  # noqa: E402
from initstats.errors import InitStatsError  # noqa: E402
from initstats.families import make_arch  # noqa: E402
from initstats.spec import Arch  # noqa: E402

SECTION = "empirical"
SPEEDUP_REQUIRED = 4.0     # requirement: >= 4x the naive per-network loop
ATTAINABLE_TARGET = 0.5    # target (not a requirement): >= 50 % of the matmul probe
CASES = (("fc", 32), ("fc", 128), ("cnn", 32), ("cnn", 128))
CPU = torch.device("cpu")
#: where the engine, the naive loop, measure() and the matmul probe run (``--device``)
DEV = CPU


def sync() -> None:
    """Wait for queued GPU work, so that wall-clock times cover it (nothing to wait for on a CPU)."""
    if DEV.type == "cuda":
        torch.cuda.synchronize(DEV)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- FLOP and memory accounting --------------------------------------------------------------------

def forward_macs(arch: Arch) -> int:
    """Multiply-accumulates of one forward pass of one network, as a dense implementation computes
    them: ``fan_in`` per output neuron of every conv/dense stage (zero-padded taps included)."""
    return sum(s.size * s.fan_in for s in arch.stages if s.op in ("conv", "dense"))


def flops_per_sample(arch: Arch) -> int:
    """FLOPs of one sample: 2 per MAC, for the forward pass and for two backward passes.

    The weights do not require gradients, so each backward pass computes only the data gradient
    (down to ``x``), which costs the forward MACs again: 2 * 3 * forward MACs.  ReLU, softmax,
    reductions and random number generation are not counted.
    """
    return 2 * 3 * forward_macs(arch)


def weights_per_net(arch: Arch) -> int:
    return sum(s.channels * s.fan_in for s in arch.stages if s.op in ("conv", "dense"))


def largest_activation(arch: Arch) -> int:
    return max(s.size for s in arch.stages)


def minflt() -> int:
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
    """CPU cores used by *other* processes over an interval (None where ``/proc/stat`` is missing)."""

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


def best_seconds(run, repeats: int, warmup: bool = True) -> float:
    """The fastest of ``repeats`` timed calls of ``run`` (after one untimed call unless ``warmup`` is
    False), queued GPU work included."""
    if warmup:
        run()
        sync()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


# -- the attainable rate ------------------------------------------------------------------------------

def matmul_probe(size: int = 2048, repeats: int = 7) -> float:
    """Best float32 GFLOP/s of ``size x size @ size x size`` (output buffer preallocated)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(DEV)
    b = torch.randn(size, size, generator=g).to(DEV)
    c = torch.empty(size, size, device=DEV)
    return 2 * size ** 3 / best_seconds(lambda: torch.mm(a, b, out=c), repeats) / 1e9


# -- 1. the batched engine (measure()'s inner loop) -----------------------------------------------------

PHASES = ("resample", "inputs", "forward", "backward")


def engine_chunk(ens: ArchEnsemble, arch: Arch, n: int, j: int, seed: int = 0) -> dict[str, float]:
    """One chunk of ``measure()``'s inner loop with default options, timed per phase."""
    k_total = arch.num_classes
    sync()
    t0 = time.perf_counter()
    g = chunk_generator(seed, (j,), DEV)
    ens.resample(g)
    sync()
    t1 = time.perf_counter()
    x = torch.empty((1, n, *arch.input_shape), device=DEV).normal_(generator=g).requires_grad_(True)
    labels = torch.randint(0, k_total, (1, n), generator=g, device=DEV)
    sync()
    t2 = time.perf_counter()
    out = ens(x)
    sync()
    t3 = time.perf_counter()
    grad, = torch.autograd.grad(out[..., 0].sum(), x, retain_graph=True)
    loss = F.cross_entropy(out.reshape(n, k_total), labels.reshape(-1), reduction="sum")
    grad_loss, = torch.autograd.grad(loss, x)
    sync()
    t4 = time.perf_counter()
    if not (torch.isfinite(grad).all() and torch.isfinite(grad_loss).all()):
        raise AssertionError(f"{arch.name}: non-finite input gradient")
    return {"resample": t1 - t0, "inputs": t2 - t1, "forward": t3 - t2, "backward": t4 - t3}


class EngineTimer:
    """The raw engine loop on one preallocated ensemble, timed in rounds."""

    def __init__(self, arch: Arch, n: int, implicit_dense: bool) -> None:
        self.arch, self.n = arch, n
        t = time.perf_counter()
        self.ens = ArchEnsemble(arch, n, device=DEV, implicit_dense=implicit_dense)
        engine_chunk(self.ens, arch, n, 0)  # allocation, first touch, oneDNN primitive creation
        self.warmup = time.perf_counter() - t
        self.j = 0
        self.phases = dict.fromkeys(PHASES, 0.0)
        self.chunks, self.seconds, self.faults = 0, 0.0, 0

    def round(self, min_seconds: float) -> tuple[int, float, dict]:
        chunks, total, phases = 0, 0.0, dict.fromkeys(PHASES, 0.0)
        f0 = minflt()
        while chunks < 1 or total < min_seconds:
            self.j += 1
            t = engine_chunk(self.ens, self.arch, self.n, self.j)
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

    def close(self) -> None:
        del self.ens
        gc.collect()


def bench_measure(arch: Arch, n: int, chunks: int, quiet: Quiet) -> dict:
    """``measure()`` end to end: a one-chunk warm-up call, then a timed call of ``chunks`` chunks."""
    measure(arch, MeasureOptions(nets=n, chunk=n, device=str(DEV), seed=1))
    gc.collect()
    while True:
        quiet.wait()
        with Background() as bg:
            t = time.perf_counter()
            m = measure(arch, MeasureOptions(nets=n * chunks, chunk=n, device=str(DEV), seed=2))
            wall = time.perf_counter() - t
        mean, se = m.mean_se("grad_logit_l2_sq")
        del m
        gc.collect()
        if quiet.ok(bg.cores):
            break
    return {"seconds": wall, "rate": n * chunks / wall, "nets": n * chunks, "grad_sq": (mean, se),
            "background": bg.cores}


# -- 2. the naive baseline -------------------------------------------------------------------------------

def naive_layers(arch: Arch, device: torch.device = CPU) -> list[tuple[nn.Module, int]]:
    """Real torch layers for one network of ``arch`` (uninitialised, on ``device``), with the stage
    index of each weight layer (-1 for the others).  Covers the stages ``fc`` and ``cnn`` with zero
    padding use."""
    modules: list[tuple[nn.Module, int]] = []
    flat = False
    for s in arch.stages[1:]:
        src = arch.stages[s.sources[0]]
        if s.op == "conv":
            layer = s.layer
            if layer.padding != "zero" or len(s.axes) != 2:  # type: ignore[attr-defined]
                raise ValueError("the naive baseline covers 2-D zero-padded convolutions only")
            k, stride, dil, pads = _geometry(layer, 2)  # type: ignore[arg-type]
            mod: nn.Module = torch.nn.utils.skip_init(nn.Conv2d, src.channels, s.channels, k, stride=stride,
                                                      padding=pads, dilation=dil, bias=False, device=device)
        elif s.op == "dense":
            if not flat:
                modules.append((nn.Flatten(), -1))
                flat = True
            mod = torch.nn.utils.skip_init(nn.Linear, src.size, s.channels, bias=False, device=device)
        else:
            raise ValueError(f"the naive baseline does not cover {s.op} stages")
        mod.weight.requires_grad_(False)
        modules.append((mod, s.index))
        if s.kind == "relu":
            modules.append((nn.ReLU(), -1))
        elif s.kind != "linear":
            raise ValueError(f"the naive baseline does not cover {s.kind} stages")
    return modules


def naive_net(arch: Arch, g: torch.Generator) -> nn.Sequential:
    """A fresh network with He weights (``kaiming_normal_``, fan-in: variance 2/fan_in), for one sample."""
    modules = naive_layers(arch, DEV)
    for mod, idx in modules:
        if idx >= 0:
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu", generator=g)
    return nn.Sequential(*(m for m, _ in modules))


def naive_sample(arch: Arch, g: torch.Generator) -> tuple[float, float]:
    """One sample of the naive loop; returns (seconds building the network, seconds computing)."""
    sync()
    t0 = time.perf_counter()
    net = naive_net(arch, g)
    sync()
    t1 = time.perf_counter()
    x = torch.randn((1, *arch.input_shape), generator=g, device=DEV).requires_grad_(True)
    label = torch.randint(0, arch.num_classes, (1,), generator=g, device=DEV)
    out = net(x)
    grad, = torch.autograd.grad(out[:, 0].sum(), x, retain_graph=True)
    grad_loss, = torch.autograd.grad(F.cross_entropy(out, label, reduction="sum"), x)
    sync()
    t2 = time.perf_counter()
    if not (torch.isfinite(grad).all() and torch.isfinite(grad_loss).all()):
        raise AssertionError(f"{arch.name}: non-finite input gradient in the naive loop")
    return t1 - t0, t2 - t1


def check_naive_matches(arch: Arch) -> float:
    """Copy the weights of a 1-network ArchEnsemble into the naive net; the logits must agree."""
    ens = ArchEnsemble(arch, 1)
    ens.resample(torch.Generator().manual_seed(123))
    modules = naive_layers(arch)
    with torch.no_grad():
        for mod, idx in modules:
            if idx >= 0:
                w = ens.weights[idx]
                mod.weight.copy_(w[0].t() if isinstance(mod, nn.Linear) else w)
    net = nn.Sequential(*(m for m, _ in modules))
    x = torch.randn((1, *arch.input_shape), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = ens(x.unsqueeze(1))[0, 0]
        got = net(x)[0]
    scale = float(ref.abs().max())
    err = float((ref - got).abs().max()) / max(scale, 1e-30)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * scale), (
        f"{arch.name} {arch.px} px: the naive network's logits differ from ArchEnsemble's "
        f"(max relative error {err:.2e})")
    return err


class NaiveTimer:
    def __init__(self, arch: Arch, warm: int, min_nets: int) -> None:
        self.arch, self.min_nets = arch, min_nets
        self.g = torch.Generator(device=DEV).manual_seed(3)
        for _ in range(warm):
            naive_sample(arch, self.g)
        self.nets, self.seconds, self.init = 0, 0.0, 0.0

    def round(self, min_seconds: float) -> tuple[int, float, float]:
        nets, t_init, t_comp = 0, 0.0, 0.0
        while nets < self.min_nets or t_init + t_comp < min_seconds:
            a, b = naive_sample(self.arch, self.g)
            t_init += a
            t_comp += b
            nets += 1
        return nets, t_init + t_comp, t_init

    def accept(self, nets: int, total: float, init: float) -> None:
        self.nets += nets
        self.seconds += total
        self.init += init


# -- optional: chunk sizes, convolution kernels, the weight sampler ----------------------------------------------------

def bench_chunk_sweep(arch: Arch, sizes: list[int], chunks: int, quiet: Quiet) -> list[dict]:
    rows = []
    for n in sizes:
        timer = EngineTimer(arch, n, plan(arch, MeasureOptions(device=str(DEV))).implicit_dense)
        while True:
            quiet.wait()
            with Background() as bg:
                f0 = minflt()
                total = 0.0
                for _ in range(chunks):
                    total += timer.round(0.0)[1]
                faults = (minflt() - f0) / chunks
            if quiet.ok(bg.cores):
                break
        timer.close()
        rows.append({"case": f"`{arch.name}` {arch.px} px", "chunk n": n,
                     "largest activation": f"{n * largest_activation(arch) * 4 / 2**20:,.1f} MiB",
                     "samples/s": n * chunks / total, "vs naive": None, "minor page faults/chunk": round(faults),
                     "page faults/sample": round(faults / n),
                     "background (cores)": None if bg.cores is None else round(bg.cores, 2)})
    return rows


def bench_convs(arch: Arch, n: int, repeats: int) -> list[dict]:
    """Each distinct conv of ``arch`` with ``n`` groups and batch 1, best of ``repeats``, input in
    channels_last (as ArchEnsemble runs it): the forward ``F.conv2d``, the input gradient through
    torch's backward kernels (autograd, as the engine computes it), and, for stride-1 layers, the
    same input gradient as a forward convolution with the flipped, transposed kernel (an
    alternative kernel for the same linear map); plus forward + input gradient in contiguous NCHW.
    The ``_t`` entry of each row holds the seconds of each kernel for one stage of that shape."""
    rows = []
    seen: dict[tuple, dict] = {}

    for s in arch.stages[1:]:
        if s.op != "conv":
            continue
        src = arch.stages[s.sources[0]]
        k, stride, dil, pads = _geometry(s.layer, 2)  # type: ignore[arg-type]
        key = (src.shape, s.shape, k, stride, dil, pads)
        if key in seen:
            seen[key]["stages"] += 1
            continue
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn((1, n * src.channels, *src.spatial), generator=g)
        w = torch.randn((n * s.channels, src.channels, *k), generator=g)
        gy0 = torch.randn((1, n * s.channels, *s.spatial), generator=g)
        t: dict[str, float] = {}
        for name, fmt in (("channels_last", torch.channels_last), ("NCHW", torch.contiguous_format)):
            x = x0.contiguous(memory_format=fmt).requires_grad_(True)
            gy = gy0.contiguous(memory_format=fmt)

            def fwd_grad() -> None:
                y = F.conv2d(x, w, stride=stride, padding=pads, dilation=dil, groups=n)  # noqa: B023
                torch.autograd.grad(y, x, grad_outputs=gy)  # noqa: B023
            t[name] = best_seconds(fwd_grad, repeats)
            if name == "channels_last":
                with torch.no_grad():
                    t["forward"] = best_seconds(lambda: F.conv2d(x, w, stride=stride, padding=pads,  # noqa: B023
                                                                 dilation=dil, groups=n), repeats)
                t["grad"] = max(t[name] - t["forward"], 0.0)
                t["flipped"] = math.inf
                if all(v == 1 for v in stride):  # input gradient = conv(gy, flipped kernel, padding d(k-1) - p)
                    w_t = (w.reshape(n, s.channels, src.channels, *k).transpose(1, 2).flip((-2, -1))
                           .reshape(n * src.channels, s.channels, *k).contiguous())
                    pad_t = tuple(di * (ki - 1) - p for di, ki, p in zip(dil, k, pads))
                    want, = torch.autograd.grad(F.conv2d(x, w, padding=pads, dilation=dil, groups=n), x, gy)
                    got = F.conv2d(gy, w_t, padding=pad_t, dilation=dil, groups=n)
                    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max())), s.name
                    with torch.no_grad():
                        t["flipped"] = best_seconds(lambda: F.conv2d(gy, w_t, padding=pad_t,  # noqa: B023
                                                                     dilation=dil, groups=n), repeats)
        macs = s.size * s.fan_in * n
        row = {"conv": f"{src.channels}->{s.channels} ch, {k[0]}x{k[1]}, stride {stride[0]}, dilation {dil[0]}, "
                       f"{src.spatial[0]}->{s.spatial[0]} px",
               "stages": 1,
               "forward": _fmt_s(t["forward"]),
               "input gradient (torch backward)": _fmt_s(t["grad"]),
               "input gradient (flipped forward conv)": _fmt_s(t["flipped"]) if t["flipped"] < math.inf else "–",
               "forward GFLOP/s": 2 * macs / t["forward"] / 1e9,
               "forward + gradient GFLOP/s": 4 * macs / t["channels_last"] / 1e9,
               "forward + gradient, NCHW": _fmt_s(t["NCHW"]),
               "NCHW / channels_last": f"{t['NCHW'] / t['channels_last']:.2f}",
               "_t": t}
        seen[key] = row
        rows.append(row)
    return rows


def conv_floor(rows: list[dict]) -> tuple[float, float]:
    """Seconds per chunk that the convolution kernels alone take for a forward and two input-gradient
    passes (each distinct shape timed in isolation, times its stages): with torch's backward kernels
    (what the engine runs), and with the faster of those and the flipped forward convolution per shape."""
    engine = sum(r["stages"] * (r["_t"]["forward"] + 2 * r["_t"]["grad"]) for r in rows)
    best = sum(r["stages"] * (r["_t"]["forward"] + 2 * min(r["_t"]["grad"], r["_t"]["flipped"])) for r in rows)
    return engine, best


def bench_sampling(numel: int, repeats: int = 3) -> dict:
    """``Tensor.normal_`` throughput (G floats/s): into a reused buffer, into a fresh tensor, and the
    reused buffer split into one part per torch thread, each filled from its own generator in its
    own Python thread."""
    g = torch.Generator().manual_seed(0)
    buf = torch.empty(numel)
    buf.normal_(generator=g)

    def best(fn) -> float:
        return numel / best_seconds(fn, repeats, warmup=False) / 1e9

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


# -- report ------------------------------------------------------------------------------------------------

def _fmt_s(t: float) -> str:
    if t >= 100:
        return f"{t:,.0f} s"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def _status(ok: bool | None) -> str:
    return "not assessed (--quick sizes)" if ok is None else ("**PASS**" if ok else "**FAIL**")


def _cores(c: float | None) -> str:
    return "?" if c is None else f"{c:.2f}"


def run_case(name: str, px: int, cfg: dict, quiet: Quiet, max_weight_bytes: float) -> dict:
    arch = make_arch(name, px)
    chosen = plan(arch, MeasureOptions(device=str(DEV)))
    n_default, implicit = chosen.chunk, chosen.implicit_dense
    wbytes = ArchEnsemble(arch, 1, implicit_dense=implicit).num_parameters * 4
    n, note = n_default, ""
    if cfg["cap"] is not None and n > cfg["cap"]:
        n, note = cfg["cap"], f"--quick: capped from {n_default}"
    if n * wbytes > max_weight_bytes:
        n = max(1, int(max_weight_bytes // wbytes))
        note = (f"capped from {n_default}, whose weights take {n_default * wbytes / 2**30:.1f} GiB "
                f"(--max-weight-gib {max_weight_bytes / 2**30:g})")
    err = check_naive_matches(arch)
    probe = matmul_probe(repeats=cfg["probe_repeats"])
    log(f"{name} {px} px: matmul probe {probe:.0f} GFLOP/s; default chunk {n_default}, using {n} "
        f"({n * wbytes / 2**30:.2f} GiB of weights); naive logits agree (max rel. err. {err:.1e})")

    eng = EngineTimer(arch, n, implicit)
    nai = NaiveTimer(arch, cfg["naive_warm"], cfg["naive_min_nets"])
    ratios, backgrounds, redone = [], [], 0
    for r in range(cfg["rounds"]):
        while True:
            quiet.wait()
            with Background() as bg:
                e = eng.round(cfg["round_seconds"])
                v = nai.round(cfg["round_seconds"])
            if quiet.ok(bg.cores):
                break
            redone += 1
            log(f"  round {r + 1}: other processes used {bg.cores:.2f} cores; repeating it")
        eng.accept(*e)
        nai.accept(*v)
        backgrounds.append(bg.cores)
        e_rate, n_rate = n * e[0] / e[1], v[0] / v[1]
        ratios.append(e_rate / n_rate)
        log(f"  round {r + 1}: engine {e_rate:.1f} samples/s ({e[0]} chunks), naive {n_rate:.1f} samples/s "
            f"({v[0]} nets), ratio {e_rate / n_rate:.2f}, background {_cores(bg.cores)} cores")
    eng.close()
    meas = bench_measure(arch, n, cfg["measure_chunks"], quiet)
    log(f"  measure(): {meas['rate']:.1f} samples/s ({meas['nets']} nets, {meas['seconds']:.2f} s); "
        f"E||grad f||^2 = {meas['grad_sq'][0]:.3f} +- {meas['grad_sq'][1]:.3f}")
    known = [b for b in backgrounds + [meas["background"]] if b is not None]
    return {"name": name, "px": px, "arch": arch, "n_default": n_default, "n": n, "note": note, "implicit": implicit,
            "wbytes": wbytes, "check_err": err, "probe": probe, "engine": eng, "naive": nai,
            "measure": meas, "ratios": ratios, "redone": redone,
            "background": max(known) if known else None}


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "small chunks and few repetitions (< 1 min), smoke test")
    ap.add_argument("--max-weight-gib", type=float, default=4.0,
                    help="cap the chunk when its weights would exceed this many GiB (default 4; the table "
                         "says when it did)")
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="wait until other processes use fewer than this many cores (default 0.25)")
    ap.add_argument("--max-wait", type=float, default=None,
                    help="seconds to wait in all for a quiet machine (default 150, --quick 5)")
    ap.add_argument("--device", default="cpu",
                    help="cpu (default; section 'empirical') or cuda[:i] (section 'empirical-cuda'; the "
                         "CPU-specific tables are left out)")
    args = ap.parse_args(argv)
    global DEV
    try:
        DEV = resolve_device(args.device)
    except InitStatsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with strict_numerics(DEV):  # what measure() runs under; the naive loop too, so both do the same arithmetic
        return _run(args)


def _run(args) -> int:
    quick = args.quick
    cpu = DEV.type == "cpu"
    section = SECTION if cpu else f"{SECTION}-cuda"
    if quick:
        cfg = dict(cap=16, rounds=1, round_seconds=0.3, measure_chunks=1, naive_warm=1, naive_min_nets=3,
                   probe_repeats=3)
        sweep = {"cnn": {32: [16, 64], 128: [8, 16]}}
        layout_n, layout_repeats, sweep_chunks = 8, 1, 1
    else:
        cfg = dict(cap=None, rounds=3, round_seconds=2.0, measure_chunks=2, naive_warm=3, naive_min_nets=10,
                   probe_repeats=7)
        sweep = {"cnn": {32: [16, 64, 256], 128: [8, 16, 32, 72]}}
        layout_n, layout_repeats, sweep_chunks = None, 5, 3
    quiet = Quiet(args.quiet, args.max_wait if args.max_wait is not None else (5.0 if quick else 150.0))

    malloc_kept = cpu and keep_freed_memory()  # as measure() does on a CPU; the naive loop runs here too
    load_start = load_average()
    t_total = time.perf_counter()
    info = machine_info()
    if not cpu:
        info += f"; GPU: {torch.cuda.get_device_name(DEV)} (torch {torch.version.cuda and 'CUDA ' + torch.version.cuda})"
    log(info)
    threads = torch.get_num_threads()

    results = [run_case(name, px, cfg, quiet, args.max_weight_gib * 2**30) for name, px in CASES]

    quiet.wait()
    probe_end = matmul_probe(repeats=cfg["probe_repeats"])
    probes = [r["probe"] for r in results] + [probe_end]
    attainable = max(probes)
    log(f"matmul probe at the end: {probe_end:.0f} GFLOP/s; attainable (best probe) {attainable:.0f} GFLOP/s")

    cnn128 = next(r for r in results if r["name"] == "cnn" and r["px"] == 128)
    fc32 = next(r for r in results if r["name"] == "fc" and r["px"] == 32)
    sweep_rows: list[dict] = []
    if cpu:  # page faults, oneDNN kernels and normal_ threads: CPU matters only
        for name, by_px in sweep.items():
            for px, sizes in by_px.items():
                case = next(r for r in results if r["name"] == name and r["px"] == px)
                naive_rate = case["naive"].nets / case["naive"].seconds
                new_rows = bench_chunk_sweep(make_arch(name, px), sizes, sweep_chunks, quiet)
                for row in new_rows:
                    default = " (measure()'s default)" if row["chunk n"] == case["n_default"] else ""
                    row["chunk n"] = f"{row['chunk n']}{default}"
                    row["vs naive"] = f"{row['samples/s'] / naive_rate:.2f}x"
                sweep_rows += new_rows
                for row in sweep_rows[-len(sizes):]:
                    log(f"  sweep {row['case']} n={row['chunk n']}: {row['samples/s']:.1f} samples/s, "
                        f"{row['minor page faults/chunk']} faults/chunk")
        while True:
            quiet.wait()
            with Background() as bg_layout:
                conv_rows = bench_convs(cnn128["arch"], layout_n or cnn128["n"], layout_repeats)
            if quiet.ok(bg_layout.cores):
                break
        floor, floor_best = conv_floor(conv_rows)
        n_conv = layout_n or cnn128["n"]
        naive128 = cnn128["naive"].nets / cnn128["naive"].seconds
        floor_rate, floor_best_rate = n_conv / floor, n_conv / floor_best
        floor_ratio, floor_best_ratio = floor_rate / naive128, floor_best_rate / naive128
        for row in conv_rows:
            del row["_t"]
        log(f"  convolution kernels alone: {_fmt_s(floor)} per chunk, at most {floor_rate:.0f} samples/s "
            f"= {floor_ratio:.2f}x the naive loop (best kernel per shape: {floor_best_ratio:.2f}x)")
        while True:
            quiet.wait()
            with Background() as bg_samp:
                samp = bench_sampling(fc32["n"] * weights_per_net(fc32["arch"]) if not quick else 2 * 10**7)
            if quiet.ok(bg_samp.cores):
                break
        log(f"normal_: {samp['reused']:.3f} G floats/s reused buffer, {samp['fresh']:.3f} fresh tensor, "
            f"{samp['split']:.3f} split over {samp['threads']} threads")
    elapsed = time.perf_counter() - t_total
    load_end = load_average()

    rows, req_rows, detail_rows = [], [], []
    disturbed: list[str] = []
    all_ok = True
    for r in results:
        eng, nai, meas, arch = r["engine"], r["naive"], r["measure"], r["arch"]
        e_rate = r["n"] * eng.chunks / eng.seconds
        n_rate = nai.nets / nai.seconds
        fl = flops_per_sample(arch)
        gflops = e_rate * fl / 1e9
        frac = gflops / attainable
        speedup, speedup_m = e_rate / n_rate, meas["rate"] / n_rate
        ok = speedup >= SPEEDUP_REQUIRED and speedup_m >= SPEEDUP_REQUIRED
        all_ok &= ok
        label = f"`{r['name']}` {r['px']} px"
        status = _status(None if quick else ok)
        if r["background"] is not None and r["background"] >= args.quiet:
            status += f" (disturbed: other processes used {r['background']:.2f} cores)"
            disturbed.append(label)
        rows.append({
            "case": label, "d": arch.d, "chunk n": f"{r['n']}" + (f" ({r['note']})" if r["note"] else ""),
            "MFLOP/sample": fl / 1e6,
            "engine samples/s": e_rate, "measure() samples/s": meas["rate"], "naive samples/s": n_rate,
            "speed-up vs naive (engine / measure())": f"{speedup:.2f}x / {speedup_m:.2f}x",
            f">= {SPEEDUP_REQUIRED:g}x naive": status,
            "engine GFLOP/s": gflops, "fraction of attainable (target 50 %)": f"{frac:.1%}",
            "background (cores)": _cores(r["background"]),
        })
        req_rows.append({"case": label, "requirement": f"required: >= {SPEEDUP_REQUIRED:g}x the naive loop",
                         "measured": f"engine {speedup:.2f}x (rounds {min(r['ratios']):.2f}-{max(r['ratios']):.2f}), "
                                     f"measure() {speedup_m:.2f}x",
                         "status": status})
        if r is cnn128 and cpu:
            req_rows.append({"case": label, "requirement": "bound: the convolution kernels alone (table at the end)",
                             "measured": f"at most {floor_rate:.0f} samples/s = {floor_ratio:.2f}x the naive loop "
                                         f"({floor_best_ratio:.2f}x with the faster kernel per shape), before any "
                                         "ReLU, loss, sampling or Python work",
                             "status": (f"{SPEEDUP_REQUIRED:g}x out of reach"
                                        if floor_best_ratio < SPEEDUP_REQUIRED else
                                        f"{SPEEDUP_REQUIRED:g}x would leave "
                                        f"{1 - SPEEDUP_REQUIRED / floor_best_ratio:.0%} of the chunk time for "
                                        "everything but the convolutions")})
        req_rows.append({"case": label, "requirement": f"target: >= {ATTAINABLE_TARGET:.0%} of the attainable rate",
                         "measured": f"{frac:.1%} ({gflops:.1f} of {attainable:.0f} GFLOP/s)",
                         "status": "target met" if frac >= ATTAINABLE_TARGET else "target not met"})
        ph, tot = eng.phases, eng.seconds
        detail_rows.append({
            "case": label, "chunk n": r["n"],
            "weights/chunk": f"{r['n'] * r['wbytes'] / 2**20:,.0f} MiB",
            "time/chunk": _fmt_s(tot / eng.chunks),
            "resample (normal_)": f"{ph['resample'] / tot:.0%}", "input draw": f"{ph['inputs'] / tot:.0%}",
            "forward": f"{ph['forward'] / tot:.0%}", "2 backward": f"{ph['backward'] / tot:.0%}",
            "minor page faults/chunk": round(eng.faults / eng.chunks),
            "warm-up chunk": _fmt_s(eng.warmup),
            "measure() time vs raw loop": f"{e_rate / meas['rate'] - 1:+.0%}",
            "naive: share building the net": f"{nai.init / nai.seconds:.0%}",
            "E‖∇f‖² (measure())": f"{meas['grad_sq'][0]:.3f} ± {meas['grad_sq'][1]:.3f}",
        })

    wpn = weights_per_net(fc32["arch"])
    script = "python benchmarks/bench_empirical.py" + ("" if cpu else f" --device {args.device}")
    mode = f"`{script} --quick` (smoke-test sizes, not the measurement)" if quick else f"`{script}`"
    redone = sum(r["redone"] for r in results)
    dense_choice = ("`measure()` samples dense layers *implicitly* (`initstats.empirical.implicit`): the "
                    "pre-activations `W h` and the products `W^T g` with each backward cotangent are drawn from their "
                    "exact joint law, (in + out) random numbers per input and cotangent instead of in x out, so the "
                    "statistics are those of explicit weights (tested in `tests/test_implicit.py`). "
                    "Chosen by `measure()`: " + "; ".join(
                        f"`{r['name']}` {r['px']} px: chunk {r['n_default']}, dense layers "
                        f"{'implicit' if r['implicit'] else 'explicit'}, "
                        f"{r['n'] * r['wbytes'] / 2**20:,.1f} MiB of drawn weights per chunk" for r in results) + ".")
    fc_bound = samp["reused"] * 1e9 / wpn if cpu else math.nan
    cpu_extras = [] if not cpu else [
            f"Weight sampling: `Tensor.normal_` draws {samp['reused']:.2f} G floats/s into a reused buffer and "
            f"{samp['fresh']:.2f} G floats/s into a fresh tensor (first-touch page faults), on one thread although "
            f"torch has {samp['threads']} ({samp['numel']:,} floats). The same buffer split into "
            f"{samp['threads']} parts, each filled by `normal_` from its own generator in its own Python thread, fills "
            f"at {samp['split']:.2f} G floats/s (other processes used {_cores(bg_samp.cores)} cores meanwhile). "
            "A dense layer with one input per network uses each weight for one multiply-accumulate per pass, so "
            f"drawing the weight matrix caps a loop at {fc_bound:,.0f} samples/s for `fc` 32 px ({wpn:,} weights per "
            "network): the naive loop is bound by it. Instead, " + dense_choice,
            "",
            "Chunk size (cnn): the raw engine loop at several *n* (one warm-up chunk, then "
            f"{sweep_chunks} timed); *vs naive* divides by the naive rate of the main table. glibc's default "
            "allocator would serve activations above its mmap threshold with fresh mappings and trim freed memory, "
            "so their pages would fault again in every chunk; `measure()` and this script raise both thresholds "
            "(`initstats.empirical.common.keep_freed_memory`: mmap 32 MiB, trim 256 MiB; "
            + ("applied in this run" if malloc_kept else "**not applied in this run**: not glibc or opted out") +
            "), so only activations above 32 MiB still fault.",
            "",
            markdown_table(sweep_rows),
            "",
            "### Convolution kernels of `cnn` 128 px: how fast the engine could be",
            "",
            f"Each distinct grouped convolution of `cnn` 128 px (n = {n_conv} groups, batch 1, input in channels_last "
            f"as `ArchEnsemble` runs it), best of {layout_repeats}, timed in isolation (other processes used "
            f"{_cores(bg_layout.cores)} cores meanwhile): the forward `F.conv2d`; the input gradient through "
            "torch's backward kernels (autograd, what the engine runs; forward + gradient minus forward); for "
            "stride-1 layers the same input gradient computed instead as a forward convolution with the flipped, "
            "transposed kernel (checked equal; an alternative kernel for the same linear map); and forward + "
            "gradient in contiguous NCHW, which `ArchEnsemble` avoids. *stages*: how many layers of the network "
            "have that shape.",
            "",
            f"A sample needs a forward and two input-gradient passes, so the convolution kernels alone take "
            f"{_fmt_s(floor)} per chunk of {n_conv}: at most **{floor_rate:.0f} samples/s, {floor_ratio:.2f}x the "
            f"naive loop** of the main table, before any ReLU, loss, weight sampling or Python work; taking the "
            f"faster of the two gradient kernels for every shape, {floor_best_rate:.0f} samples/s, "
            f"{floor_best_ratio:.2f}x. The engine runs at "
            f"{cnn128['n'] * cnn128['engine'].chunks / cnn128['engine'].seconds / floor_rate:.0%} of the first bound; "
            "the rest of its chunk is ReLU and its backward, the loss, weight and input sampling, and Python. "
            "The naive loop is not slow at this size: each of its convolutions is already a large oneDNN call "
            "(batch 1, 16 channels, 128x128 px), so batching networks adds little, and both do the same FLOPs "
            "(MFLOP/sample above). Wrapped in a custom autograd function inside the engine (a weight flip per call, "
            "a Python backward), the flipped kernel gained 0-10 % per chunk in trials at n = 2-8 and lost on the "
            "small layers, so the engine keeps torch's backward. "
            + (f"Even the second bound is short of {SPEEDUP_REQUIRED:g}x." if floor_best_ratio < SPEEDUP_REQUIRED else
               f"At {SPEEDUP_REQUIRED:g}x the second bound would leave "
               f"{1 - SPEEDUP_REQUIRED / floor_best_ratio:.0%} of a chunk for everything but the convolutions; "
               f"that work takes {max(0.0, 1 - floor * cnn128['engine'].chunks / cnn128['engine'].seconds):.0%} "
               "of the engine's chunk now."),
            "",
            markdown_table(conv_rows),
    ]
    md = "\n".join([
        "## Empirical engine (batched Monte Carlo)" + ("" if cpu else f", {DEV.type.upper()}"),
        "",
        f"Generated by {mode} in {elapsed:.0f} s on the {DEV.type.upper()}. Machine: {info}; {threads} torch threads. "
        f"1-minute load average {load_start} at the start, {load_end} at the end. Before every timed round the "
        f"script waited for other processes to use < {args.quiet:g} cores ({quiet.waited:.0f} s waited in all, "
        f"{redone} disturbed round(s) repeated); *background* is the most that other processes used during a "
        "timed round of that case (with 2 cores, one busy core slows every parallel torch op by a scheduler "
        "time slice, so disturbed numbers can be several times worse). Wall-clock `time.perf_counter`.",
        "",
        "One *sample* is one network drawn fresh (new He weights; dense layers drawn implicitly, exactly in "
        "law, see below) evaluated on one input x ~ N(0, I) with "
        "the input gradients of one logit and of the cross-entropy loss (a forward and two backward "
        "passes): what `measure()` does per network with its default options. Networks: "
        "`make_arch(\"fc\", px)` (width 256, depth 4) and `make_arch(\"cnn\", px)` (16 channels, zero "
        f"padding, stride downsampling), float32, {'CPU' if cpu else 'GPU (no TF32, deterministic algorithms)'}.",
        "",
        "- *engine*: the inner loop of `measure()` on one preallocated `ArchEnsemble(arch, n, implicit_dense=...)` "
        "(`resample`, input draw, forward, two `torch.autograd.grad`), after one warm-up chunk; "
        f"{cfg['rounds']} round(s) of at least {cfg['round_seconds']:g} s, alternating with the naive loop. "
        "*n* and the dense-layer sampling are what `measure()` chooses (`initstats.empirical.measure.plan`) unless "
        "stated. *measure()*: "
        f"`measure(arch, MeasureOptions(nets={cfg['measure_chunks']}*n, chunk=n, device=\"cpu\"))` end to end "
        "after a one-chunk warm-up call (it also allocates its ensemble, reduces the statistics in float64 and "
        "copies them to numpy).",
        "- *naive*: a Python loop, per sample a fresh `nn.Sequential` of `nn.Linear`/`nn.Conv2d`/`nn.ReLU` "
        "(`torch.nn.utils.skip_init`, then `nn.init.kaiming_normal_`; no bias; zero padding by "
        "`nn.Conv2d(padding=...)`; weights without `requires_grad`), one input, the same two gradients. "
        "Checked once per case: with a 1-network `ArchEnsemble`'s weights copied in, its logits equal "
        "the engine's (max relative error " + ", ".join(f"{r['check_err']:.0e}" for r in results) + ").",
        f"- *attainable*: best of {cfg['probe_repeats']} float32 2048x2048 @ 2048x2048 `torch.mm`, probed before "
        f"each case and at the end ({', '.join(f'{p:.0f}' for p in probes)} GFLOP/s); the best, "
        f"{attainable:.0f} GFLOP/s, is used. *MFLOP/sample* counts 2 FLOPs per multiply-accumulate of every conv "
        "and dense layer as a dense implementation computes it (zero-padded taps included), for the forward "
        "pass and for each of the two backward passes, which compute only the data gradient (the weights need "
        "no gradient) and so cost the forward MACs again: 6 x forward MACs. ReLU, softmax and random numbers "
        "are not counted.",
        "",
        markdown_table(rows),
        "",
        "### Requirements",
        "",
        *([f"**Disturbed measurement**: other processes used >= {args.quiet:g} cores during timed rounds of "
           f"{', '.join(disturbed)} even after waiting. A busy core slows the engine and the naive loop by very "
           "different factors (the naive `cnn` 128 px loop, many small parallel ops, by up to ~100x), so those "
           "rates and speed-ups are unreliable: rerun on a quiet machine.", ""]
          if disturbed else []),
        f"Required: >= {SPEEDUP_REQUIRED:g}x the naive loop, by the engine loop and by `measure()`. Target, not a "
        f"requirement: >= {ATTAINABLE_TARGET:.0%} of the attainable float32 rate.",
        "",
        markdown_table(req_rows),
        "",
        "### Where the engine's time goes",
        "",
        "Shares of the engine loop's time per phase, minor page faults per chunk (`getrusage`), the first "
        "(warm-up) chunk including the allocation of the weights, how much slower per sample `measure()` is "
        "than the raw loop, and the naive loop's share spent building and initialising its network.",
        "",
        markdown_table(detail_rows),
        "",
        *(cpu_extras if cpu else [dense_choice[0].upper() + dense_choice[1:]]),
    ])
    print(md)
    if not args.no_doc and (args.doc is not None or not quick):
        path = update_section(section, md, args.doc if args.doc is not None else "docs/benchmarks.md")
        log(f"wrote section {section!r} of {path}")
    return 0 if (quick or all_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
