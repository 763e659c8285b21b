"""log_softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, then
the sum of exponentials below the max and the count of ties, in ``row_max_logsum``; then
the write). Each row is read three times while it sits in L1 and written once,
contiguously. Serial below PARALLEL_MIN logits, ``prange`` over rows from there on
(``map_rows``; kernels/_rows_numba.py has both helpers and says why). Arithmetic in float64
for every dtype.

math: see SPEC (kernels/log_softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._rows_numba import PARALLEL_MIN, map_rows, row_max_logsum

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]


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
