"""Benchmark of the Monte Carlo engine on traced PyTorch models (``--module``) against the naive loop.

Usage::

    python benchmarks/bench_module.py            # full measurement (1-2 minutes), writes docs/benchmarks.md
    python benchmarks/bench_module.py --quick    # small sizes and few networks, smoke test only

One *sample* is one network drawn fresh (new He weights, zero biases) evaluated on one input
``x ~ N(0, I)`` with the input gradients of one logit and of the cross-entropy loss: what
:func:`initstats.empirical.measure.measure` does per network with its default options.  For
models written in plain torch by a user (``tests/models.py``), in one run:

1. the module engine: ``measure(from_module(model, px=px), MeasureOptions(nets=N, device=...))``
   end to end (``from_module`` traces the model once, outside the timing; ``measure()`` then runs
   the traced spec as grouped convolutions over a chunk of networks at a time), timed as
   networks per second; ``N`` is chosen from an untimed warm-up call so that a call lasts about
   ``round_seconds``;
2. the naive baseline: a plain Python loop over networks with the user's own ``nn.Module``:
   per network, its Conv/Linear weights are re-initialised in place from one ``torch.Generator``
   (``kaiming_normal_``, fan-in, variance 2/fan_in; biases zeroed), one input is drawn, and
   ``torch.autograd.grad`` gives the input gradients of logit 0 and of the cross-entropy loss
   (the parameters do not require gradients);
3. the attainable float32 rate: a large ``torch.mm`` probe (best of several) before every case and
   at the end; both loops' achieved GFLOP/s come from torch's own count of one forward pass of
   the user's model (``FlopCounterMode``) times :data:`PASSES` (the forward and the two
   input-gradient passes, each costing about the forward's FLOPs; the run also counts one whole
   naive sample and prints that factor).

Engine and naive loop run in alternating rounds, each round on a quiet machine as far as
``--max-wait`` allows (``_timing.undisturbed``).  The cases include the ResNet-18 layout named by
the ``--module`` issue (``tests/models.py:resnet18_layout``, the zoo's model).

The full run writes the section ``module`` of ``docs/benchmarks.md`` (``module-cuda`` with
``--device cuda``); ``--quick`` writes nothing unless ``--doc PATH`` is given.  Exit status 0
(nothing here is a requirement), 2 for a bad ``--device``.
"""

from __future__ import annotations

import copy
import gc
import inspect
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, benchmark_parser, load_average, machine_info, publish  # noqa: E402
from _kernels import matmul_probe  # noqa: E402
from _module_md import render  # noqa: E402
from _timing import Quiet, add_quiet_options, sync, undisturbed  # noqa: E402

from initstats.empirical.common import keep_freed_memory, resolve_device, strict_numerics  # noqa: E402
from initstats.empirical.measure import MeasureOptions, measure, plan  # noqa: E402
from initstats.empirical.modules import load_factory  # noqa: E402
from initstats.empirical.trace import from_module  # noqa: E402
from initstats.errors import InitStatsError  # noqa: E402
from initstats.spec import Arch  # noqa: E402

SECTION = "module"
MODELS = "tests/models.py"
#: (factory in MODELS, input sizes) of the full run and of --quick
CASES = (("residual_net", (32, 64)), ("vgg_like", (32,)), ("resnet18_layout", (32, 64)))
QUICK_CASES = (("residual_net", (16, 32)), ("vgg_like", (16,)), ("resnet18_layout", (16,)))
#: passes of one sample that each cost about the forward FLOPs: the forward and two input gradients
PASSES = 3


@dataclass(frozen=True)
class Config:
    rounds: int               # alternating rounds of engine and naive loop per case
    round_seconds: float      # about this long per loop per round
    fixed_nets: int | None    # networks per measure() call (None: chosen from the warm-up call)
    naive_warm: int           # untimed naive networks before the first round
    naive_min_nets: int       # least naive networks per round
    probe_repeats: int        # matmul probe: best of this many


QUICK = Config(rounds=1, round_seconds=0.2, fixed_nets=16, naive_warm=1, naive_min_nets=3, probe_repeats=3)
FULL = Config(rounds=3, round_seconds=3.0, fixed_nets=None, naive_warm=20, naive_min_nets=20, probe_repeats=7)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the naive loop -----------------------------------------------------------------------------------

