"""avgpool1d on the GPU: CUDA C compiled at first use through cupy.RawModule.

Parallel strategy: one pair of kernels serves both layouts. Arrays are viewed as
(R, length, I), pooled along the middle axis: channels-first (N, C, L) is R = N·C rows
with I = 1, channels-last (N, L, C) is R = N with I = C. fwd: one thread per output
element (r, t, c), i = (r·Lo + t)·I + c, so consecutive threads run over consecutive c
(channels-last) or consecutive t (channels-first): the writes of y are coalesced and the
reads of x fall in the same few cache lines. bwd is a gather, not a scatter: one thread per
gx element (r, j, c) sums gy over the windows that contain j, in increasing t (the order of
the Numba scatter), and divides by K; no atomics. math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch
from kernels._pool_cuda import WINDOWS
from kernels.avgpool1d.reference import out_length

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = WINDOWS + r"""
template <typename T>
__global__ void avgpool1d_fwd(const T* __restrict__ x, T* __restrict__ y, long long total,
                              int L, int Lo, int I, int K, int S, int P)
{
    // x seen as (R, L, I), y as (R, Lo, I), pooled along the middle axis
    // (channels-first: I = 1; channels-last: R = N, I = C).
    // thread i -> output element (r, t, c) with i = (r*Lo + t)*I + c; it sums
    // x[(r*L + j)*I + c] over the real positions j of window t, lo <= j < hi.
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r;
    int t, c;
    split_index(i, Lo, I, r, t, c);  // kernels/_pool_cuda.py
    const T* xr = x + r * L * I + c;  // position j of row r, channel c: xr[j*I]
    int start = t * S - P;
    int lo = start > 0 ? start : 0;
    int hi = start + K < L ? start + K : L;
    T s = xr[(long long)lo * I];  // every window holds at least one real position
    for (int j = lo + 1; j < hi; ++j) s += xr[(long long)j * I];
    y[i] = s / (T)K;
}

template <typename T>
__global__ void avgpool1d_bwd(const T* __restrict__ gy, T* __restrict__ gx, long long total,
                              int L, int Lo, int I, int K, int S, int P)
{
    // gx seen as (R, L, I), gy as (R, Lo, I) (channels-first: I = 1; channels-last:
    // R = N, I = C).
    // thread i -> gx element (r, j, c) with i = (r*L + j)*I + c.
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r;
    int j, c;
    split_index(i, L, I, r, j, c);  // kernels/_pool_cuda.py
    int t_lo, t_hi;
    windows_containing(j, K, S, P, Lo, t_lo, t_hi);
    const T* gyr = gy + r * Lo * I + c;  // window t of row r, channel c: gyr[t*I]
    T s = T(0);
    for (int t = t_lo; t <= t_hi; ++t) s += gyr[(long long)t * I];
    gx[i] = s / (T)K;
}
"""

KERNELS = ("avgpool1d_fwd", "avgpool1d_bwd")


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Average-pool (N, C, L) → y (N, C, Lo), or (N, L, C) → (N, Lo, C) if channels_last;
    a cupy array."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    if channels_last:
        N, L, C = x.shape
        R, I = N, C
    else:
        N, C, L = x.shape
        R, I = N * C, 1
    Lo = out_length(L, kernel_size, stride, padding)
    y = cp.empty((N, Lo, C) if channels_last else (N, C, Lo), dtype=x.dtype)
    total = R * Lo * I
    fn = kernel(SOURCE, KERNELS, "avgpool1d_fwd", x.dtype)
    launch(fn, total, (x, y, np.int64(total), np.int32(L), np.int32(Lo), np.int32(I),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return y


def bwd(gy, *, length: int, kernel_size: int, stride: int, padding: int,
        channels_last: bool = False):
    """Gradient of average-pool as a gather → (gx (N, C, length),), or (N, length, C) if
    channels_last; a cupy array."""
    cp = cupy()
    gy = cp.ascontiguousarray(gy)
    if channels_last:
        N, Lo, C = gy.shape
        R, I = N, C
    else:
        N, C, Lo = gy.shape
        R, I = N * C, 1
    gx = cp.empty((N, length, C) if channels_last else (N, C, length), dtype=gy.dtype)
    total = R * length * I
    fn = kernel(SOURCE, KERNELS, "avgpool1d_bwd", gy.dtype)
    launch(fn, total, (gy, gx, np.int64(total), np.int32(length), np.int32(Lo), np.int32(I),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return (gx,)
