#!/usr/bin/env bash
# The GPU checks of initstats in one run, for a machine with a CUDA GPU and a CUDA build of torch
# (plus numpy, scipy, pandas, networkx, seaborn, typer, rich, pytest, hypothesis), from the
# repository root, without installing the package:
#
#   OUT=results/ bash benchmarks/device_check.sh
#
# 1. `pytest -m gpu` (the tests that skip without a GPU);
# 2. the main job at the paper's width on the GPU:
#    initstats verify --arch cnn --dims 32,64,128,256 --channels 64 --device cuda --format json;
# 3. python benchmarks/bench_empirical.py --device cuda (section `empirical-cuda`), written to
#    $OUT/bench-cuda.md; copy that section into docs/benchmarks.md to record it.
# 4. with WITH_REPORT=1, also initstats report --profile full (64 channels; REPORT_LIMIT seconds,
#    default 480), its docs tree packed into $OUT/report-full.tgz.
# Results go to $OUT (default device-check/), at most 8 files.  Each step has its own time limit
# (STEP_LIMIT seconds, default 240); the script goes on after a failing step and exits 1 if any
# failed.  DEVICE=cpu QUICK=1 runs the same steps small on a CPU (a check of the script itself).
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-check}
DEVICE=${DEVICE:-cuda}
LIMIT=${STEP_LIMIT:-240}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
failed=0
step() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

step "0. the machine"
{ nvidia-smi 2>&1 || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt" >&2

step "1. GPU tests"
if [ "$DEVICE" = cpu ]; then marker="gpu or not gpu" tests="tests/test_empirical.py"; else marker=gpu tests=tests; fi
timeout "$LIMIT" $PY -m pytest -m "$marker" -q -p no:cacheprovider "$tests" > "$OUT/pytest-gpu.txt" 2>&1 || failed=1
tail -3 "$OUT/pytest-gpu.txt" >&2

step "2. the main job, 64 channels, on $DEVICE"
if [ -n "${QUICK:-}" ]; then job=(--arch cnn --dims 32,64 --channels 4); else job=(--arch cnn --dims 32,64,128,256 --channels 64); fi
/usr/bin/env time -p timeout "$LIMIT" $PY -m initstats verify "${job[@]}" --device "$DEVICE" --format json \
    > "$OUT/verify-cnn64.json" 2> "$OUT/verify-cnn64.log" || failed=1
tail -4 "$OUT/verify-cnn64.log" >&2

step "3. benchmark on $DEVICE"
timeout "$LIMIT" $PY benchmarks/bench_empirical.py --device "$DEVICE" --max-wait 10 ${QUICK:+--quick} \
    --doc "$OUT/bench-cuda.md" > /dev/null 2> "$OUT/bench-cuda.log"
rc=$?
[ $rc -le 1 ] || failed=1  # 1: a speed requirement failed, which the table says; anything else: broken
tail -3 "$OUT/bench-cuda.log" >&2

if [ -n "${WITH_REPORT:-}" ]; then
    profile=full; [ -z "${QUICK:-}" ] || profile=quick
    step "4. initstats report --profile $profile on $DEVICE"
    rm -rf "${TMPDIR:-/tmp}/initstats-report-full"
    timeout "${REPORT_LIMIT:-480}" $PY -m initstats report --profile $profile --device "$DEVICE" \
        --out "${TMPDIR:-/tmp}/initstats-report-full" > "$OUT/report-full.log" 2>&1 || failed=1
    tar czf "$OUT/report-full.tgz" -C "${TMPDIR:-/tmp}" initstats-report-full 2>> "$OUT/report-full.log" || failed=1
    tail -2 "$OUT/report-full.log" >&2
fi

step "done (failed=$failed)"
exit $failed
