"""log_softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, then
the sum of exponentials below the max and the count of ties, in row_max_logsum, which the
cross-entropy kernels share; then the write). Each row is read three times while it sits
in L1 and written once, contiguously. Inputs below PARALLEL_MIN logits run a serial loop
(the choice is softmax's map_rows, kernels/softmax/numba_cpu.py): the article's 32..256 ×
10 logits take 2–20 µs, less than a parallel region costs. Measured on the shared 2-core
machine (float32, 4096..262144 rows of 10): the serial loop spends about 10 ns a logit,
and the `prange` version gained nothing (the other core was busy) while OpenMP's
spin-waiting made it up to 10 ms slower under load; it is kept for inputs of ≥ 2¹⁸ logits
(≥ 2.5 ms of serial work), where its fixed cost is noise and a free core halves the time.
Arithmetic in float64 for every dtype.

math: see SPEC (kernels/log_softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.softmax.numba_cpu import map_rows

__all__ = ["fwd", "bwd", "PARALLEL_MIN", "row_max_logsum"]

#: From this many logits on, rows are split between threads (see the module docstring).
PARALLEL_MIN = 1 << 18


@njit(cache=True)
def row_max_logsum(x, i):
    """Row maximum m and L = log Σ_k exp(x[i, k] − m) of row i of x, both float64, with L
    computed as log1p(Σ_{x<m} exp(x − m) + (ties − 1)) (see SPEC); the cross-entropy
    kernels use it too."""
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


@njit(cache=True)
def _fwd_rows(x, y, start, stop):
    for i in range(start, stop):
        m, L = row_max_logsum(x, i)
        for k in range(x.shape[1]):
            y[i, k] = (np.float64(x[i, k]) - m) - L


@njit(cache=True, parallel=True)
def _fwd_parallel(x, y):
    for i in prange(x.shape[0]):
        _fwd_rows(x, y, i, i + 1)


@njit(cache=True)
def _bwd_rows(gy, y, gx, start, stop):
    K = y.shape[1]
    for i in range(start, stop):
        S = 0.0
        for k in range(K):
            S += np.float64(gy[i, k])
        for k in range(K):
            gx[i, k] = np.float64(gy[i, k]) - np.exp(np.float64(y[i, k])) * S


@njit(cache=True, parallel=True)
def _bwd_parallel(gy, y, gx):
    for i in prange(y.shape[0]):
        _bwd_rows(gy, y, gx, i, i + 1)


def fwd(x):
    """y = log_softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    return map_rows(_fwd_rows, _fwd_parallel, PARALLEL_MIN, x)


def bwd(gy, y):
    """gx = gy − exp(y)·Σ_k gy. gy, y (M, K) -> (gx (M, K),)."""
    return (map_rows(_bwd_rows, _bwd_parallel, PARALLEL_MIN, gy, y),)
