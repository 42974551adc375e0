"""The Markdown section of ``bench_empirical.py``: what a run measured, and the page written from it.

:class:`Run` holds everything one run measured (:class:`Case` per network, the CPU-only probes in
:class:`CpuProbes`); :func:`render` turns it into the section.  Every number on the page comes
from the :class:`Run` it is given: the prose states only what this run measured or configured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from _arch_costs import FLOP_PER_MAC, PASSES, flops_per_sample, largest_activation, weights_per_net
from _common import markdown_table
from _engine import PHASES, EngineTimer, MeasureRun, SweepPoint
from _kernels import PROBE_SIZE, ConvBound, ConvShape
from _naive import NaiveTimer
from initstats.spec import Arch

__all__ = ["ATTAINABLE_TARGET", "SPEEDUP_REQUIRED", "Case", "Config", "CpuProbes", "Run", "fmt_cores", "fmt_seconds",
           "render"]

SPEEDUP_REQUIRED = 4.0     # requirement: >= 4x the naive per-network loop
ATTAINABLE_TARGET = 0.5    # target (not a requirement): >= 50 % of the matmul probe
QUICK_STATUS = "not assessed (--quick sizes)"


# -- what a run measured ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """How much a run measures: the main rounds, ``measure()``, the probes, the sweep, the kernels."""
    cap: int | None            # largest chunk (None: measure()'s choice)
    rounds: int                # alternating rounds of engine and naive loop per case
    round_seconds: float       # least seconds of each loop per round
    measure_chunks: int        # chunks of the timed measure() call
    naive_warm: int            # untimed naive samples before the first round
    naive_min_nets: int        # least naive samples per round
    probe_repeats: int         # matmul probe: best of this many
    sweep: dict[str, dict[int, list[int]]]  # family -> px -> chunk sizes of the sweep
    sweep_chunks: int          # timed chunks per sweep point
    conv_n: int | None         # groups of the kernel probe (None: the cnn 128 px chunk)
    conv_repeats: int          # kernel probe: best of this many
    sampling_numel: int | None  # floats of the normal_ probe (None: one fc 32 px chunk's weights)


@dataclass
class Case:
    """One network of the main table: its chunk, timers and checks."""
    name: str
    px: int
    arch: Arch
    n_default: int             # measure()'s chunk
    n: int                     # the chunk used
    note: str                  # why n differs from n_default ("" if it does not)
    implicit: bool             # measure() samples dense layers implicitly
    wbytes: int                # bytes of drawn weights per network
    check_err: float           # naive logits against ArchEnsemble's: largest relative error
    probe: float               # matmul probe before the case, GFLOP/s
    engine: EngineTimer
    naive: NaiveTimer
    measure: MeasureRun
    ratios: list[float]        # engine / naive rate, per round
    redone: int                # disturbed rounds repeated
    background: float | None   # most cores other processes used in a timed round

    @property
    def label(self) -> str:
        return f"`{self.name}` {self.px} px"

    @property
    def speedups(self) -> tuple[float, float]:
        """The engine's and ``measure()``'s rate over the naive loop's."""
        return self.engine.rate / self.naive.rate, self.measure.rate / self.naive.rate

    @property
    def passes(self) -> bool:
        return min(self.speedups) >= SPEEDUP_REQUIRED


@dataclass
class CpuProbes:
    """What only a CPU run measures: the chunk-size sweep, the kernels, the weight sampler."""
    malloc_kept: bool                    # keep_freed_memory() took effect
    sweep: list[tuple[Case, list[SweepPoint]]]
    sweep_chunks: int
    convs: list[ConvShape]
    conv_bound: ConvBound
    conv_repeats: int
    conv_background: float | None
    sampling: dict
    sampling_background: float | None


@dataclass
class Run:
    quick: bool
    device: torch.device
    device_arg: str                      # --device as given
    quiet_threshold: float               # --quiet
    quiet_waited: float                  # seconds waited for a quiet machine
    cfg: Config
    info: str                            # machine_info(), plus the GPU
    threads: int
    load_start: str
    load_end: str
    elapsed: float
    cases: list[Case]
    probes: list[float]                  # matmul probes: one per case, one at the end
    cpu: CpuProbes | None

    @property
    def attainable(self) -> float:
        return max(self.probes)

    def case(self, name: str, px: int) -> Case:
        return next(c for c in self.cases if c.name == name and c.px == px)


# -- formatting -------------------------------------------------------------------------------------

def fmt_seconds(t: float) -> str:
    if t >= 100:
        return f"{t:,.0f} s"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def fmt_cores(c: float | None) -> str:
    return "?" if c is None else f"{c:.2f}"


