"""avgpool1d on the CPU with Numba.

Parallel strategy and memory access
    channels-first (N, C, L): x is viewed as R = N·C independent rows of length L; one
    prange iteration handles one row: all Lo window sums of fwd, or the whole row of gx in
    bwd. Memory access is sequential along each row, rows split between threads, no
    sharing. bwd scatters each gy[t] into its window (a per-row zeroed buffer), then
    divides by K: per element, the gather form needs two integer divisions, which measured
    slower (benchmarks/NOTES.md, item 27).
    channels-last (N, L, C): one prange iteration per row of C channels, the innermost loop
    over c, contiguous and vectorised. fwd: per output row (n, t), the window's real rows
    x[n, j, :] are added into y[n, t, :] in increasing j, then divided by K. bwd is a
    gather, one iteration per gx row (n, j): gy[n, t, :] added over the windows t that
    contain j, t ascending, then divided by K; the two divisions that find those windows
    are paid once per row of C values. No two iterations write the same row, and the
    additions are those of the channels-first loops in their order: both layouts give
    bitwise equal values.

kernel_size = stride = 2 without padding (the seed network's pool) has its own loops with
the window unrolled, which the compiler vectorises, faster than the general loops;
channels-last has its own such loops, over c.

The pair loops move the same bytes in both layouts and run at memory speed; the general
channels-last loops are vectorised over c where a channels-first window of 3 is not, so
channels-last is the faster layout for other windows (timings: benchmarks/NOTES.md,
item 27).
math: see SPEC.
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


@njit(cache=True, parallel=True)
def _fwd_last(x, y, kernel_size, stride, padding):
    # channels-last: x (N, L, C), y (N, Lo, C). One prange iteration per output row (n, t);
    # the row of y holds the running sums of all C channels while the window's real rows of
    # x are added into it, in increasing position as in _fwd_rows
    N, L, C = x.shape
    Lo = y.shape[1]
    for i in prange(N * Lo):
        n = i // Lo
        t = i - n * Lo
        lo = max(t * stride - padding, 0)  # real positions of window t: lo … hi − 1
        hi = min(t * stride - padding + kernel_size, L)
        for c in range(C):  # contiguous in x and y: vectorised
            y[n, t, c] = x[n, lo, c]
        for j in range(lo + 1, hi):
            for c in range(C):
                y[n, t, c] += x[n, j, c]
        for c in range(C):
            y[n, t, c] /= kernel_size


@njit(cache=True, parallel=True)
def _fwd_last_pairs(x, y):
    # channels-last, kernel_size = stride = 2, padding = 0: window t is rows 2t and 2t+1
    N = x.shape[0]
    Lo, C = y.shape[1], y.shape[2]
    for i in prange(N * Lo):
        n = i // Lo
        t = i - n * Lo
        for c in range(C):
            y[n, t, c] = (x[n, 2 * t, c] + x[n, 2 * t + 1, c]) / 2


@njit(cache=True, parallel=True)
def _bwd_last(gy, gx, kernel_size, stride, padding):
    # channels-last: gy (N, Lo, C), gx (N, L, C). A gather: one prange iteration per gx
    # row (n, j) adds, t ascending, the gy rows of the windows that contain j,
    # t ∈ [⌈(j + P − K + 1)/S⌉, ⌊(j + P)/S⌋] ∩ [0, Lo) (two divisions per row of C
    # channels, not per element), then divides by K: the additions of _bwd_rows, in its order
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
            for c in range(C):  # contiguous in gy and gx: vectorised
                gx[n, j, c] += gy[n, t, c]
        for c in range(C):
            gx[n, j, c] /= kernel_size


@njit(cache=True, parallel=True)
def _bwd_last_pairs(gy, gx):
    # channels-last, kernel_size = stride = 2, padding = 0: gx rows 2t and 2t+1 are
    # gy row t / 2; an odd L leaves the last row outside every window
    N, L, C = gx.shape
    Lo = gy.shape[1]
    for i in prange(N * L):
        n = i // L
        j = i - n * L
        t = j // 2
        if t < Lo:
            for c in range(C):
                gx[n, j, c] = gy[n, t, c] / 2
        else:
            for c in range(C):
                gx[n, j, c] = 0


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Average-pool (N, C, L) → y (N, C, Lo), or (N, L, C) → (N, Lo, C) if channels_last;
    see the reference."""
    x = np.ascontiguousarray(x)
    pairs = kernel_size == 2 and stride == 2 and padding == 0
    if channels_last:
        N, L, C = x.shape
        Lo = out_length(L, kernel_size, stride, padding)
        y = np.empty((N, Lo, C), dtype=x.dtype)
        if pairs:
            _fwd_last_pairs(x, y)
        else:
            _fwd_last(x, y, int(kernel_size), int(stride), int(padding))
        return y
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    rows = (x.reshape(N * C, L), y.reshape(N * C, Lo))
    if pairs:
        _fwd_rows_pairs(*rows)
    else:
        _fwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return y


def bwd(gy, *, length: int, kernel_size: int, stride: int, padding: int,
        channels_last: bool = False):
    """Gradient of average-pool, gy (N, C, Lo) → (gx (N, C, length),), or (N, Lo, C) →
    (N, length, C) if channels_last; see the reference."""
    gy = np.ascontiguousarray(gy)
    pairs = kernel_size == 2 and stride == 2 and padding == 0
    if channels_last:
        N, Lo, C = gy.shape
        gx = np.empty((N, length, C), dtype=gy.dtype)
        if pairs:
            _bwd_last_pairs(gy, gx)
        else:
            _bwd_last(gy, gx, int(kernel_size), int(stride), int(padding))
        return (gx,)
    N, C, Lo = gy.shape
    gx = np.empty((N, C, length), dtype=gy.dtype)
    rows = (gy.reshape(N * C, Lo), gx.reshape(N * C, length))
    if pairs:
        _bwd_rows_pairs(*rows)
    else:
        _bwd_rows(*rows, int(kernel_size), int(stride), int(padding))
    return (gx,)
