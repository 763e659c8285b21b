"""maxpool1d on the GPU: CUDA C compiled at first use through cupy.RawModule.

Parallel strategy: one pair of kernels serves both layouts. Arrays are viewed as
(R, length, I), pooled along the middle axis: channels-first (N, C, L) is R = N·C rows
with I = 1, channels-last (N, L, C) is R = N with I = C. fwd: one thread per output
element (r, t, c), i = (r·Lo + t)·I + c, so consecutive threads run over consecutive c
(channels-last) or consecutive t (channels-first): the writes of y and argmax are coalesced
and the reads of x fall in the same few cache lines. bwd is a gather, not a scatter: one
thread per gx element (r, j, c) sums gy over the windows that contain j and chose j, in
increasing t, so no atomics are needed and the sum is bitwise the Numba scatter's.
Windows are compared exactly as in numba_cpu.py (clamped positions, strict >, NaN rule),
so y and argmax are bitwise equal across backends. math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch
from kernels._pool_cuda import WINDOWS
from kernels.maxpool1d.reference import out_length

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = WINDOWS + r"""
template <typename T>
__global__ void maxpool1d_fwd(const T* __restrict__ x, T* __restrict__ y,
                              int* __restrict__ argmax, long long total,
                              int L, int Lo, int I, int K, int S, int P)
{
    // x seen as (R, L, I), y and argmax as (R, Lo, I), pooled along the middle axis
    // (channels-first: I = 1; channels-last: R = N, I = C).
    // thread i -> output element (r, t, c) with i = (r*Lo + t)*I + c; it reads
    // x[(r*L + j)*I + c] for j = t*S - P + k, k = 0 .. K-1 (clamped into [0, L)).
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r;
    int t, c;
    split_index(i, Lo, I, r, t, c);  // kernels/_pool_cuda.py
    const T* xr = x + r * L * I + c;  // position j of row r, channel c: xr[j*I]
    int start = t * S - P;
    int arg = start > 0 ? start : 0;
    T best = xr[(long long)arg * I];
    for (int k = 1; k < K; ++k) {
        // a clamped position is the window's first or last real one, already compared
        int j = start + k;
        j = j < 0 ? 0 : (j > L - 1 ? L - 1 : j);
        T v = xr[(long long)j * I];
        // strictly greater keeps the first maximum; NaN beats any number, once
        bool take = (v > best) || (v != v && best == best);
        if (take) {
            best = v;
            arg = j;
        }
    }
    y[i] = best;
    argmax[i] = arg;
}

template <typename T>
__global__ void maxpool1d_bwd(const T* __restrict__ gy, const int* __restrict__ argmax,
                              T* __restrict__ gx, long long total,
                              int L, int Lo, int I, int K, int S, int P)
{
    // gx seen as (R, L, I), gy and argmax as (R, Lo, I) (channels-first: I = 1;
    // channels-last: R = N, I = C).
    // thread i -> gx element (r, j, c) with i = (r*L + j)*I + c.
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r;
    int j, c;
    split_index(i, L, I, r, j, c);  // kernels/_pool_cuda.py
    int t_lo, t_hi;
    windows_containing(j, K, S, P, Lo, t_lo, t_hi);
    const T* gyr = gy + r * Lo * I + c;  // window t of row r, channel c: gyr[t*I]
    const int* ar = argmax + r * Lo * I + c;
    T s = T(0);
    for (int t = t_lo; t <= t_hi; ++t) {
        long long o = (long long)t * I;
        if (ar[o] == j) s += gyr[o];
    }
    gx[i] = s;
}
"""

KERNELS = ("maxpool1d_fwd", "maxpool1d_bwd")


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Max-pool (N, C, L) → (y (N, C, Lo), argmax (N, C, Lo) int32), or (N, L, C) →
    (N, Lo, C) twice if channels_last; cupy arrays."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    if channels_last:
        N, L, C = x.shape
        R, I = N, C
    else:
        N, C, L = x.shape
        R, I = N * C, 1
    Lo = out_length(L, kernel_size, stride, padding)
    shape = (N, Lo, C) if channels_last else (N, C, Lo)
    y = cp.empty(shape, dtype=x.dtype)
    argmax = cp.empty(shape, dtype=cp.int32)
    total = R * Lo * I
    fn = kernel(SOURCE, KERNELS, "maxpool1d_fwd", x.dtype)
    launch(fn, total, (x, y, argmax, np.int64(total), np.int32(L), np.int32(Lo), np.int32(I),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return y, argmax


def bwd(gy, argmax, *, length: int, kernel_size: int, stride: int, padding: int,
        channels_last: bool = False):
    """Gradient of max-pool as a gather → (gx (N, C, length),), or (N, length, C) if
    channels_last; a cupy array."""
    cp = cupy()
    gy = cp.ascontiguousarray(gy)
    argmax = cp.ascontiguousarray(argmax, dtype=cp.int32)
    if channels_last:
        N, Lo, C = gy.shape
        R, I = N, C
        shape = (N, length, C)
    else:
        N, C, Lo = gy.shape
        R, I = N * C, 1
        shape = (N, C, length)
    gx = cp.empty(shape, dtype=gy.dtype)
    total = R * length * I
    fn = kernel(SOURCE, KERNELS, "maxpool1d_bwd", gy.dtype)
    launch(fn, total, (gy, argmax, gx, np.int64(total), np.int32(length), np.int32(Lo),
                       np.int32(I), np.int32(kernel_size), np.int32(stride),
                       np.int32(padding)))
    return (gx,)
