"""maxpool1d on the CPU with Numba.

Parallel strategy: x is viewed as R = N·C independent rows of length L; one prange
iteration handles one row: all Lo windows of fwd, or zeroing and filling the row of gx in
bwd. Memory access is sequential along each row, rows split between threads, no sharing.
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
            lo = max(t * stride - padding, 0)
            hi = min(t * stride - padding + kernel_size, L)
            best = x[r, lo]
            arg = lo
            for j in range(lo + 1, hi):
                v = x[r, j]
                # strictly greater keeps the first maximum; NaN beats any number, once
                if v > best or (v != v and best == best):
                    best = v
                    arg = j
            y[r, t] = best
            argmax[r, t] = arg


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


def fwd(x: np.ndarray, *, kernel_size: int, stride: int, padding: int):
    """Max-pool (N, C, L) → (y (N, C, Lo), argmax (N, C, Lo) int32); see the reference."""
    x = np.ascontiguousarray(x)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    argmax = np.empty((N, C, Lo), dtype=np.int32)
    _fwd_rows(x.reshape(N * C, L), y.reshape(N * C, Lo), argmax.reshape(N * C, Lo),
              int(kernel_size), int(stride), int(padding))
    return y, argmax


def bwd(gy: np.ndarray, argmax: np.ndarray, *, length: int, kernel_size: int, stride: int,
        padding: int):
    """Scatter-add of gy (N, C, Lo) at argmax → (gx (N, C, length),); see the reference."""
    gy = np.ascontiguousarray(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    N, C, Lo = gy.shape
    gx = np.empty((N, C, length), dtype=gy.dtype)
    _bwd_rows(gy.reshape(N * C, Lo), argmax.reshape(N * C, Lo), gx.reshape(N * C, length))
    return (gx,)