def _status(run: Run, case: Case) -> str:
    status = QUICK_STATUS if run.quick else ("**PASS**" if case.passes else "**FAIL**")
    if _disturbed(run, case):
        status += f" (disturbed: other processes used {case.background:.2f} cores)"
    return status


def _disturbed(run: Run, case: Case) -> bool:
    return case.background is not None and case.background >= run.quiet_threshold


def _one(values: set) -> str:
    return "/".join(str(v) for v in sorted(values))


def _describe(arch: Arch) -> str:
    """The network's shape, read from ``arch``: width and depth, or channels, padding, downsampling."""
    convs = [s for s in arch.stages if s.is_conv]
    if not convs:
        hidden = [s for s in arch.stages if s.is_dense and s.kind == "relu"]
        return f"width {_one({s.channels for s in hidden})}, depth {len(hidden)}"
    parts = [f"{_one({s.channels for s in convs})} channels", f"{_one({s.padding for s in convs})} padding"]
    if any(max(s.stride) > 1 for s in convs):
        parts.append("stride downsampling")
    return ", ".join(parts)


# -- tables -----------------------------------------------------------------------------------------

def _main_row(run: Run, c: Case) -> dict:
    fl = flops_per_sample(c.arch)
    gflops = c.engine.rate * fl / 1e9
    speedup, speedup_m = c.speedups
    return {
        "case": c.label, "d": c.arch.d, "chunk n": f"{c.n}" + (f" ({c.note})" if c.note else ""),
        "MFLOP/sample": fl / 1e6,
        "engine samples/s": c.engine.rate, "measure() samples/s": c.measure.rate, "naive samples/s": c.naive.rate,
        "speed-up vs naive (engine / measure())": f"{speedup:.2f}x / {speedup_m:.2f}x",
        f">= {SPEEDUP_REQUIRED:g}x naive": _status(run, c),
        "engine GFLOP/s": gflops,
        f"fraction of attainable (target {ATTAINABLE_TARGET * 100:g} %)": f"{gflops / run.attainable:.1%}",
        "background (cores)": fmt_cores(c.background),
    }


def _requirement_rows(run: Run, c: Case) -> list[dict]:
    speedup, speedup_m = c.speedups
    gflops = c.engine.rate * flops_per_sample(c.arch) / 1e9
    frac = gflops / run.attainable
    rows = [{"case": c.label, "requirement": f"required: >= {SPEEDUP_REQUIRED:g}x the naive loop",
             "measured": f"engine {speedup:.2f}x (rounds {min(c.ratios):.2f}-{max(c.ratios):.2f}), "
                         f"measure() {speedup_m:.2f}x",
             "status": _status(run, c)}]
    if run.cpu is not None and c is run.case("cnn", 128):
        bound, naive = run.cpu.conv_bound, c.naive.rate
        best_ratio = bound.best_rate / naive
        rows.append({"case": c.label, "requirement": "bound: the convolution kernels alone (table at the end)",
                     "measured": f"at most {bound.rate:.0f} samples/s = {bound.rate / naive:.2f}x the naive loop "
                                 f"({best_ratio:.2f}x with the faster kernel per shape), before any "
                                 "ReLU, loss, sampling or Python work",
                     "status": (f"{SPEEDUP_REQUIRED:g}x out of reach" if best_ratio < SPEEDUP_REQUIRED else
                                f"{SPEEDUP_REQUIRED:g}x would leave {1 - SPEEDUP_REQUIRED / best_ratio:.0%} of the "
                                "chunk time for everything but the convolutions")})
    rows.append({"case": c.label, "requirement": f"target: >= {ATTAINABLE_TARGET:.0%} of the attainable rate",
                 "measured": f"{frac:.1%} ({gflops:.1f} of {run.attainable:.0f} GFLOP/s)",
                 "status": "target met" if frac >= ATTAINABLE_TARGET else "target not met"})
    return rows


def _detail_row(c: Case) -> dict:
    eng, tot = c.engine, c.engine.seconds
    shares = dict(zip(PHASES, ("resample (normal_)", "input draw", "forward", "2 backward")))
    return {
        "case": c.label, "chunk n": c.n,
        "weights/chunk": f"{c.n * c.wbytes / 2**20:,.0f} MiB",
        "time/chunk": fmt_seconds(tot / eng.chunks),
        **{column: f"{eng.phases[phase] / tot:.0%}" for phase, column in shares.items()},
        "minor page faults/chunk": round(eng.faults / eng.chunks),
        "warm-up chunk": fmt_seconds(eng.warmup),
        "measure() time vs raw loop": f"{eng.rate / c.measure.rate - 1:+.0%}",
        "naive: share building the net": f"{c.naive.init / c.naive.seconds:.0%}",
        "E‖∇f‖² (measure())": f"{c.measure.grad_sq[0]:.3f} ± {c.measure.grad_sq[1]:.3f}",
    }


