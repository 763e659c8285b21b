"""soft_cross_entropy (probability targets), Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, the sum
below the max and the tie count: ``row_max_logsum``; then the weighted loss; backward: Σ p,
then gx and gp in one sweep). Rows are read while they sit in L1 and outputs are written
contiguously. Serial below PARALLEL_MIN logits, ``prange`` over rows from there on
(``run_rows``; kernels/_rows_numba.py has both helpers and says why). Arithmetic in float64
for every dtype.

math: see SPEC (kernels/soft_cross_entropy/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._rows_numba import PARALLEL_MIN, row_max_logsum, run_rows

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]


@njit(cache=True)
def _fwd_rows(x, p, loss, lse, start, stop):
    K = x.shape[1]
    for i in range(start, stop):
        m, L = row_max_logsum(x, i)
        acc = 0.0
        for k in range(K):
            acc += np.float64(p[i, k]) * ((m - np.float64(x[i, k])) + L)
        loss[i] = acc
        lse[i] = m + L


@njit(cache=True, parallel=True)
def _fwd_parallel(x, p, loss, lse):
    for i in prange(x.shape[0]):
        _fwd_rows(x, p, loss, lse, i, i + 1)


@njit(cache=True)
def _bwd_rows(gloss, x, p, lse, gx, gp, start, stop):
    K = x.shape[1]
    for i in range(start, stop):
        g = np.float64(gloss[i])
        l = np.float64(lse[i])
        P = 0.0
        for k in range(K):
            P += np.float64(p[i, k])
        for k in range(K):
            v = np.float64(x[i, k])
            gx[i, k] = g * (np.exp(v - l) * P - np.float64(p[i, k]))
            gp[i, k] = g * (l - v)


@njit(cache=True, parallel=True)
def _bwd_parallel(gloss, x, p, lse, gx, gp):
    for i in prange(x.shape[0]):
        _bwd_rows(gloss, x, p, lse, gx, gp, i, i + 1)


def fwd(x, p):
    """loss = Σ_k p·(logsumexp(x) − x) per row. x, p (M, K) -> (loss (M,), lse (M,))."""
    M = x.shape[0]
    loss = np.empty(M, dtype=x.dtype)
    lse = np.empty(M, dtype=x.dtype)
    run_rows(_fwd_rows, _fwd_parallel, PARALLEL_MIN, x.size, x, p, loss, lse)
    return loss, lse


def bwd(gloss, x, p, lse):
    """gx = gloss·(softmax(x)·Σ_k p − p), gp = gloss·(lse − x). gloss (M,), x, p (M, K),
    lse (M,) -> (gx (M, K), gp (M, K))."""
    gx = np.empty_like(x)
    gp = np.empty_like(x)
    run_rows(_bwd_rows, _bwd_parallel, PARALLEL_MIN, x.size, gloss, x, p, lse, gx, gp)
    return gx, gp
