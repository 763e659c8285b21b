"""maxpool1d on the CPU with Numba.

Parallel strategy: x is viewed as R = N·C independent rows of length L; one prange
iteration handles one row: all Lo windows of fwd, or zeroing and filling the row of gx in
bwd. Memory access is sequential along each row, rows split between threads, no sharing.

Speed notes (measured on 2 cores, float32, (32, 64, 62) and (256, 128, 29), one thread):
- the running maximum is updated with selects, not an ``if``: on random data the branch is
  a coin flip, and mispredictions made the loop 2.5-7x slower;
- window positions are clamped into [0, L) instead of tested: a clamped position is the
  window's first or last real position, already compared, and comparing it again changes
  nothing, because only a strictly larger value (or a first NaN) takes over;
- kernel_size = stride = 2 without padding (the seed network's pool) has its own loop with
  the window unrolled, which the compiler vectorises: 3x faster than the general loop.
math: see SPEC.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.maxpool1d.reference import out_length

__all__ = ["fwd", "bwd"]


@njit(cache=True, parallel=True)
def _fwd_rows(x, y, argmax, kernel_size, stride, padding):
    # x (R, L), y (R, Lo), argmax (R, Lo) int32
    R, L = x.shape
    Lo = y.shape[1]
    for r in prange(R):
        for t in range(Lo):
            start = t * stride - padding  # window t covers start … start + K − 1
            arg = max(start, 0)
            best = x[r, arg]
            for k in range(1, kernel_size):
                j = min(max(start + k, 0), L - 1)
                v = x[r, j]
                # strictly greater keeps the first maximum; NaN beats any number, once
                take = (v > best) | ((v != v) & (best == best))
                best = v if take else best
                arg = j if take else arg
            y[r, t] = best
            argmax[r, t] = arg


@njit(cache=True, parallel=True)
def _fwd_rows_pairs(x, y, argmax):
    # kernel_size = stride = 2, padding = 0: window t is (x[2t], x[2t+1])
    R = x.shape[0]
    Lo = y.shape[1]
    for r in prange(R):
        for t in range(Lo):
            a = x[r, 2 * t]
            b = x[r, 2 * t + 1]
            take = (b > a) | ((b != b) & (a == a))
            y[r, t] = b if take else a
            argmax[r, t] = 2 * t + 1 if take else 2 * t


@njit(cache=True, parallel=True)
def _bwd_rows(gy, argmax, gx):
    # gy (R, Lo), argmax (R, Lo) int32, gx (R, L)
    R, L = gx.shape
    Lo = gy.shape[1]
    for r in prange(R):
        for j in range(L):
            gx[r, j] = 0
        for t in range(Lo):
            gx[r, argmax[r, t]] += gy[r, t]


def fwd(x, *, kernel_size: int, stride: int, padding: int):
    """Max-pool (N, C, L) → (y (N, C, Lo), argmax (N, C, Lo) int32); see the reference."""
    x = np.ascontiguousarray(x)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    argmax = np.empty((N, C, Lo), dtype=np.int32)
    rows = (x.reshape(N * C, L), y.reshape(N * C, Lo), argmax.reshape(N * C, Lo))
    if kernel_size == 2 and stride == 2 and padding == 0:
        _fwd_rows_pairs(*rows)
    else:
        _fwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return y, argmax


def bwd(gy, argmax, *, length: int, kernel_size: int, stride: int,
        padding: int):
    """Scatter-add of gy (N, C, Lo) at argmax → (gx (N, C, length),); see the reference."""
    gy = np.ascontiguousarray(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    N, C, Lo = gy.shape
    gx = np.empty((N, C, length), dtype=gy.dtype)
    _bwd_rows(gy.reshape(N * C, Lo), argmax.reshape(N * C, Lo), gx.reshape(N * C, length))
    return (gx,)
