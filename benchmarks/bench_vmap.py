"""Monte Carlo of a traced ``--module`` model: the grouped-convolution engine against ``torch.func`` vmap.

Usage::

    python benchmarks/bench_vmap.py            # full measurement (about 2 minutes), writes docs/benchmarks.md
    python benchmarks/bench_vmap.py --quick    # small sizes and few networks, smoke test only

Issue 11 asked the Monte Carlo of a user's model to be batched over networks either by
``torch.func.functional_call`` under ``vmap`` over stacked freshly drawn parameters, or by grouped
convolutions built from the trace, "chosen by measurement".  ``measure()`` runs the traced spec as
grouped convolutions (:class:`initstats.empirical.ensemble.ArchEnsemble`); this script measures the
alternative against it and against the naive loop, in one run, on the models of ``tests/models.py``.
One *sample* is one network drawn fresh (He weights, fan-in, zero biases) on one input ``x ~ N(0, I)``
with the input gradients of logit 0 and of the cross-entropy loss:

1. *engine*: ``measure(from_module(model, px=px), MeasureOptions(nets=N, device=...))`` end to end,
   as ``bench_module.py`` times it (``N`` a whole number of ``measure()``'s chunks, chosen from an
   untimed call so that a call lasts about ``round_seconds``);
2. *vmap*: :class:`_vmap.VmapEnsemble` on the user's own ``nn.Module``: the same ``N`` networks in
   chunks of the engine's chunk size, each chunk one ``vmap`` over networks of ``functional_call``
   under ``torch.func.vjp`` (parameter draw, input draw, forward, both gradients, all timed);
3. *naive*: ``bench_module.NaiveLoop``, a Python loop over networks re-initialising the model in
   place.

The three run in rounds, in a rotating order, each round on a quiet machine as far as ``--max-wait``
allows (``_timing.undisturbed``).  The run checks that the vmap path computes what it claims: a few of
its networks are recomputed one at a time by plain autograd with the same weights (largest relative
difference printed), and its mean of ``||grad f_0||^2`` and ``||grad L||^2`` over networks is compared
with the engine's (difference over standard error).

The full run writes the section ``module-vmap`` of ``docs/benchmarks.md``; ``--quick`` writes nothing
unless ``--doc PATH`` is given.  ``--threads N`` sets torch's CPU threads (on a machine that other
processes keep busy, threads that wait for each other would be measured instead).  Exit status 0
(nothing here is a requirement), 2 for a bad ``--device`` or ``--threads``.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import (ROOT, benchmark_parser, load_average, machine_info, markdown_table,  # noqa: E402
                     publish)
from _module_md import describe, mean_se  # noqa: E402
from _timing import Quiet, add_quiet_options, sync, undisturbed  # noqa: E402
from _vmap import VmapEnsemble, check_same_weights, engine_layout_switch, nchw_engine  # noqa: E402
from bench_module import MODELS, Config, NaiveLoop, instance, log  # noqa: E402

from initstats.empirical.common import keep_freed_memory, resolve_device, strict_numerics  # noqa: E402
from initstats.empirical.measure import MeasureOptions, measure, plan  # noqa: E402
from initstats.empirical.modules import load_factory  # noqa: E402
from initstats.empirical.trace import from_module  # noqa: E402
from initstats.errors import InitStatsError  # noqa: E402
from initstats.spec import Arch  # noqa: E402

SECTION = "module-vmap"
#: (factory in MODELS, input size or None for a model of fixed input) of the full run and of --quick
CASES = (("mlp", None), ("conv1d_net", 64), ("resnet18_layout", 32), ("vgg_like", 32))
QUICK_CASES = (("mlp", None), ("conv1d_net", 16), ("resnet18_layout", 8), ("vgg_like", 8))
METHODS = ("engine", "engine NCHW", "vmap", "naive")
#: vmap would replace the engine only if at least this much faster (geometric mean over the cases, against
#: the faster of the engine's two layouts in each case) and nowhere slower
ADOPT = 1.2

QUICK = Config(rounds=1, round_seconds=0.05, fixed_nets=16, naive_warm=1, naive_min_nets=2, probe_repeats=0)
FULL = Config(rounds=3, round_seconds=2.0, fixed_nets=None, naive_warm=10, naive_min_nets=10, probe_repeats=0)


@dataclass
class Tally:
    """Networks, seconds and per-network ``(||grad f_0||^2, ||grad L||^2)`` of one method, all rounds."""
    nets: int = 0
    seconds: float = 0.0
    f0: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)

    def add(self, nets: int, seconds: float, f0: list[float], loss: list[float]) -> None:
        self.nets += nets
        self.seconds += seconds
        self.f0 += f0
        self.loss += loss

    @property
    def rate(self) -> float:
        return self.nets / self.seconds


@dataclass
class Case:
    factory: str
    px: int | None
    arch: Arch
    nets: int                  # N: networks per timed engine call, and per vmap round
    chunk: int                 # measure()'s chunk, also the vmap chunk
    implicit: bool             # measure() draws dense layers implicitly
    same_weights: float        # vmap against autograd, same weights: largest relative difference
    vmap_first: float          # seconds of the first (untimed) vmap chunk
    tally: dict[str, Tally] = field(default_factory=lambda: {m: Tally() for m in METHODS})
    ratios: list[float] = field(default_factory=list)    # vmap / engine, per round
    redone: int = 0
    background: float | None = None

    @property
    def label(self) -> str:
        return f"`{self.factory}`" + ("" if self.px is None else f" {self.px} px")


def run_case(name: str, px: int | None, cfg: Config, quiet: Quiet, device: torch.device) -> Case:
    model = instance(load_factory(f"{ROOT / MODELS}:{name}"), px or 0)
    arch = from_module(model, px=px)

    def options(nets: int, seed: int) -> MeasureOptions:
        return MeasureOptions(nets=nets, device=str(device), seed=seed)

    chunk0 = plan(arch, MeasureOptions(device=str(device))).chunk
    n0 = cfg.fixed_nets or chunk0
    measure(arch, options(n0, 0))                          # allocation, kernel set-up
    with nchw_engine():
        measure(arch, options(n0, 0))                      # the same for the NCHW kernels
    if cfg.fixed_nets is None:
        t = time.perf_counter()
        measure(arch, options(n0, 0))
        nets = chunk0 * max(1, round(cfg.round_seconds / (time.perf_counter() - t)))
    else:
        nets = cfg.fixed_nets
    p = plan(arch, options(nets, 1))
    chunk = min(p.chunk, nets)
    ens = VmapEnsemble(model, arch.input_shape, arch.num_classes, device)
    t = time.perf_counter()
    drawn = ens.draw(chunk)
    first = ens(*drawn)                                    # the first chunk, untimed in the rates
    vmap_first = time.perf_counter() - t
    same = check_same_weights(ens, *drawn, first)
    naive = NaiveLoop(model, arch, device)
    for _ in range(cfg.naive_warm):
        naive.sample()
    case = Case(factory=name, px=px, arch=arch, nets=nets, chunk=chunk, implicit=p.implicit_dense,
                same_weights=same, vmap_first=vmap_first)
    log(f"{case.label}: N = {nets} (chunk {chunk}); vmap vs autograd, same weights: {same:.1e}")

    def engine(r: int):
        m = measure(arch, options(nets, r + 1))
        return nets, m.per_net["grad_logit_l2_sq"][:, 0].tolist(), (m.per_net["grad_loss_l2"][:, 0] ** 2).tolist()

    def engine_nchw(r: int):
        with nchw_engine():
            return engine(r)

    def vmap(r: int):
        parts = [ens.sample(min(chunk, nets - i)) for i in range(0, nets, chunk)]
        v = torch.cat(parts).double().cpu()
        if not torch.isfinite(v).all():
            raise AssertionError("non-finite input gradient in the vmap path")
        return nets, v[:, 0].tolist(), v[:, 1].tolist()

    def naive_round(r: int):
        n, _, f0 = naive.round(cfg.round_seconds, cfg.naive_min_nets)
        return n, f0, []

    run = {"engine": engine, "engine NCHW": engine_nchw, "vmap": vmap, "naive": naive_round}
    backgrounds = []
    for r in range(cfg.rounds):
        order = METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]

        def one_round(r: int = r, order: tuple[str, ...] = order):
            out = {}
            for method in order:
                gc.collect()
                sync(device)
                t = time.perf_counter()
                n, f0, loss = run[method](r)
                sync(device)
                out[method] = (n, time.perf_counter() - t, f0, loss)
            return out

        def repeating(cores: float | None, r: int = r) -> None:
            log(f"  round {r + 1}: other processes used {cores:.2f} cores; repeating it")

        out, bg, again = undisturbed(quiet, one_round, repeating)
        case.redone += again
        backgrounds.append(bg)
        for method, result in out.items():
            case.tally[method].add(*result)
        rates = {m: out[m][0] / out[m][1] for m in METHODS}
        case.ratios.append(rates["vmap"] / rates["engine"])
        log(f"  round {r + 1} ({', '.join(order)}): " + ", ".join(f"{m} {rates[m]:.1f}" for m in METHODS)
            + f" nets/s; vmap / engine {case.ratios[-1]:.2f}; background {'?' if bg is None else f'{bg:.2f}'} cores")
    known = [b for b in backgrounds if b is not None]
    case.background = max(known) if known else None
    return case


# -- the section -----------------------------------------------------------------------------------------

def _z(a: list[float], b: list[float]) -> float:
    (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
    return abs(ma - mb) / math.hypot(sa, sb) if sa > 0 and sb > 0 else math.nan


def _ms(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{mean:.4g} ± {se:.2g}"


def main_row(c: Case) -> dict:
    e, e2, v, n = (c.tally[m].rate for m in METHODS)
    return {"case": c.label, "traced layers": describe(c.arch), "d": c.arch.d, "N (nets per round)": c.nets,
            "chunk": c.chunk, "engine nets/s": e, "vmap nets/s": v, "naive nets/s": n,
            "vmap / engine": f"{v / e:.2f}x", "engine / naive": f"{e / n:.2f}x", "vmap / naive": f"{v / n:.2f}x",
            "engine NCHW nets/s": e2, "vmap / engine NCHW": f"{v / e2:.2f}x",
            "background (cores)": None if c.background is None else round(c.background, 2)}


def check_row(c: Case) -> dict:
    t = c.tally
    return {"case": c.label, "vmap / engine per round": ", ".join(f"{r:.2f}x" for r in c.ratios),
            "engine nets timed": t["engine"].nets, "engine NCHW nets timed": t["engine NCHW"].nets,
            "vmap nets timed": t["vmap"].nets,
            "naive nets timed": t["naive"].nets, "dense layers (engine)": "implicit" if c.implicit else "explicit",
            "first vmap chunk (untimed)": f"{c.vmap_first:.2f} s",
            "vmap vs autograd, same weights (max rel. diff.)": f"{c.same_weights:.1e}",
            "E‖∇f₀‖² engine": _ms(t["engine"].f0), "E‖∇f₀‖² vmap": _ms(t["vmap"].f0),
            "E‖∇f₀‖² naive": _ms(t["naive"].f0),
            "vmap − engine / SE": f"{_z(t['vmap'].f0, t['engine'].f0):.1f}",
            "naive − engine / SE": f"{_z(t['naive'].f0, t['engine'].f0):.1f}",
            "E‖∇L‖² engine": _ms(t["engine"].loss), "E‖∇L‖² vmap": _ms(t["vmap"].loss),
            "∇L: vmap − engine / SE": f"{_z(t['vmap'].loss, t['engine'].loss):.1f}"}


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _span(ratios: list[float]) -> str:
    return f"{min(ratios):.2f}x to {max(ratios):.2f}x (geometric mean {geomean(ratios):.2f}x)"


def choice(cases: list[Case], quick: bool, switch: bool, threads: int) -> str:
    """The paragraph stating the choice, from this run's figures."""
    rate = {m: [c.tally[m].rate for c in cases] for m in METHODS}
    vs_engine = [v / e for v, e in zip(rate["vmap"], rate["engine"])]
    vs_nchw = [v / e for v, e in zip(rate["vmap"], rate["engine NCHW"])]
    vs_best = [v / max(e, e2) for v, e, e2 in zip(rate["vmap"], rate["engine"], rate["engine NCHW"])]
    layout = [e2 / e for e, e2 in zip(rate["engine"], rate["engine NCHW"])]
    worst_z = max(_z(c.tally["vmap"].f0, c.tally["engine"].f0) for c in cases)
    worst_same = max(c.same_weights for c in cases)
    figures = (f"In this run vmap ran at {_span(vs_engine)} the rate of `measure()` as it is, and at "
               f"{_span(vs_nchw)} that of `measure()` keeping NCHW, over the {len(cases)} cases; it computes the "
               f"same thing (the same weights give the same gradients to {worst_same:.0e} relative, and its means "
               f"over independent networks are within {worst_z:.1f} SE of the engine's).")
    why = ("torch's batching rule for `convolution` turns a convolution with a batched weight into one grouped "
           "convolution (`groups` = networks x the layer's groups), the kernel the engine calls itself, so the two "
           "differ by memory layout and overheads, not by the convolutions they run.")
    if not switch:
        why += (" (`ArchEnsemble` no longer converts its input to channels-last, so *engine NCHW* runs the same "
                "code as *engine* here.)")
    layout_note = ""
    gained = [(c, x, y) for c, x, y in zip(cases, layout, vs_nchw) if x > 1.15]
    if switch and gained:
        where = ", ".join(f"{c.label} {x:.2f}x faster (vmap / engine NCHW {y:.2f}x there)" for c, x, y in gained)
        layout_note = (f" Memory layout: keeping NCHW made `measure()` {where}, "
                       f"with {threads} torch thread{'' if threads == 1 else 's'}; the channels-last conversion in "
                       "`ArchEnsemble.__call__` should be re-measured per layer shape and thread count.")
    if quick:
        return f"**Choice.** Not assessed at `--quick` sizes. {figures}"
    if geomean(vs_best) >= ADOPT and min(vs_best) >= 1:
        verdict = (f"**Choice.** The measurement favours vmap: at least {ADOPT:g}x faster in geometric mean than "
                   "the faster layout of the engine, and nowhere slower; the choice of grouped convolutions for "
                   "`measure()` should be revisited.")
    else:
        verdict = (f"**Choice: grouped convolutions built from the trace, as `measure()` does.** Against the faster "
                   f"layout of the engine in each case, vmap ran at {_span(vs_best)}: short of what would justify "
                   f"a second engine (at least {ADOPT:g}x in geometric mean, and nowhere slower). The "
                   "grouped-convolution ensemble also serves specifications and node-link graphs that have no "
                   "`nn.Module`, keeps the seeds of `measure()` (chunk j draws from the stream (seed, j)), draws "
                   "dense layers implicitly, and runs BatchNorm in train mode over a network's inputs, all of which "
                   "a vmap path would have to redo.")
    return f"{verdict} {figures} {why}{layout_note}"


