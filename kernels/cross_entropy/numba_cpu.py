"""cross_entropy with integer labels, Numba CPU kernels.

Parallel strategy: rows are independent; one loop iteration computes one row (max, the sum
below the max and the tie count: the row_max_logsum of kernels/log_softmax/numba_cpu.py;
then loss and lse; backward: the exponentials and their
sum off the label, then the label's entry). Rows are read while they sit in L1 and gx is
written contiguously. Inputs below PARALLEL_MIN logits run a serial loop: the article's
32..256 × 10 logits take 2–20 µs, less than a parallel region costs. Measured on the
shared 2-core machine (float32, 4096..262144 rows of 10): the serial loop spends about 10
ns a logit, and the `prange` version gained nothing (the other core was busy) while
OpenMP's spin-waiting made it up to 10 ms slower under load; it is kept for inputs of ≥
2¹⁸ logits (≥ 2.5 ms of serial work), where its fixed cost is noise and a free core halves
the time. Arithmetic in float64 for every dtype.

math: see SPEC (kernels/cross_entropy/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.log_softmax.numba_cpu import row_max_logsum

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]

#: From this many logits on, rows are split between threads (see the module docstring).
PARALLEL_MIN = 1 << 18


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
    if x.size < PARALLEL_MIN:
        _fwd_rows(x, labels, loss, lse, 0, x.shape[0])
    else:
        _fwd_parallel(x, labels, loss, lse)
    return loss, lse


def bwd(gloss, x, labels, lse):
    """gx = gloss·(softmax(x) − onehot(labels)). gloss (M,), x (M, K), labels (M,),
    lse (M,) -> (gx (M, K), None)."""
    gx = np.empty_like(x)
    if x.size < PARALLEL_MIN:
        _bwd_rows(gloss, x, labels, lse, gx, 0, x.shape[0])
    else:
        _bwd_parallel(gloss, x, labels, lse, gx)
    return gx, None