def sweep_rows(case: Case, points: list[SweepPoint]) -> list[dict]:
    """The chunk-size sweep of ``case``'s network, against its naive rate and measure()'s chunk."""
    largest = largest_activation(case.arch)
    return [{"case": case.label,
             "chunk n": f"{p.n}" + (" (measure()'s default)" if p.n == case.n_default else ""),
             "largest activation": f"{p.n * largest * 4 / 2**20:,.1f} MiB",
             "samples/s": p.rate, "vs naive": f"{p.rate / case.naive.rate:.2f}x",
             "minor page faults/chunk": round(p.faults_per_chunk),
             "page faults/sample": round(p.faults_per_chunk / p.n),
             "background (cores)": None if p.background is None else round(p.background, 2)}
            for p in points]


def _conv_rows(shapes: list[ConvShape]) -> list[dict]:
    rows = []
    for c in shapes:
        t = c.seconds
        rows.append({
            "conv": f"{c.c_in}->{c.c_out} ch, {c.kernel[0]}x{c.kernel[1]}, stride {c.stride[0]}, "
                    f"dilation {c.dilation[0]}, {c.px_in}->{c.px_out} px",
            "stages": c.stages,
            "forward": fmt_seconds(t["forward"]),
            "input gradient (torch backward)": fmt_seconds(t["grad"]),
            "input gradient (flipped forward conv)": "–" if math.isinf(t["flipped"]) else fmt_seconds(t["flipped"]),
            "forward GFLOP/s": FLOP_PER_MAC * c.macs / t["forward"] / 1e9,
            "forward + gradient GFLOP/s": 2 * FLOP_PER_MAC * c.macs / t["channels_last"] / 1e9,
            "forward + gradient, NCHW": fmt_seconds(t["NCHW"]),
            "NCHW / channels_last": f"{t['NCHW'] / t['channels_last']:.2f}",
        })
    return rows


# -- prose ------------------------------------------------------------------------------------------

def _intro(run: Run) -> str:
    cpu = run.device.type == "cpu"
    script = "python benchmarks/bench_empirical.py" + ("" if cpu else f" --device {run.device_arg}")
    mode = f"`{script} --quick` (smoke-test sizes, not the measurement)" if run.quick else f"`{script}`"
    return (
        f"Generated by {mode} in {run.elapsed:.0f} s on the {run.device.type.upper()}. Machine: {run.info}; "
        f"{run.threads} torch threads. 1-minute load average {run.load_start} at the start, {run.load_end} at the "
        f"end. Before every timed round the script waited for other processes to use < {run.quiet_threshold:g} "
        f"cores ({run.quiet_waited:.0f} s waited in all, {sum(c.redone for c in run.cases)} disturbed round(s) "
        "repeated); *background* is the most that other processes used during a timed round of that case (a core "
        "busy with other work slows every parallel torch op by a scheduler time slice, so disturbed numbers can be "
        "far worse). Wall-clock `time.perf_counter`.")


