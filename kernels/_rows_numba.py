"""Row helpers of the softmax family on the CPU (Numba): the serial-or-parallel choice that
softmax, log_softmax, cross_entropy and soft_cross_entropy share, and the stable row
maximum and log-sum-exp of log_softmax and the cross-entropies.

Parallel strategy of every row kernel: rows are independent; one loop iteration computes
one row while it sits in L1. Inputs below ``PARALLEL_MIN`` logits run a serial loop: the
article's 32..256 × 10 logits take less time than a parallel region costs, and on a busy
machine OpenMP's spin-waiting made the ``prange`` version slower, not faster. It is kept
for inputs of ≥ 2¹⁸ logits, where its fixed cost is noise and a free core halves the time
(timings: benchmarks/NOTES.md, item 27). Arithmetic in float64 for every dtype.

math: see SPEC (kernels/log_softmax/__init__.py for row_max_logsum).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["PARALLEL_MIN", "run_rows", "map_rows", "row_max_logsum"]

#: From this many logits on, rows are split between threads (see the module docstring).
#: Each family imports it, so a test can lower one family's threshold alone.
PARALLEL_MIN = 1 << 18


def run_rows(rows, parallel, parallel_min, size, *arrays):
    """rows(*arrays, 0, M) (M = len of the first array) when ``size`` < parallel_min, else
    parallel(*arrays): a row kernel's serial and prange forms fill the same outputs."""
    if size < parallel_min:
        rows(*arrays, 0, arrays[0].shape[0])
    else:
        parallel(*arrays)


def map_rows(rows, parallel, parallel_min, *inputs):
    """out = a new array like the last of the (M, K) inputs, filled by ``run_rows``: the
    element-wise row families (softmax, log_softmax)."""
    last = inputs[-1]
    out = np.empty_like(last)
    run_rows(rows, parallel, parallel_min, last.size, *inputs, out)
    return out


@njit(cache=True)
def row_max_logsum(x, i):
    """Row maximum m and L = log Σ_k exp(x[i, k] − m) of row i of x, both float64, with L
    computed as log1p(Σ_{x<m} exp(x − m) + (ties − 1)) (see SPEC)."""
    K = x.shape[1]
    m = -np.inf
    for k in range(K):
        v = np.float64(x[i, k])
        # a NaN takes over and stays, as in the reference's x.max(): max(m, v) would keep
        # m when v is NaN, and the row's other entries would come out finite
        m = v if (v > m) | (v != v) else m
    below = 0.0  # Σ_{x<m} exp(x − m); the ties at m each add exp(0) = 1
    ties = 0
    for k in range(K):
        v = np.float64(x[i, k])
        if v < m:
            below += np.exp(v - m)
        elif v == m:
            ties += 1
    return m, np.log1p(below + (ties - 1))  # log Σ_k exp(x − m), accurate when L ≈ 0
