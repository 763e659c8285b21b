#!/usr/bin/env bash
# one-shot GPU check: every test file's gpu tests in parallel (a crash in one file does not
# hide the others), then a conv probe under compute-sanitizer
export PYTHONPATH=. MINIMTL_REQUIRE_GPU=1 PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE=dev
O=/tmp/glogs; mkdir -p $O; R=${1:-/tmp/out}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $O/gpu.txt 2>&1
python3 -c "import cupy; print(cupy.__version__)" >> $O/gpu.txt 2>&1
for f in tests/kernels/test_*.py tests/stability/test_*.py tests/ops/test_gradcheck_ops.py tests/nn/test_*.py; do
  n=$(basename $f .py)
  ( timeout 170 python3 -m pytest -m gpu -q -x -p no:cacheprovider --timeout 120 $f > $O/t_$n.log 2>&1; echo "rc=$?" >> $O/t_$n.log ) &
done
( timeout 100 compute-sanitizer --tool memcheck python3 gpuprobe/conv_probe.py > $O/conv_sanitizer.log 2>&1; echo "rc=$?" >> $O/conv_sanitizer.log ) &
wait
cat $O/t_*.log | grep -E "passed|failed|rc=|Error|error" | head -80 > $O/summary.txt
tar czf $R/logs.tgz -C $O .; cp $O/summary.txt $R/
for f in $O/t_*.log; do echo "== $(basename $f): $(tail -2 $f | tr '\n' ' ')"; done
tail -30 $O/conv_sanitizer.log
