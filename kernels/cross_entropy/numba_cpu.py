"""cross_entropy with integer labels, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, the sum
below the max and the tie count: ``row_max_logsum``; then loss and lse; backward: the
exponentials and their sum off the label, then the label's entry). Rows are read while they
sit in L1 and outputs are written contiguously. Serial below PARALLEL_MIN logits, ``prange``
over rows from there on (``run_rows``; kernels/_rows_numba.py has both helpers and says
why). Arithmetic in float64 for every dtype.

math: see SPEC (kernels/cross_entropy/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._rows_numba import PARALLEL_MIN, row_max_logsum, run_rows

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]


@njit(cache=True)
def _fwd_rows(x, labels, loss, lse, start, stop):
    for i in range(start, stop):
        m, L = row_max_logsum(x, i)
        loss[i] = (m - np.float64(x[i, labels[i]])) + L
        lse[i] = m + L


@njit(cache=True, parallel=True)
def _fwd_parallel(x, labels, loss, lse):
    for i in prange(x.shape[0]):
        _fwd_rows(x, labels, loss, lse, i, i + 1)


@njit(cache=True)
def _bwd_rows(gloss, x, labels, lse, gx, start, stop):
    for i in range(start, stop):
        g = np.float64(gloss[i])
        l = np.float64(lse[i])
        y = labels[i]
        off_label = 0.0  # Σ_{k≠y} softmax
        for k in range(x.shape[1]):
            if k != y:
                s = np.exp(np.float64(x[i, k]) - l)
                gx[i, k] = g * s
                off_label += s
        gx[i, y] = -g * off_label


@njit(cache=True, parallel=True)
def _bwd_parallel(gloss, x, labels, lse, gx):
    for i in prange(x.shape[0]):
        _bwd_rows(gloss, x, labels, lse, gx, i, i + 1)


def fwd(x, labels):
    """loss = logsumexp(x) − x[label] per row. x (M, K), labels (M,) int64
    -> (loss (M,), lse (M,))."""
    M = x.shape[0]
    loss = np.empty(M, dtype=x.dtype)
    lse = np.empty(M, dtype=x.dtype)
    run_rows(_fwd_rows, _fwd_parallel, PARALLEL_MIN, x.size, x, labels, loss, lse)
    return loss, lse


def bwd(gloss, x, labels, lse):
    """gx = gloss·(softmax(x) − onehot(labels)). gloss (M,), x (M, K), labels (M,),
    lse (M,) -> (gx (M, K), None)."""
    gx = np.empty_like(x)
    run_rows(_bwd_rows, _bwd_parallel, PARALLEL_MIN, x.size, gloss, x, labels, lse, gx)
    return gx, None