class NaiveLoop:
    """The user's model, re-initialised in place per network; :meth:`round` times networks."""

    def __init__(self, model: nn.Module, arch: Arch, device: torch.device, seed: int = 3) -> None:
        self.model = copy.deepcopy(model).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.layers = [m for m in self.model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
        self.shape, self.k, self.device = arch.input_shape, arch.num_classes, device
        self.g = torch.Generator(device=device).manual_seed(seed)
        self.nets, self.seconds = 0, 0.0
        self.grad_sq: list[float] = []           # ||grad f_0||^2 per accepted network

    def sample(self) -> torch.Tensor:
        """One network: fresh weights, one input, the two input gradients; returns ||grad f_0||^2."""
        with torch.no_grad():
            for m in self.layers:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=self.g)
                if m.bias is not None:
                    m.bias.zero_()
        x = torch.randn((1, *self.shape), generator=self.g, device=self.device).requires_grad_(True)
        label = torch.randint(0, self.k, (1,), generator=self.g, device=self.device)
        out = self.model(x)
        grad, = torch.autograd.grad(out[:, 0].sum(), x, retain_graph=True)
        grad_loss, = torch.autograd.grad(F.cross_entropy(out, label, reduction="sum"), x)
        return torch.stack((grad.square().sum(), grad_loss.square().sum()))

    def round(self, min_seconds: float, min_nets: int) -> tuple[int, float, list[float]]:
        """Networks until ``min_nets`` and ``min_seconds``: (networks, seconds, ||grad f_0||^2 each)."""
        sync(self.device)
        t = time.perf_counter()
        sq = []
        while len(sq) < min_nets or time.perf_counter() - t < min_seconds:
            sq.append(self.sample())
        sync(self.device)
        wall = time.perf_counter() - t
        values = torch.stack(sq).cpu()
        if not torch.isfinite(values).all():
            raise AssertionError("non-finite input gradient in the naive loop")
        return len(sq), wall, values[:, 0].tolist()

    def accept(self, nets: int, seconds: float, grad_sq: list[float]) -> None:
        self.nets += nets
        self.seconds += seconds
        self.grad_sq += grad_sq

    @property
    def rate(self) -> float:
        return self.nets / self.seconds


# -- FLOPs --------------------------------------------------------------------------------------------

def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """torch's count of one forward pass of one network (batch 1) of the user's model."""
    m = copy.deepcopy(model).cpu().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        m(torch.zeros(1, *input_shape))
    return counter.get_total_flops()


def sample_flops(model: nn.Module, arch: Arch) -> int:
    """torch's count of one whole naive sample (forward and both input gradients).

    ``backward(inputs=[x])`` stands for ``autograd.grad(..., x)`` (the same passes): the counter's
    module hooks refuse ``autograd.grad`` on a leaf."""
    loop = NaiveLoop(model, arch, torch.device("cpu"))
    x = torch.randn((1, *arch.input_shape), generator=loop.g).requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        out = loop.model(x)
        out[:, 0].sum().backward(inputs=[x], retain_graph=True)
        F.cross_entropy(out, torch.zeros(1, dtype=torch.long), reduction="sum").backward(inputs=[x])
    return counter.get_total_flops()


# -- one case -----------------------------------------------------------------------------------------

@dataclass
class Case:
    factory: str
    px: int
    arch: Arch
    trace_seconds: float       # from_module (trace + translation check), once
    chunk: int                 # measure()'s chunk for the options used
    implicit: bool             # measure() samples dense layers implicitly
    nets: int                  # N: networks per timed measure() call
    warmup_nets: int           # networks of the untimed first measure() call
    warmup_seconds: float      # its seconds
    forward_flops: int
    sample_flops: int          # torch's count of one whole naive sample
    probe: float               # matmul probe before the case, GFLOP/s
    naive: NaiveLoop
    engine_nets: int = 0
    engine_seconds: float = 0.0
    engine_grad_sq: list[float] = field(default_factory=list)  # ||grad f_0||^2 per network, all rounds
    ratios: list[float] = field(default_factory=list)
    redone: int = 0
    background: float | None = None

    @property
    def label(self) -> str:
        return f"`{self.factory}` {self.px} px"

    @property
    def flops(self) -> int:
        """FLOPs per sample used for the rates: PASSES x the forward count."""
        return PASSES * self.forward_flops

    @property
    def engine_rate(self) -> float:
        return self.engine_nets / self.engine_seconds


def instance(factory, px: int) -> nn.Module:
    return factory(px=px) if "px" in inspect.signature(factory).parameters else factory()