def _definitions(run: Run) -> list[str]:
    cpu, cfg = run.device.type == "cpu", run.cfg
    families: dict[str, Arch] = {}
    for c in run.cases:                                             # described by its first case
        families.setdefault(c.name, c.arch)
    networks = " and ".join(f"`make_arch(\"{name}\", px)` ({_describe(arch)})" for name, arch in families.items())
    dense = ("dense layers drawn implicitly, exactly in law, see below" if all(c.implicit for c in run.cases)
             else "dense layers drawn as `measure()` chooses, see below")
    size = f"{PROBE_SIZE}x{PROBE_SIZE}"
    return [
        f"One *sample* is one network drawn fresh (new He weights; {dense}) evaluated on one input x ~ N(0, I) with "
        "the input gradients of one logit and of the cross-entropy loss (a forward and two backward "
        f"passes): what `measure()` does per network with its default options. Networks: {networks}, float32, "
        f"{'CPU' if cpu else 'GPU (no TF32, deterministic algorithms)'}.",
        "",
        "- *engine*: the inner loop of `measure()` on one preallocated `ArchEnsemble(arch, n, implicit_dense=...)` "
        "(`resample`, input draw, forward, two `torch.autograd.grad`), after one warm-up chunk; "
        f"{cfg.rounds} round(s) of at least {cfg.round_seconds:g} s, alternating with the naive loop. "
        "*n* and the dense-layer sampling are what `measure()` chooses (`initstats.empirical.measure.plan`) unless "
        "stated. *measure()*: "
        f"`measure(arch, MeasureOptions(nets={cfg.measure_chunks}*n, chunk=n, device=\"{run.device}\"))` end to end "
        "after a one-chunk warm-up call (it also allocates its ensemble, reduces the statistics in float64 and "
        "copies them to numpy).",
        "- *naive*: a Python loop, per sample a fresh `nn.Sequential` of `nn.Linear`/`nn.Conv2d`/`nn.ReLU` "
        "(`torch.nn.utils.skip_init`, then `nn.init.kaiming_normal_`; no bias; zero padding by "
        "`nn.Conv2d(padding=...)`; weights without `requires_grad`), one input, the same two gradients. "
        "Checked once per case: with a 1-network `ArchEnsemble`'s weights copied in, its logits equal "
        "the engine's (max relative error " + ", ".join(f"{c.check_err:.0e}" for c in run.cases) + ").",
        f"- *attainable*: best of {cfg.probe_repeats} float32 {size} @ {size} `torch.mm`, probed before "
        f"each case and at the end ({', '.join(f'{p:.0f}' for p in run.probes)} GFLOP/s); the best, "
        f"{run.attainable:.0f} GFLOP/s, is used. *MFLOP/sample* counts {FLOP_PER_MAC} FLOPs per multiply-accumulate "
        "of every conv and dense layer as a dense implementation computes it (zero-padded taps included), for the "
        "forward pass and for each of the two backward passes, which compute only the data gradient (the weights "
        f"need no gradient) and so cost the forward MACs again: {FLOP_PER_MAC * PASSES} x forward MACs. ReLU, "
        "softmax and random numbers are not counted.",
    ]


def _requirements(run: Run) -> list[str]:
    disturbed = [c.label for c in run.cases if _disturbed(run, c)]
    warning = [f"**Disturbed measurement**: other processes used >= {run.quiet_threshold:g} cores during timed "
               f"rounds of {', '.join(disturbed)} even after waiting. A busy core slows the engine and the naive "
               "loop by very different factors, so those rates and speed-ups are unreliable: rerun on a quiet "
               "machine.", ""] if disturbed else []
    return [
        "### Requirements",
        "",
        *warning,
        f"Required: >= {SPEEDUP_REQUIRED:g}x the naive loop, by the engine loop and by `measure()`. Target, not a "
        f"requirement: >= {ATTAINABLE_TARGET:.0%} of the attainable float32 rate.",
        "",
        markdown_table([row for c in run.cases for row in _requirement_rows(run, c)]),
    ]


def _dense_choice(run: Run) -> str:
    chosen = "; ".join(f"{c.label}: chunk {c.n_default}, dense layers {'implicit' if c.implicit else 'explicit'}, "
                       f"{c.n * c.wbytes / 2**20:,.1f} MiB of drawn weights per chunk" for c in run.cases)
    return ("`measure()` samples dense layers *implicitly* (`initstats.empirical.implicit`): the "
            "pre-activations `W h` and the products `W^T g` with each backward cotangent are drawn from their "
            "exact joint law, (in + out) random numbers per input and cotangent instead of in x out, so the "
            "statistics are those of explicit weights (tested in `tests/test_implicit.py`). "
            f"Chosen by `measure()`: {chosen}.")


def _sampling(run: Run, probes: CpuProbes) -> str:
    samp, fc32 = probes.sampling, run.case("fc", 32)
    wpn = weights_per_net(fc32.arch)
    return (
        f"Weight sampling: `Tensor.normal_` draws {samp['reused']:.2f} G floats/s into a reused buffer and "
        f"{samp['fresh']:.2f} G floats/s into a fresh tensor (first-touch page faults), on one thread although "
        f"torch has {samp['threads']} ({samp['numel']:,} floats). The same buffer split into "
        f"{samp['threads']} parts, each filled by `normal_` from its own generator in its own Python thread, fills "
        f"at {samp['split']:.2f} G floats/s (other processes used {fmt_cores(probes.sampling_background)} cores "
        "meanwhile). A dense layer with one input per network uses each weight for one multiply-accumulate per "
        f"pass, so drawing the weight matrix caps a loop at {samp['reused'] * 1e9 / wpn:,.0f} samples/s for "
        f"{fc32.label} ({wpn:,} weights per network): the naive loop is bound by it. Instead, " + _dense_choice(run))


