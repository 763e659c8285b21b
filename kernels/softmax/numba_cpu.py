"""softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max; the
exponentials, written to y and summed; then y scaled by 1/sum). Each row is read twice and
written twice while it sits in L1. Serial below PARALLEL_MIN logits, ``prange`` over rows
from there on (``map_rows``; kernels/_rows_numba.py says why). Arithmetic in float64 for
every dtype.

math: see SPEC (kernels/softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._rows_numba import PARALLEL_MIN, map_rows

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]


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


def fwd(x):
    """y = softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    return map_rows(_fwd_rows, _fwd_parallel, PARALLEL_MIN, x)


def bwd(gy, y):
    """gx = y ⊙ (gy − Σ_k gy·y). gy, y (M, K) -> (gx (M, K),)."""
    return (map_rows(_bwd_rows, _bwd_parallel, PARALLEL_MIN, gy, y),)