def run_case(name: str, px: int, cfg: Config, quiet: Quiet, device: torch.device) -> Case:
    model = instance(load_factory(f"{ROOT / MODELS}:{name}"), px)
    t = time.perf_counter()
    arch = from_module(model, px=px)
    trace_seconds = time.perf_counter() - t
    probe = matmul_probe(device, repeats=cfg.probe_repeats)

    def options(nets: int, seed: int) -> MeasureOptions:
        return MeasureOptions(nets=nets, device=str(device), seed=seed)

    chunk0 = plan(arch, MeasureOptions(device=str(device))).chunk   # measure()'s chunk when nets >= it
    n0 = cfg.fixed_nets or chunk0                  # the first call: one chunk (allocation, kernel set-up)
    t = time.perf_counter()
    measure(arch, options(n0, 0))
    warm = time.perf_counter() - t
    if cfg.fixed_nets is None:                     # a second call, warm, sets N
        t = time.perf_counter()
        measure(arch, options(n0, 0))
        nets = chunk0 * max(1, round(cfg.round_seconds / (time.perf_counter() - t)))
    else:
        nets = cfg.fixed_nets
    p = plan(arch, options(nets, 1))
    case = Case(factory=name, px=px, arch=arch, trace_seconds=trace_seconds, chunk=min(p.chunk, nets),
                implicit=p.implicit_dense, nets=nets, warmup_nets=n0, warmup_seconds=warm,
                forward_flops=forward_flops(model, arch.input_shape), sample_flops=sample_flops(model, arch),
                probe=probe, naive=NaiveLoop(model, arch, device))
    for _ in range(cfg.naive_warm):
        case.naive.sample()
    log(f"{case.label}: traced in {trace_seconds:.2f} s; matmul probe {probe:.0f} GFLOP/s; N = {nets} "
        f"(chunk {case.chunk}); {case.flops / 1e6:.2f} MFLOP/sample")

    backgrounds = []
    for r in range(cfg.rounds):
        def one_round(r: int = r):
            gc.collect()
            sync(device)
            t = time.perf_counter()
            m = measure(arch, options(nets, r + 1))
            sync(device)
            engine = (time.perf_counter() - t, m.per_net["grad_logit_l2_sq"][:, 0].tolist())
            return engine, case.naive.round(cfg.round_seconds, cfg.naive_min_nets)

        def repeating(cores: float | None, r: int = r) -> None:
            log(f"  round {r + 1}: other processes used {cores:.2f} cores; repeating it")

        ((e_sec, grad_sq), naive), bg, again = undisturbed(quiet, one_round, repeating)
        case.redone += again
        case.engine_nets += nets
        case.engine_seconds += e_sec
        case.engine_grad_sq += grad_sq
        case.naive.accept(*naive)
        backgrounds.append(bg)
        e_rate, n_rate = nets / e_sec, naive[0] / naive[1]
        case.ratios.append(e_rate / n_rate)
        log(f"  round {r + 1}: engine {e_rate:.1f} samples/s, naive {n_rate:.1f} samples/s ({naive[0]} nets), "
            f"ratio {e_rate / n_rate:.2f}, background {'?' if bg is None else f'{bg:.2f}'} cores")
    known = [b for b in backgrounds if b is not None]
    case.background = max(known) if known else None
    return case


# -- main ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    quick: bool
    device: torch.device
    device_arg: str
    cfg: Config
    info: str
    threads: int
    load_start: str
    load_end: str
    quiet_threshold: float
    quiet_waited: float
    elapsed: float
    cases: list[Case]
    probes: list[float]
    probe_size: int
    passes: int = PASSES

    @property
    def attainable(self) -> float:
        return max(self.probes)


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "small sizes and few networks (seconds), smoke test")
    add_quiet_options(ap, wait=60, quick_wait=5)
    ap.add_argument("--device", default="cpu", help="cpu (default; section 'module') or cuda[:i] ('module-cuda')")
    args = ap.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except InitStatsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with strict_numerics(device):  # what measure() runs under; the naive loop too
        return _run(args, device)


def _run(args, device: torch.device) -> int:
    from _kernels import PROBE_SIZE

    cpu = device.type == "cpu"
    cfg = QUICK if args.quick else FULL
    quiet = Quiet.from_args(args)
    if cpu:
        keep_freed_memory()  # as measure() does on a CPU; the naive loop runs in this process too
    load_start = load_average()
    t_total = time.perf_counter()
    info = machine_info()
    if not cpu:
        info += f"; GPU: {torch.cuda.get_device_name(device)} (torch CUDA {torch.version.cuda})"
    log(info)

    cases = [run_case(name, px, cfg, quiet, device)
             for name, sizes in (QUICK_CASES if args.quick else CASES) for px in sizes]
    quiet.wait()
    probe_end = matmul_probe(device, repeats=cfg.probe_repeats)
    run = Run(quick=args.quick, device=device, device_arg=args.device, cfg=cfg, info=info,
              threads=torch.get_num_threads(), load_start=load_start, load_end=load_average(),
              quiet_threshold=args.quiet, quiet_waited=quiet.waited, elapsed=time.perf_counter() - t_total,
              cases=cases, probes=[c.probe for c in cases] + [probe_end], probe_size=PROBE_SIZE)
    md = render(run)
    publish(args, SECTION if cpu else f"{SECTION}-cuda", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
