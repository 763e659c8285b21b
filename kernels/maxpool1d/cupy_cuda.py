"""maxpool1d on the GPU: CUDA C compiled at first use through cupy.RawModule.

Parallel strategy: arrays are viewed as R = N·C rows. fwd: one thread per output element
(r, t), consecutive threads on consecutive t, so the writes of y and argmax are coalesced
and the reads of x fall in the same few cache lines. bwd is a gather, not a scatter: one
thread per gx element (r, j) sums gy over the windows that contain j and chose j, in
increasing t, so no atomics are needed and the sum is bitwise the Numba scatter's.
Windows are compared exactly as in numba_cpu.py (clamped positions, strict >, NaN rule),
so y and argmax are bitwise equal across backends. math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch
from kernels.maxpool1d.reference import out_length

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
template <typename T>
__global__ void maxpool1d_fwd(const T* __restrict__ x, T* __restrict__ y,
                              int* __restrict__ argmax, long long total,
                              int L, int Lo, int K, int S, int P)
{
    // thread i -> output element i of y and argmax seen as (R, Lo): row r = i / Lo,
    // window t = i % Lo; it reads x[r, t*S - P + k] for k = 0 .. K-1 (clamped into [0, L)).
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r = i / Lo;
    int t = (int)(i - r * Lo);
    const T* xr = x + r * L;
    int start = t * S - P;
    int arg = start > 0 ? start : 0;
    T best = xr[arg];
    for (int k = 1; k < K; ++k) {
        // a clamped position is the window's first or last real one, already compared
        int j = start + k;
        j = j < 0 ? 0 : (j > L - 1 ? L - 1 : j);
        T v = xr[j];
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
    const int* ar = argmax + r * Lo;
    T s = T(0);
    for (int t = t_lo; t <= t_hi; ++t) {
        if (ar[t] == j) s += gyr[t];
    }
    gx[i] = s;
}
"""

KERNELS = ("maxpool1d_fwd", "maxpool1d_bwd")


def fwd(x, *, kernel_size: int, stride: int, padding: int):
    """Max-pool (N, C, L) → (y (N, C, Lo), argmax (N, C, Lo) int32), cupy arrays."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = cp.empty((N, C, Lo), dtype=x.dtype)
    argmax = cp.empty((N, C, Lo), dtype=cp.int32)
    total = N * C * Lo
    fn = kernel(SOURCE, KERNELS, "maxpool1d_fwd", x.dtype)
    launch(fn, total, (x, y, argmax, np.int64(total), np.int32(L), np.int32(Lo),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return y, argmax


def bwd(gy, argmax, *, length: int, kernel_size: int, stride: int, padding: int):
    """Gradient of max-pool as a gather → (gx (N, C, length),), a cupy array."""
    cp = cupy()
    gy = cp.ascontiguousarray(gy)
    argmax = cp.ascontiguousarray(argmax, dtype=cp.int32)
    N, C, Lo = gy.shape
    gx = cp.empty((N, C, length), dtype=gy.dtype)
    total = N * C * length
    fn = kernel(SOURCE, KERNELS, "maxpool1d_bwd", gy.dtype)
    launch(fn, total, (gy, argmax, gx, np.int64(total), np.int32(length), np.int32(Lo),
                       np.int32(kernel_size), np.int32(stride), np.int32(padding)))
    return (gx,)
