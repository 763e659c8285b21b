"""avgpool1d on the CPU with Numba.

Parallel strategy: x is viewed as R = N·C independent rows of length L; one prange
iteration handles one row: all Lo window sums of fwd, or the whole row of gx in bwd.
Memory access is sequential along each row, rows split between threads, no sharing.
bwd scatters each gy[t] into its window (a per-row zeroed buffer), then divides by K:
per element, the gather form needs two integer divisions, which measured 2-4x slower.
kernel_size = stride = 2 without padding (the seed network's pool) has its own loops with
the window unrolled, which the compiler vectorises: 5-25x faster than the general loops
(float32, (32, 64, 62) and (256, 128, 29), one thread). math: see SPEC.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.avgpool1d.reference import out_length

__all__ = ["fwd", "bwd"]


@njit(cache=True, parallel=True)
def _fwd_rows(x, y, kernel_size, stride, padding):
    # x (R, L), y (R, Lo)
    R, L = x.shape
    Lo = y.shape[1]
    for r in prange(R):
        for t in range(Lo):
            lo = max(t * stride - padding, 0)  # real positions of window t: lo … hi − 1
            hi = min(t * stride - padding + kernel_size, L)
            s = x[r, lo]  # every window holds at least one real position
            for j in range(lo + 1, hi):
                s += x[r, j]
            y[r, t] = s / kernel_size


@njit(cache=True, parallel=True)
def _fwd_rows_pairs(x, y):
    # kernel_size = stride = 2, padding = 0: window t is (x[2t], x[2t+1])
    R = x.shape[0]
    Lo = y.shape[1]
    for r in prange(R):
        for t in range(Lo):
            y[r, t] = (x[r, 2 * t] + x[r, 2 * t + 1]) / 2


@njit(cache=True, parallel=True)
def _bwd_rows(gy, gx, kernel_size, stride, padding):
    # gy (R, Lo), gx (R, L)
    R, L = gx.shape
    Lo = gy.shape[1]
    for r in prange(R):
        for j in range(L):
            gx[r, j] = 0
        for t in range(Lo):  # so each gx[r, j] adds its windows in increasing t
            lo = max(t * stride - padding, 0)
            hi = min(t * stride - padding + kernel_size, L)
            for j in range(lo, hi):
                gx[r, j] += gy[r, t]
        for j in range(L):
            gx[r, j] /= kernel_size


@njit(cache=True, parallel=True)
def _bwd_rows_pairs(gy, gx):
    # kernel_size = stride = 2, padding = 0: gx[2t] = gx[2t+1] = gy[t] / 2; an odd L
    # leaves the last position outside every window
    R, L = gx.shape
    Lo = gy.shape[1]
    for r in prange(R):
        for t in range(Lo):
            g = gy[r, t] / 2
            gx[r, 2 * t] = g
            gx[r, 2 * t + 1] = g
        for j in range(2 * Lo, L):
            gx[r, j] = 0


def fwd(x, *, kernel_size: int, stride: int, padding: int):
    """Average-pool (N, C, L) → y (N, C, Lo); see the reference."""
    x = np.ascontiguousarray(x)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    rows = (x.reshape(N * C, L), y.reshape(N * C, Lo))
    if kernel_size == 2 and stride == 2 and padding == 0:
        _fwd_rows_pairs(*rows)
    else:
        _fwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return y


def bwd(gy, *, length: int, kernel_size: int, stride: int, padding: int):
    """Gradient of average-pool, gy (N, C, Lo) → (gx (N, C, length),); see the reference."""
    gy = np.ascontiguousarray(gy)
    N, C, Lo = gy.shape
    gx = np.empty((N, C, length), dtype=gy.dtype)
    rows = (gy.reshape(N * C, Lo), gx.reshape(N * C, length))
    if kernel_size == 2 and stride == 2 and padding == 0:
        _bwd_rows_pairs(*rows)
    else:
        _bwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return (gx,)
