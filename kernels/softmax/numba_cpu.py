"""softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max; the
exponentials, written to y and summed; then y scaled by 1/sum). Each row is read twice and
written twice while it sits in L1. Inputs below PARALLEL_MIN logits run a serial loop: the
article's 32..256 × 10 logits take 2–20 µs, less than a parallel region costs. Measured on
the shared 2-core machine (float32, 4096..262144 rows of 10): the serial loop spends about
10 ns a logit, and the `prange` version gained nothing (the other core was busy) while
OpenMP's spin-waiting made it up to 10 ms slower under load; it is kept for inputs of ≥
2¹⁸ logits (≥ 2.5 ms of serial work), where its fixed cost is noise and a free core halves
the time (map_rows makes that choice, for log_softmax too). Arithmetic in float64 for
every dtype.

math: see SPEC (kernels/softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN", "map_rows"]

#: From this many logits on, rows are split between threads (see the module docstring).
PARALLEL_MIN = 1 << 18


@njit(cache=True)
def _fwd_rows(x, y, start, stop):
    K = x.shape[1]
    for i in range(start, stop):
        m = -np.inf
        for k in range(K):
            m = max(m, np.float64(x[i, k]))
        s = 0.0
        for k in range(K):
            e = np.exp(np.float64(x[i, k]) - m)
            y[i, k] = e  # one exp per element; float32 rounds e, then e/s: ≤ 1 ulp in all
            s += e
        inv = 1.0 / s
        for k in range(K):
            y[i, k] = np.float64(y[i, k]) * inv


@njit(cache=True, parallel=True)
def _fwd_parallel(x, y):
    for i in prange(x.shape[0]):
        _fwd_rows(x, y, i, i + 1)


@njit(cache=True)
def _bwd_rows(gy, y, gx, start, stop):
    K = y.shape[1]
    for i in range(start, stop):
        s = 0.0
        for k in range(K):
            s += np.float64(gy[i, k]) * np.float64(y[i, k])
        for k in range(K):
            gx[i, k] = np.float64(y[i, k]) * (np.float64(gy[i, k]) - s)


@njit(cache=True, parallel=True)
def _bwd_parallel(gy, y, gx):
    for i in prange(y.shape[0]):
        _bwd_rows(gy, y, gx, i, i + 1)


def map_rows(rows, parallel, parallel_min, *inputs):
    """out = a new array like the last of the (M, K) inputs, filled by a row kernel:
    rows(*inputs, out, 0, M) below parallel_min elements, else parallel(*inputs, out).
    The element-wise row families (softmax, log_softmax) share it; each passes its own
    PARALLEL_MIN."""
    last = inputs[-1]
    out = np.empty_like(last)
    if last.size < parallel_min:
        rows(*inputs, out, 0, last.shape[0])
    else:
        parallel(*inputs, out)
    return out


def fwd(x):
    """y = softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    return map_rows(_fwd_rows, _fwd_parallel, PARALLEL_MIN, x)


def bwd(gy, y):
    """gx = y ⊙ (gy − Σ_k gy·y). gy, y (M, K) -> (gx (M, K),)."""
    return (map_rows(_bwd_rows, _bwd_parallel, PARALLEL_MIN, gy, y),)
