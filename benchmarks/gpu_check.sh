#!/usr/bin/env bash
# GPU check in one short session: the gpu-marked tests, then the GPU benchmarks.
#
#   benchmarks/gpu_check.sh OUTDIR
#
# Runs from a plain checkout (PYTHONPATH=.; minimtl need not be installed) on a machine
# with cupy, a CUDA GPU and (for the comparison) torch. Steps, each bounded by `timeout`:
#  1. every test file's gpu tests, the files in parallel (a crash in one file cannot hide
#     the results of the others), with MINIMTL_REQUIRE_GPU=1 so nothing passes by skipping;
#  2. the training step (cupy and torch/cuDNN) at batch 32, 256 and 4096;
#  3. the main kernels at the same batches, and the device copy bandwidth;
#  4. the step eager and replayed from a CUDA graph, minimtl against PyTorch (and its own
#     graph capture), and the kernel launches of a step counted on the GPU.
# Writes OUTDIR/tests.log, OUTDIR/<gpu>-step.{json,md}, OUTDIR/<gpu>-kernels.{json,md},
# OUTDIR/<gpu>-graphs.{json,md}, OUTDIR/<gpu>-launches.{json,md}.
set -u -o pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH=. PYTHONUNBUFFERED=1 MINIMTL_REQUIRE_GPU=1 HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-dev}
logs=$(mktemp -d)

echo "== 1. gpu tests"
for f in tests/*/test_*.py; do
    n=$(echo "$f" | tr '/' '_')
    ( timeout "${GPU_TEST_TIMEOUT:-150}" python3 -m pytest -m gpu -q -p no:cacheprovider \
        --timeout 120 "$f" > "$logs/$n.log" 2>&1; echo "exit $?" >> "$logs/$n.log" ) &
done
wait
for f in "$logs"/*.log; do
    printf '%-52s %s\n' "$(basename "$f" .log)" "$(grep -E 'passed|failed|error|no tests ran|deselected' "$f" | tail -n 1) $(tail -n 1 "$f")"
done | tee "$out/tests.log"
cat "$logs"/*.log >> "$out/tests.log"
gpu=$(python3 -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); n = p['name']; print((n.decode() if isinstance(n, bytes) else n).replace(' ', '-'))")

echo "== 2. training step"
timeout "${GPU_STEP_TIMEOUT:-100}" python3 -m minimtl.bench --gpu-only --no-kernels --no-probe \
    --name "$gpu-step" --out "$out" 2>&1 | tail -n 25

echo "== 3. kernels"
timeout "${GPU_KERNEL_TIMEOUT:-120}" python3 -m minimtl.bench --gpu-only --no-step --no-probe \
    --budget 0.5 --ops conv1d_relu,conv1d_relu_maxpool,maxpool1d,avgpool1d,lstm,gru,rnn,softmax,cross_entropy \
    --name "$gpu-kernels" --out "$out" 2>&1 | tail -n 45

echo "== 4. CUDA-graph replay and launches"
timeout "${GPU_GRAPH_TIMEOUT:-120}" python3 benchmarks/gpu_graph_step.py \
    --out "$out/$gpu-graphs.json" 2>&1 | tail -n 5
timeout "${GPU_LAUNCH_TIMEOUT:-60}" python3 benchmarks/launch_count.py --device \
    --out "$out/$gpu-launches.json" 2>&1 | head -n 4
