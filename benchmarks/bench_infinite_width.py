"""Benchmark of the infinite-width prediction (:func:`initstats.empirical.infinite_width.infinite_width`).

Usage::

    python benchmarks/bench_infinite_width.py            # full measurement, writes docs/benchmarks.md
    python benchmarks/bench_infinite_width.py --quick    # 8 and 16 px only (seconds), smoke test

Cost grows with the number of position pairs: the forward kernel holds (positions)^2 pairs per
stage, and the derivative terms, per computed input coordinate, positions x box and box^2 entries
(the box: the positions the coordinate reaches).  *work* (``infinite_width._work``) is that
count summed over stages and coordinates.  Each case runs in its own process so that its peak
resident memory is its own; the baseline on one torch thread, the defaults on torch's default
threads (what a user gets).

Two measurements per case: the baseline, every input coordinate of one input (zero padding has
them all to compute; circular padding is shift-invariant and one cell, the product of the strides
per axis, serves all), and the defaults, ``with_infinite_width`` with ``--inputs`` inputs as
``verify``/``graph --infinite-width`` run it: the exact annealed value where no gates merge, else
the recursion on all coordinates or on the systematic sample ``coordinates="auto"`` picks.
Baselines whose work exceeds ``--max-work`` are not run: their time is extrapolated linearly in
work from the largest run of the same family (marked).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import benchmark_parser, load_average, machine_info, markdown_table, publish  # noqa: E402

from initstats.empirical import infinite_width as iw  # noqa: E402
from initstats.families import make_arch  # noqa: E402

SECTION = "infinite-width"

CHILD = """
import json, resource, sys, time, torch
if sys.argv[4] == "all":
    torch.set_num_threads(1)
from initstats.empirical.infinite_width import infinite_width
from initstats.exact import analyse
from initstats.families import make_arch
from initstats.infinite import with_infinite_width
fam, px, padding, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
arch = make_arch(fam, px, padding=padding)
t = time.perf_counter()
if mode == "all":
    res = infinite_width(arch, n_inputs=1, seed=0, coordinates="all")
    total, se = res.grad_sq_total, None
else:
    out = with_infinite_width(analyse(arch), arch, n_inputs=int(mode)).outputs[0]
    total, se = out.grad_sq_infinite_width, out.grad_sq_infinite_width_se
