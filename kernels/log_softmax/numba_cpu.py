"""log_softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, then
the sum of exponentials below the max and the count of ties, then the write). Each row is
read three times while it sits in L1 and written once, contiguously. Inputs below
PARALLEL_MIN logits run a serial loop: the article's 32..256 × 10 logits take 2–20 µs,
less than a parallel region costs. Measured on the shared 2-core machine (float32,
4096..262144 rows of 10): the serial loop spends about 10 ns a logit, and the `prange`
version gained nothing (the other core was busy) while OpenMP's spin-waiting made it up to
10 ms slower under load; it is kept for inputs of ≥ 2¹⁸ logits (≥ 2.5 ms of serial work),
where its fixed cost is noise and a free core halves the time. Arithmetic in float64 for
every dtype.

math: see SPEC (kernels/log_softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]

#: From this many logits on, rows are split between threads (see the module docstring).
PARALLEL_MIN = 1 << 18


@njit(cache=True)
def _fwd_rows(x, y, start, stop):
    K = x.shape[1]
    for i in range(start, stop):
        m = -np.inf
        for k in range(K):
            m = max(m, np.float64(x[i, k]))
        below = 0.0  # Σ_{x<m} exp(x − m); the ties at m each add exp(0) = 1
        ties = 0
        for k in range(K):
            v = np.float64(x[i, k])
            if v < m:
                below += np.exp(v - m)
            elif v == m:
                ties += 1
        L = np.log1p(below + (ties - 1))  # log Σ_k exp(x − m), accurate when L ≈ 0
        for k in range(K):
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
    y = np.empty_like(x)
    if x.size < PARALLEL_MIN:
        _fwd_rows(x, y, 0, x.shape[0])
    else:
        _fwd_parallel(x, y)
    return y


def bwd(gy, y):
    """gx = gy − exp(y)·Σ_k gy. gy, y (M, K) -> (gx (M, K),)."""
    gx = np.empty_like(y)
    if y.size < PARALLEL_MIN:
        _bwd_rows(gy, y, gx, 0, y.shape[0])
    else:
        _bwd_parallel(gy, y, gx)
    return (gx,)
