"""softmax, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, sum of
exponentials, scaled write). Each row is read three times while it sits in L1 and written
once, contiguously. Small inputs run a serial loop (a parallel region costs more than the
whole softmax of the article's 32..256 × 10 logits); from PARALLEL_MIN elements on, a
`prange` over rows splits them between the threads. Arithmetic in float64.

math: see SPEC (kernels/softmax/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]

#: From this many elements on, rows are split between threads (measured crossover).
PARALLEL_MIN = 1 << 15


@njit(cache=True)
def _fwd_row(x, y, i):
    K = x.shape[1]
    m = -np.inf
    for k in range(K):
        m = max(m, np.float64(x[i, k]))
    s = 0.0
    for k in range(K):
        s += np.exp(np.float64(x[i, k]) - m)
    inv = 1.0 / s
    for k in range(K):
        y[i, k] = np.exp(np.float64(x[i, k]) - m) * inv


@njit(cache=True)
def _fwd_serial(x, y):
    for i in range(x.shape[0]):
        _fwd_row(x, y, i)


@njit(cache=True, parallel=True)
def _fwd_parallel(x, y):
    for i in prange(x.shape[0]):
        _fwd_row(x, y, i)


@njit(cache=True)
def _bwd_row(gy, y, gx, i):
    K = y.shape[1]
    s = 0.0
    for k in range(K):
        s += np.float64(gy[i, k]) * np.float64(y[i, k])
    for k in range(K):
        gx[i, k] = np.float64(y[i, k]) * (np.float64(gy[i, k]) - s)


@njit(cache=True)
def _bwd_serial(gy, y, gx):
    for i in range(y.shape[0]):
        _bwd_row(gy, y, gx, i)


@njit(cache=True, parallel=True)
def _bwd_parallel(gy, y, gx):
    for i in prange(y.shape[0]):
        _bwd_row(gy, y, gx, i)


def fwd(x):
    """y = softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    y = np.empty_like(x)
    if x.size < PARALLEL_MIN:
        _fwd_serial(x, y)
    else:
        _fwd_parallel(x, y)
    return y


def bwd(gy, y):
    """gx = y ⊙ (gy − Σ_k gy·y). gy, y (M, K) -> (gx (M, K),)."""
    gx = np.empty_like(y)
    if y.size < PARALLEL_MIN:
        _bwd_serial(gy, y, gx)
    else:
        _bwd_parallel(gy, y, gx)
    return (gx,)
