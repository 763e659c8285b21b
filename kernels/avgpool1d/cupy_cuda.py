"""avgpool1d on the GPU: CUDA C compiled at first use through cupy.RawModule.

Parallel strategy: arrays are viewed as R = N·C rows. fwd: one thread per output element
(r, t), consecutive threads on consecutive t, so the writes of y are coalesced and the
reads of x fall in the same few cache lines. bwd is a gather, not a scatter: one thread per
gx element (r, j) sums gy over the windows that contain j, in increasing t (the order of
the Numba scatter), and divides by K; no atomics. math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch
from kernels.avgpool1d.reference import out_length

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
template <typename T>
__global__ void avgpool1d_fwd(const T* __restrict__ x, T* __restrict__ y, long long total,
                              int L, int Lo, int K, int S, int P)
{
    // thread i -> output element i of y seen as (R, Lo): row r = i / Lo, window t = i % Lo;
    // it sums x[r, j] over the real positions j of window t, lo <= j < hi.
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r = i / Lo;
    int t = (int)(i - r * Lo);
    const T* xr = x + r * L;
    int start = t * S - P;
    int lo = start > 0 ? start : 0;
    int hi = start + K < L ? start + K : L;
    T s = xr[lo];  // every window holds at least one real position
    for (int j = lo + 1; j < hi; ++j) s += xr[j];
    y[i] = s / (T)K;
}

template <typename T>
__global__ void avgpool1d_bwd(const T* __restrict__ gy, T* __restrict__ gx, long long total,
                              int L, int Lo, int K, int S, int P)
{
    // thread i -> gx element i seen as (R, L): row r = i / L, position j = i % L.
    // Windows containing j: t*S - P <= j <= t*S - P + K - 1, i.e.
    // t in [ceil((j + P - K + 1) / S), floor((j + P) / S)], cut to [0, Lo).
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r = i / L;
    int j = (int)(i - r * L);
    int a = j + P - K + 1;
    int t_lo = a > 0 ? (a + S - 1) / S : 0;  // ceil for a > 0; C division truncates
    int t_hi = (j + P) / S;                  // j + P >= 0: truncation is floor
    if (t_hi > Lo - 1) t_hi = Lo - 1;
    const T* gyr = gy + r * Lo;
    T s = T(0);
    for (int t = t_lo; t <= t_hi; ++t) s += gyr[t];
    gx[i] = s / (T)K;
}
"""

KERNELS = ("avgpool1d_fwd", "avgpool1d_bwd")


def fwd(x, *, kernel_size: int, stride: int, padding: int):
    """Average-pool (N, C, L) → y (N, C, Lo), a cupy array."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = cp.empty((N, C, Lo), dtype=x.dtype)
    total = N * C * Lo
    fn = kernel(SOURCE, KERNELS, "avgpool1d_fwd", x.dtype)
    launch(fn, total, (x, y, np.int64(total), np.int32(L), np.int32(Lo),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return y


def bwd(gy, *, length: int, kernel_size: int, stride: int, padding: int):
    """Gradient of average-pool as a gather → (gx (N, C, length),), a cupy array."""
    cp = cupy()
    gy = cp.ascontiguousarray(gy)
    N, C, Lo = gy.shape
    gx = cp.empty((N, C, length), dtype=gy.dtype)
    total = N * C * length
    fn = kernel(SOURCE, KERNELS, "avgpool1d_bwd", gy.dtype)
    launch(fn, total, (gy, gx, np.int64(total), np.int32(length), np.int32(Lo),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return (gx,)