def render(run: dict) -> str:
    cases: list[Case] = run["cases"]
    cfg: Config = run["cfg"]
    script = "python benchmarks/bench_vmap.py" + "".join(f" {a}" for a in run["options"])
    mode = f"`{script} --quick` (smoke-test sizes, not the measurement)" if run["quick"] else f"`{script}`"
    n_rule = (f"fixed at {cfg.fixed_nets}" if cfg.fixed_nets else
              f"a whole number of `measure()`'s chunks, chosen from an untimed one-chunk call so that a call lasts "
              f"about {cfg.round_seconds:g} s")
    models = ", ".join(f"`{c}`" for c in dict.fromkeys(c.factory for c in cases))
    return "\n".join([
        "## Traced PyTorch models: grouped-convolution engine against `torch.func` vmap",
        "",
        f"Generated by {mode} in {run['elapsed']:.0f} s on the {run['device'].type.upper()}. Machine: "
        f"{run['info']}; {run['threads']} torch thread{'' if run['threads'] == 1 else 's'}. 1-minute load "
        f"average {run['load_start']} at the start, {run['load_end']} at the end. Before every timed round the "
        f"script waited for other processes to use < {run['quiet']:g} cores ({run['waited']:.0f} s waited in all, "
        f"{sum(c.redone for c in cases)} disturbed round(s) repeated); *background* is the most other processes "
        "used during a timed round of that case. Wall-clock `time.perf_counter`.",
        "",
        "Issue 11 left the batching of the Monte Carlo over networks to a measurement: `torch.func.functional_call` "
        "under `vmap` over stacked freshly drawn parameters, or grouped convolutions built from the trace. One "
        "*sample* is one network drawn fresh (He weights, variance 2/fan_in, zero biases) on one input "
        f"x ~ N(0, I) with the input gradients of logit 0 and of the cross-entropy loss. Models: {models} from "
        "`tests/models.py`, written in plain torch; float32.",
        "",
        "- *engine*: `measure(from_module(model, px=px), MeasureOptions(nets=N, device=\"" + str(run["device"])
        + "\"))` end to end, as in the section `module`: the traced spec as grouped convolutions over a chunk of "
        f"networks at a time. *N* is {n_rule}; {cfg.rounds} round(s).",
        "- *engine NCHW*: the same `measure()` calls with the ensemble's conversion of 2-D inputs to channels-last "
        "(`ArchEnsemble.__call__`, for oneDNN) turned off for the call (`torch.channels_last` aliased to "
        "`torch.contiguous_format`, `benchmarks/_vmap.py`), the layout the vmap path runs in: a diagnostic that "
        "tells the batching method apart from the memory layout.",
        "- *vmap*: the user's own `nn.Module`, the same N networks in chunks of the engine's *chunk*: per chunk, "
        "every `Conv`/`Linear` weight drawn stacked (`randn` x sqrt(2/fan_in)), biases zero, other parameters at "
        "their defaults, inputs and labels drawn, then `vmap` over networks of `torch.func.vjp` of "
        "`functional_call` (one forward per network), pulled back with the one-hot of logit 0 and with "
        "`torch.func.grad` of `F.cross_entropy` at the logits (`benchmarks/_vmap.py`); all of it timed.",
        f"- *naive*: the per-network Python loop of the section `module` (`NaiveLoop`: the model re-initialised "
        f"in place by `kaiming_normal_`, `torch.autograd.grad`); rounds of at least {cfg.round_seconds:g} s and "
        f"{cfg.naive_min_nets} networks.",
        "- The four run in each round in a rotating order. *same weights*: a few networks of the vmap path "
        "recomputed one by one by plain autograd on the model with the same weights, inputs and labels. "
        "*E‖∇f₀‖²*, *E‖∇L‖²*: means over networks with their standard errors; *difference / SE* should be "
        "a few units at most, as all of them sample the same law.",
        "",
        markdown_table([main_row(c) for c in cases]),
        "",
        markdown_table([check_row(c) for c in cases]),
        "",
        choice(cases, run["quick"], run["switch"], run["threads"]),
    ])


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "small sizes and few networks (seconds), smoke test")
    add_quiet_options(ap, wait=30, quick_wait=0)
    ap.add_argument("--device", default="cpu", help="cpu (default; section 'module-vmap') or cuda[:i] "
                                                    "('module-vmap-cuda')")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's own choice); on a machine that other processes keep "
                         "busy, 1 avoids measuring threads that wait for each other")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print("error: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except InitStatsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with strict_numerics(device):
        cfg = QUICK if args.quick else FULL
        quiet = Quiet.from_args(args)
        if device.type == "cpu":
            keep_freed_memory()
        load_start, t0 = load_average(), time.perf_counter()
        info = machine_info()
        if device.type != "cpu":
            info += f"; GPU: {torch.cuda.get_device_name(device)} (torch CUDA {torch.version.cuda})"
        log(info)
        cases = [run_case(name, px, cfg, quiet, device) for name, px in (QUICK_CASES if args.quick else CASES)]
        options = ([] if device.type == "cpu" else [f"--device {args.device}"]) + \
            ([] if args.threads is None else [f"--threads {args.threads}"])
        md = render({"quick": args.quick, "device": device, "options": options, "cfg": cfg, "info": info,
                     "threads": torch.get_num_threads(), "load_start": load_start, "load_end": load_average(),
                     "quiet": args.quiet, "waited": quiet.waited, "elapsed": time.perf_counter() - t0,
                     "cases": cases, "switch": engine_layout_switch()})
    publish(args, SECTION if device.type == "cpu" else f"{SECTION}-cuda", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
