"""Benchmark of the infinite-width prediction (:func:`initstats.empirical.infinite_width.infinite_width`).

Usage::

    python benchmarks/bench_infinite_width.py            # full measurement, writes docs/benchmarks.md
    python benchmarks/bench_infinite_width.py --quick    # 8 and 16 px only (seconds), smoke test

Cost grows with the number of position pairs: the forward kernel holds (positions)^2 pairs per
stage, and the derivative terms, per computed input coordinate, positions x (receptive box)^2 and
(box)^4.  *work* below is that count summed over stages and computed coordinates.  Each case runs
in its own process (one input ``x``, one torch thread) so that its peak resident memory is its own.
The default ``cnn`` and ``cnn-avgpool`` use zero padding (every input coordinate is computed); with
circular padding the network is shift-invariant and one cell of coordinates (the product of the
strides per axis) is computed per input.  Cases whose work exceeds ``--max-work`` are not run:
their time is extrapolated linearly in work from the largest run of the same family (marked).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import benchmark_parser, load_average, machine_info, markdown_table, publish  # noqa: E402

from initstats.empirical import infinite_width as iw  # noqa: E402
from initstats.families import make_arch  # noqa: E402

SECTION = "infinite-width"
TARGET_S = 10.0

CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads(1)
from initstats.empirical.infinite_width import infinite_width
from initstats.families import make_arch
fam, px, padding = sys.argv[1], int(sys.argv[2]), sys.argv[3]
arch = make_arch(fam, px, padding=padding)
t = time.perf_counter()
res = infinite_width(arch, n_inputs=1, seed=0)
sec = time.perf_counter() - t
print(json.dumps({"seconds": sec, "total": res.grad_sq_total, "pairs": res.position_pairs,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def work(arch) -> tuple[int, int]:
    """(computed input coordinates, work units: sum over stages of coordinates x (N S^2 + S^4) plus N^2)."""
    period = iw._period(arch)
    n_in = iw._spatial2(arch.input_shape)
    cell = period if period is not None else n_in
    geos, _ = iw._geometry(arch, (list_range(cell[0]), list_range(cell[1])))
    coords = arch.input_shape[0] * cell[0] * cell[1]
    units = sum(coords * (math.prod(g.n) + math.prod(g.size)) * math.prod(g.size) + math.prod(g.n) ** 2
                for g in geos)
    return coords, units


def list_range(n: int):
    import numpy as np
    return np.arange(n)


def run_case(fam: str, px: int, padding: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, fam, str(px), padding], capture_output=True, text=True,
                          timeout=3600, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"{fam} {px} px {padding}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = benchmark_parser(__doc__.split("\n\n")[0], "8 and 16 px only (seconds), for smoke tests")
    ap.add_argument("--max-work", type=float, default=2e9,
                    help="run a case only if its work (see the module docstring) is below this (default 2e9)")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sizes = (8, 16) if args.quick else (16, 32, 64)
    load_start = load_average()
    t0 = time.perf_counter()
    info = machine_info()
    log(info)
    rows = []
    rate: dict[tuple[str, str], float] = {}
    for padding in ("zero", "circular"):
        for fam in ("cnn", "cnn-avgpool"):
            for px in sizes:
                arch = make_arch(fam, px, padding=padding)
                coords, units = work(arch)
                row = {"family": fam, "padding": padding, "px": px, "positions": math.prod(arch.input_shape[1:]),
                       "position pairs": max(math.prod(s.shape[1:]) for s in arch.stages) ** 2,
                       "coordinates computed": coords, "work": float(units)}
                if units <= args.max_work:
                    out = run_case(fam, px, padding)
                    rate[fam, padding] = out["seconds"] / units
                    row.update({"time per input": f"{out['seconds']:.3g} s", "peak memory (MiB)": out["peak_mib"],
                                "E‖∇f‖² (1 input)": out["total"], "measured": "yes"})
                    log(f"{fam} {padding} {px}: {out['seconds']:.2f} s, {out['peak_mib']:.0f} MiB")
                else:
                    est = rate.get((fam, padding), float("nan")) * units
                    row.update({"time per input": f"~{est:.3g} s", "peak memory (MiB)": None,
                                "E‖∇f‖² (1 input)": None, "measured": "no: extrapolated linearly in work"})
                    log(f"{fam} {padding} {px}: not run (work {units:.3g}), ~{est:.0f} s")
                rows.append(row)
    elapsed = time.perf_counter() - t0
    seconds = [float(r["time per input"].lstrip("~").split()[0]) for r in rows]
    met = {(r["family"], r["padding"], r["px"]): s <= TARGET_S for r, s in zip(rows, seconds)}
    mode = ("`python benchmarks/bench_infinite_width.py --quick` (smoke-test sizes, not the measurement)"
            if args.quick else "`python benchmarks/bench_infinite_width.py`")
    verdict = ", ".join(f"{f} {p} {px} px: {'yes' if ok else 'no'}" for (f, p, px), ok in met.items() if px >= 32)
    md = "\n".join([
        "## Infinite-width prediction (NNGP kernel recursion over position pairs)",
        "",
        f"Generated by {mode} in {elapsed:.0f} s. Machine: {info}. 1-minute load average {load_start} at the "
        f"start, {load_average()} at the end. One input x ~ N(0, I) per case, float64, one torch thread, each "
        "case in its own process (peak resident memory of that process, including the interpreter and torch).",
        "",
        "Cost: the forward kernel holds (positions)^2 *position pairs* per stage; per computed input coordinate "
        "the derivative covariances hold positions x box^2 and box^4 entries (the box: the positions a "
        "coordinate reaches). *work* sums these over stages. Zero padding computes every coordinate; circular "
        "padding is shift-invariant, so only one cell (3 channels x 8 x 8 positions, the product of the strides) "
        "is computed per input whatever the size. Averaging over n inputs multiplies the time by n.",
        "",
        markdown_table(rows),
        "",
        f"Within {TARGET_S:.0f} s per input at 32 and 64 px: {verdict}.",
    ])
    publish(args, SECTION, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
