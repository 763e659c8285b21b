#!/usr/bin/env bash
# The Numba kernels compiled serial and bounds-checked (tests/numba_check.py): an index past
# an array's end raises IndexError at the kernel's line in the test that reached it, even
# where the stray value never reaches a result. Not part of the default suite (every
# kernel is compiled afresh, without the cache); run it after changing a numba_cpu.py:
#
#     bash tests/numba_boundscheck.sh [pytest arguments]
#
# Runs the tests with numba in their name or parameters: the kernel tests' numba cases and
# the ops, layers, models, optimizer and training tests on the numba backend.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
export MINIMTL_NUMBA_BOUNDSCHECK=1
"$py" -m pytest -q -p no:cacheprovider tests/kernels tests/ops tests/nn tests/models \
    tests/train tests/optim tests/gradcheck -k "numba" "$@"
