#!/usr/bin/env bash
# GPU check: the gpu-marked tests, then the GPU benchmarks, then a short summary.
#
#   benchmarks/gpu_check.sh OUTDIR [extra options for minimtl.bench]
#
# Runs from a plain checkout (minimtl need not be installed: PYTHONPATH=.). Writes
# OUTDIR/gpu_tests.log, OUTDIR/bench.log (progress) and OUTDIR/<gpu-name>.json/.md.
# Each step is bounded with `timeout` (GPU_TEST_TIMEOUT, GPU_BENCH_TIMEOUT seconds) so the
# whole script ends within about 7 minutes. Exit status: 0 only if both steps passed.
set -u -o pipefail

out=${1:?usage: benchmarks/gpu_check.sh OUTDIR [bench options]}
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1

echo "== gpu tests (at most ${GPU_TEST_TIMEOUT:=240} s)"
PYTHONPATH=. MINIMTL_REQUIRE_GPU=1 timeout "$GPU_TEST_TIMEOUT" \
    python3 -m pytest -m gpu -q -x -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log"
tests_rc=$?

echo "== gpu benchmarks (at most ${GPU_BENCH_TIMEOUT:=150} s)"
PYTHONPATH=. timeout "$GPU_BENCH_TIMEOUT" \
    python3 -m minimtl.bench --gpu-only --out "$out" "$@" 2>"$out/bench.log" >/dev/null
bench_rc=$?
tail -n 5 "$out/bench.log"

echo "== summary"
echo "gpu tests: exit $tests_rc ($(grep -v '^\s*$' "$out/gpu_tests.log" | tail -n 1))"
echo "benchmarks: exit $bench_rc$([ "$bench_rc" = 124 ] && echo ' (timed out)')"
for f in "$out"/*.json; do
    [ -e "$f" ] && PYTHONPATH=. python3 -m minimtl.bench --summary "$f"
done
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
