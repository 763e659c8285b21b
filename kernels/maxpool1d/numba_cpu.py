"""maxpool1d on the CPU with Numba.

Parallel strategy and memory access
    channels-first (N, C, L): x is viewed as R = N·C independent rows of length L; one
    prange iteration handles one row: all Lo windows of fwd, or zeroing and filling the row
    of gx in bwd (a scatter). Memory access is sequential along each row, rows split
    between threads, no sharing.
    channels-last (N, L, C): one prange iteration per row of C channels. fwd: per output
    row (n, t), the window's real rows x[n, j, :] are compared into y[n, t, :] and
    argmax[n, t, :]; the innermost loop runs over c, contiguous in all three arrays, and is
    vectorised (the selects below). bwd is a gather, one iteration per gx row (n, j): it
    adds gy[n, t, :] where argmax[n, t, :] = j over the windows t that contain j, t
    ascending, as a select vectorised over c. No two iterations write the same row, and
    these are the scatter's additions in its order: both layouts give bitwise equal values.

Speed notes (timings: benchmarks/NOTES.md, items 4 and 26):
- the running maximum is updated with selects, not an ``if``: on random data the branch is
  a coin flip, and mispredictions made the loop several times slower;
- window positions are clamped into [0, L) instead of tested: a clamped position is the
  window's first or last real position, already compared, and comparing it again changes
  nothing, because only a strictly larger value (or a first NaN) takes over;
- kernel_size = stride = 2 without padding (the seed network's pool) has its own loop with
  the window unrolled, which the compiler vectorises, faster than the general loop;
  channels-last has its own such loop, over c.

The pair loops move the same bytes in both layouts and run at memory speed; the general
channels-last loop is vectorised over c where a channels-first window of 3 is not, so
channels-last is the faster layout for other windows.
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


@njit(cache=True, parallel=True)
def _fwd_last(x, y, argmax, kernel_size, stride, padding):
    # channels-last: x (N, L, C), y (N, Lo, C), argmax (N, Lo, C) int32. One prange
    # iteration per output row (n, t); the rows of y and argmax hold the running maximum
    # of all C channels while the window's real rows of x are compared into them
    N, L, C = x.shape
    Lo = y.shape[1]
    for i in prange(N * Lo):
        n = i // Lo
        t = i - n * Lo
        start = t * stride - padding
        lo = max(start, 0)  # real positions of window t: lo … hi − 1
        hi = min(start + kernel_size, L)
        for c in range(C):
            y[n, t, c] = x[n, lo, c]
            argmax[n, t, c] = lo
        for j in range(lo + 1, hi):
            for c in range(C):  # contiguous in x, y and argmax, branch-free: vectorised
                v = x[n, j, c]
                best = y[n, t, c]
                arg = argmax[n, t, c]
                take = (v > best) | ((v != v) & (best == best))
                y[n, t, c] = v if take else best
                argmax[n, t, c] = j if take else arg


@njit(cache=True, parallel=True)
def _fwd_last_pairs(x, y, argmax):
    # channels-last, kernel_size = stride = 2, padding = 0: window t is rows 2t and 2t+1
    N = x.shape[0]
    Lo, C = y.shape[1], y.shape[2]
    for i in prange(N * Lo):
        n = i // Lo
        t = i - n * Lo
        for c in range(C):
            a = x[n, 2 * t, c]
            b = x[n, 2 * t + 1, c]
            take = (b > a) | ((b != b) & (a == a))
            y[n, t, c] = b if take else a
            argmax[n, t, c] = 2 * t + 1 if take else 2 * t


@njit(cache=True, parallel=True)
def _bwd_last(gy, argmax, gx, kernel_size, stride, padding):
    # channels-last: gy (N, Lo, C), argmax (N, Lo, C) int32, gx (N, L, C). A gather: one
    # prange iteration per gx row (n, j) adds, t ascending, the gy of the windows that
    # contain j and chose j, t ∈ [⌈(j + P − K + 1)/S⌉, ⌊(j + P)/S⌋] ∩ [0, Lo); the same
    # additions in the same order as the scatter of _bwd_rows
    N, L, C = gx.shape
    Lo = gy.shape[1]
    for i in prange(N * L):
        n = i // L
        j = i - n * L
        a = j + padding - kernel_size + 1
        t_lo = (a + stride - 1) // stride if a > 0 else 0
        t_hi = min((j + padding) // stride, Lo - 1)
        for c in range(C):
            gx[n, j, c] = 0
        for t in range(t_lo, t_hi + 1):
            for c in range(C):  # a select, not a branch: vectorised
                s = gx[n, j, c]
                g = gy[n, t, c]
                gx[n, j, c] = s + g if argmax[n, t, c] == j else s


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Max-pool (N, C, L) → (y (N, C, Lo), argmax (N, C, Lo) int32), or (N, L, C) →
    (N, Lo, C) twice if channels_last; see the reference."""
    x = np.ascontiguousarray(x)
    pairs = kernel_size == 2 and stride == 2 and padding == 0
    if channels_last:
        N, L, C = x.shape
        Lo = out_length(L, kernel_size, stride, padding)
        y = np.empty((N, Lo, C), dtype=x.dtype)
        argmax = np.empty((N, Lo, C), dtype=np.int32)
        if pairs:
            _fwd_last_pairs(x, y, argmax)
        else:
            _fwd_last(x, y, argmax, int(kernel_size), int(stride), int(padding))
        return y, argmax
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    argmax = np.empty((N, C, Lo), dtype=np.int32)
    rows = (x.reshape(N * C, L), y.reshape(N * C, Lo), argmax.reshape(N * C, Lo))
    if pairs:
        _fwd_rows_pairs(*rows)
    else:
        _fwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return y, argmax


def bwd(gy, argmax, *, length: int, kernel_size: int, stride: int,
        padding: int, channels_last: bool = False):
    """Scatter-add of gy (N, C, Lo) at argmax → (gx (N, C, length),), or (N, Lo, C) →
    (N, length, C) if channels_last; see the reference."""
    gy = np.ascontiguousarray(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    if channels_last:
        N, Lo, C = gy.shape
        gx = np.empty((N, length, C), dtype=gy.dtype)
        _bwd_last(gy, argmax, gx, int(kernel_size), int(stride), int(padding))
        return (gx,)
    N, C, Lo = gy.shape
    gx = np.empty((N, C, length), dtype=gy.dtype)
    _bwd_rows(gy.reshape(N * C, Lo), argmax.reshape(N * C, Lo), gx.reshape(N * C, length))
    return (gx,)