sec = time.perf_counter() - t
print(json.dumps({"seconds": sec, "total": total, "se": se,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def work(arch) -> tuple[int, float, int]:
    """(input coordinates per input, work units of all of them, the default's sample step)."""
    period = iw._period(arch)
    cell = period if period is not None else iw._spatial2(arch.input_shape)
    geos, _ = iw._geometry(arch, (np.arange(cell[0]), np.arange(cell[1])))
    coords = arch.input_shape[0] * cell[0] * cell[1]
    return coords, iw._work(geos, coords), iw._sample_stride("auto", arch.input_shape[0], cell, geos)


def torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def run_case(fam: str, px: int, padding: str, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, fam, str(px), padding, mode], capture_output=True, text=True,
                          timeout=3600, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"{fam} {px} px {padding}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "8 and 16 px only (seconds), for smoke tests")
    ap.add_argument("--max-work", type=float, default=2e9,
                    help="run all coordinates only if their work (see the module docstring) is below this (default 2e9)")
    ap.add_argument("--inputs", type=int, default=8, help="inputs of the default run (default 8, the library's)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sizes = (8, 16) if args.quick else (16, 32, 64)
    load_start = load_average()
    t0 = time.perf_counter()
    info = machine_info()
    log(info)
    rows, defaults = [], []
    rate: dict[tuple[str, str], float] = {}
    for padding in ("zero", "circular"):
        for fam in ("cnn", "cnn-avgpool"):
            for px in sizes:
                arch = make_arch(fam, px, padding=padding)
                coords, units, step = work(arch)
                row = {"family": fam, "padding": padding, "px": px, "positions": math.prod(arch.input_shape[1:]),
                       "position pairs": max(math.prod(s.shape[1:]) for s in arch.stages) ** 2,
                       "coordinates per input": coords, "work": units}
                if units <= args.max_work:
                    out = run_case(fam, px, padding, "all")
                    rate[fam, padding] = out["seconds"] / units
                    row.update({"time per input": f"{out['seconds']:.3g} s", "peak memory (MiB)": out["peak_mib"],
                                "E‖∇f‖² (1 input)": out["total"], "measured": "yes"})
                    log(f"{fam} {padding} {px} all: {out['seconds']:.2f} s, {out['peak_mib']:.0f} MiB")
                else:
                    est = rate.get((fam, padding), float("nan")) * units
                    row.update({"time per input": f"~{est:.3g} s", "peak memory (MiB)": None,
                                "E‖∇f‖² (1 input)": None, "measured": "no: extrapolated linearly in work"})
                    log(f"{fam} {padding} {px} all: not run (work {units:.3g}), ~{est:.0f} s")
                rows.append(row)
                out = run_case(fam, px, padding, str(args.inputs))
                method = ("exact annealed engine (no merge)" if iw.equals_annealed(arch) else
                          "recursion, all coordinates" if step == 1 else f"recursion, 1 in {step * step} coordinates")
                rel = None if out["se"] is None else out["se"] / out["total"]
                defaults.append({"family": fam, "padding": padding, "px": px, "method": method,
                                 "time": f"{out['seconds']:.3g} s", "E‖∇f‖²": out["total"],
                                 "relative SE": "exact" if rel is None else f"{rel:.2%}",
                                 "peak memory (MiB)": out["peak_mib"]})
                log(f"{fam} {padding} {px} default: {out['seconds']:.2f} s ({method})")
    elapsed = time.perf_counter() - t0
    seconds = {(d["family"], d["padding"], d["px"]): float(d["time"].split()[0]) for d in defaults}
    mode = ("`python benchmarks/bench_infinite_width.py --quick` (smoke-test sizes, not the measurement)"
            if args.quick else "`python benchmarks/bench_infinite_width.py`")
    verdict = ", ".join(f"{f} {p} {px} px: {v:.3g} s" for (f, p, px), v in seconds.items() if px >= 32)
    md = "\n".join([
        "## Infinite-width prediction (NNGP kernel recursion over position pairs)",
        "",
        f"Generated by {mode} in {elapsed:.0f} s. Machine: {info}. 1-minute load average {load_start} at the "
        f"start, {load_average()} at the end. Float64; each case in its own process (peak resident memory of "
        "that process, including the interpreter and torch).",
        "",
        "Cost: the forward kernel holds (positions)^2 *position pairs* per stage; per computed input coordinate "
        "the derivative covariances hold positions x box and box^2 entries (the box: the positions a "
        "coordinate reaches). *work* sums these over stages. Zero padding has every coordinate to compute; "
        "circular padding is shift-invariant, so one cell (3 channels x 8 x 8 positions, the product of the "
        "strides) serves all.",
        "",
        "**All coordinates, one input** (`infinite_width(arch, n_inputs=1, coordinates='all')`, one torch thread; "
        "the baseline):",
        "",
        markdown_table(rows),
        "",
        f"**The defaults** (`with_infinite_width(analyse(arch), arch, n_inputs={args.inputs})`, what `initstats "
        f"verify/graph --infinite-width {args.inputs}` run, the exact analysis included, torch's default threads, "
        f"{torch_threads()} here): where no average pool "
        "merges gates after a ReLU (`cnn`) the value is the exact annealed path sum, taken from the exact engine; "
        "otherwise the recursion, on all coordinates when they fit `AUTO_WORK`, else on a systematic sample "
        "whose error is in the standard error (over inputs):",
        "",
        markdown_table(defaults),
        "",
        f"Time of the defaults at 32 and 64 px ({args.inputs} inputs): {verdict}.",
    ])
    publish(args, SECTION, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