def _sweep(run: Run, probes: CpuProbes) -> list[str]:
    return [
        f"Chunk size ({', '.join(run.cfg.sweep)}): the raw engine loop at several *n* (one warm-up chunk, then "
        f"{probes.sweep_chunks} timed); *vs naive* divides by the naive rate of the main table. glibc's default "
        "allocator would serve activations above its mmap threshold with fresh mappings and trim freed memory, "
        "so their pages would fault again in every chunk; `measure()` and this script raise both thresholds "
        "(`initstats.empirical.common.keep_freed_memory`; "
        + ("applied in this run" if probes.malloc_kept else "**not applied in this run**: not glibc or opted out") +
        "), so only activations above the raised mmap threshold still fault.",
        "",
        markdown_table([row for case, points in probes.sweep for row in sweep_rows(case, points)]),
    ]


def _kernels(run: Run, probes: CpuProbes) -> list[str]:
    cnn = run.case("cnn", 128)
    bound, eng = probes.conv_bound, cnn.engine
    ratio, best_ratio = bound.rate / cnn.naive.rate, bound.best_rate / cnn.naive.rate
    channels = _one({s.channels for s in cnn.arch.stages if s.is_conv})
    verdict = (f"Even the second bound is short of {SPEEDUP_REQUIRED:g}x." if best_ratio < SPEEDUP_REQUIRED else
               f"At {SPEEDUP_REQUIRED:g}x the second bound would leave {1 - SPEEDUP_REQUIRED / best_ratio:.0%} of a "
               "chunk for everything but the convolutions; that work takes "
               f"{max(0.0, 1 - bound.engine * eng.chunks / eng.seconds):.0%} of the engine's chunk now.")
    return [
        f"### Convolution kernels of {cnn.label}: how fast the engine could be",
        "",
        f"Each distinct grouped convolution of {cnn.label} (n = {bound.n} groups, batch 1, input in channels_last "
        f"as `ArchEnsemble` runs it), best of {probes.conv_repeats}, timed in isolation (other processes used "
        f"{fmt_cores(probes.conv_background)} cores meanwhile): the forward `F.conv2d`; the input gradient through "
        "torch's backward kernels (autograd, what the engine runs; forward + gradient minus forward); for "
        "stride-1 layers the same input gradient computed instead as a forward convolution with the flipped, "
        "transposed kernel (checked equal; an alternative kernel for the same linear map); and forward + "
        "gradient in contiguous NCHW, which `ArchEnsemble` avoids. *stages*: how many layers of the network "
        "have that shape.",
        "",
        f"A sample needs a forward and two input-gradient passes, so the convolution kernels alone take "
        f"{fmt_seconds(bound.engine)} per chunk of {bound.n}: at most **{bound.rate:.0f} samples/s, {ratio:.2f}x the "
        f"naive loop** of the main table, before any ReLU, loss, weight sampling or Python work; taking the "
        f"faster of the two gradient kernels for every shape, {bound.best_rate:.0f} samples/s, "
        f"{best_ratio:.2f}x. The engine runs at {eng.rate / bound.rate:.0%} of the first bound; "
        "the rest of its chunk is ReLU and its backward, the loss, weight and input sampling, and Python. "
        "The naive loop is not slow at this size: each of its convolutions is already a large oneDNN call "
        f"(batch 1, {channels} channels, {cnn.px}x{cnn.px} px), so batching networks adds little, and both do the "
        f"same FLOPs (MFLOP/sample above). {verdict}",
        "",
        markdown_table(_conv_rows(probes.convs)),
    ]


def render(run: Run) -> str:
    """The section ``empirical`` (``empirical-cuda`` off the CPU) of docs/benchmarks.md for ``run``."""
    cpu = run.cpu
    if cpu is None:
        dense = _dense_choice(run)
        extras = [dense[0].upper() + dense[1:]]
    else:
        extras = [_sampling(run, cpu), "", *_sweep(run, cpu), "", *_kernels(run, cpu)]
    return "\n".join([
        "## Empirical engine (batched Monte Carlo)" + ("" if run.device.type == "cpu" else
                                                        f", {run.device.type.upper()}"),
        "",
        _intro(run),
        "",
        *_definitions(run),
        "",
        markdown_table([_main_row(run, c) for c in run.cases]),
        "",
        *_requirements(run),
        "",
        "### Where the engine's time goes",
        "",
        "Shares of the engine loop's time per phase, minor page faults per chunk (`getrusage`), the first "
        "(warm-up) chunk including the allocation of the weights, how much slower per sample `measure()` is "
        "than the raw loop, and the naive loop's share spent building and initialising its network.",
        "",
        markdown_table([_detail_row(c) for c in run.cases]),
        "",
        *extras,
    ])
