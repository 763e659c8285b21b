#!/usr/bin/env bash
# The CUDA kernels on the host emulator (tests/cuda_host.py) built with AddressSanitizer: a
# kernel that reads or writes past an array, global or __shared__, stops with a report
# naming the kernel and the line (in the kept host_*.cpp of the cache), even where the
# stray value never reaches a result. Not part of the default suite (about twice as slow);
# run it after changing a CUDA source:
#
#     bash tests/asan_check.sh [pytest arguments]
#
# Needs g++ with libasan (skips, saying so, without). Exits non-zero on a failed test or on
# any report.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
libasan=$(g++ -print-file-name=libasan.so 2>/dev/null || true)
if [ ! -f "$libasan" ]; then
    echo "asan_check: skipped: no g++ with libasan here"
    exit 0
fi
reports=$(mktemp -d)
export MINIMTL_CUDA_HOST_ASAN=1
export MINIMTL_CUDA_HOST_CACHE=${MINIMTL_CUDA_HOST_CACHE:-build/cuda_host_asan}
export ASAN_OPTIONS=detect_leaks=0:log_path=$reports/asan
LD_PRELOAD=$libasan "$py" -m pytest -q -p no:cacheprovider \
    tests/kernels tests/train/test_cupy_path_on_host.py -k "cuda_host or host" "$@"
status=$?
# (ASan also logs a warning that it does not fully follow swapcontext, which the
# emulator's fibers use; only its error reports count)
if compgen -G "$reports/asan.*" > /dev/null && grep -q "ERROR: AddressSanitizer" "$reports"/asan.*; then
    cat "$reports"/asan.*
    echo "asan_check: AddressSanitizer reports above"
    exit 1
fi
[ $status -eq 0 ] && echo "asan_check: no AddressSanitizer report"
exit $status
