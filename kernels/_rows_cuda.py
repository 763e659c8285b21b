"""Row helpers of the softmax family on the GPU (CUDA through CuPy), shared by softmax,
log_softmax, cross_entropy and soft_cross_entropy: the device helpers that each family's
``SOURCE`` begins with, and the launch of a row kernel.

Parallel strategy of every row kernel: a group of G lanes (a power of two ≤ 32, chosen from
K by ``lanes_per_row``) of one warp owns one row; lane j reads columns j, j + G, j + 2G, ...
(for the article's K = 10, G = 4 and a warp covers 8 consecutive rows, 320 contiguous
bytes). Row maxima and sums are combined across the group with butterfly shuffles
(__shfl_xor_sync), so no shared memory and no atomics. Sums in double; exp of a double
argument (see exp_acc).

math: see SPEC (kernels/log_softmax/__init__.py for row_max_logsum).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch

__all__ = ["ROW_HELPERS", "lanes_per_row", "launch_rows", "map_rows"]

#: Device helpers of the row kernels; each family's SOURCE is ROW_HELPERS + its kernels.
ROW_HELPERS = r"""
// -inf of the type of the (unused) tag argument.
__device__ __forceinline__ float neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double neg_inf(double) {
    return __longlong_as_double((long long)0xfff0000000000000ULL);
}

// exp(d) for a double argument d, as accurate as the tag's type needs. For float the
// argument is split into its float part h and the rest l = d - h (|l| <= 2^-24 |h|), and
// exp(h + l) = exp(h) exp(l) ~ exp(h) (1 + l): the float exp never sees a rounded
// argument, so the result keeps float's few-ulp accuracy even when |d| is large.
// d = -inf (a masked logit) gives h = -inf, l = NaN and e = 0: return the 0 directly.
__device__ __forceinline__ double exp_acc(double d, float) {
    float h = (float)d;
    double e = (double)expf(h);
    if (e == 0.0) return 0.0;
    float l = (float)(d - (double)h);
    return e + e * (double)l;
}
__device__ __forceinline__ double exp_acc(double d, double) { return exp(d); }

// Reductions over the G lanes (a power of two <= 32) that share a row: butterfly
// shuffles stay inside each aligned group of G lanes. Every lane of the warp must call
// them (threads past the last row included), since the mask is the full warp.
__device__ __forceinline__ double group_sum(double v, int G) {
    for (int off = G >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ int group_sum_int(int v, int G) {
    for (int off = G >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
// max that keeps a NaN (fmax returns the other operand): a NaN row stays NaN, as in the
// reference's x.max()
template <typename T>
__device__ __forceinline__ T max_nan(T a, T b) { return (a != a || a >= b) ? a : b; }
template <typename T>
__device__ __forceinline__ T group_max(T v, int G) {
    for (int off = G >> 1; off > 0; off >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// Row maximum m and L = log(sum_k exp(x[k] - m)) of the row at xr (K columns; this lane
// reads columns j, j + G, ...), with L = log1p(sum_{x[k] < m} exp(x[k] - m) + (ties - 1)),
// ties = #{k : x[k] = m}: the maximum's exp(0) = 1 is taken out of the sum, so L keeps its
// relative accuracy when one logit dominates (L ~ 0). Every lane of the group gets m and
// L; lanes with live == false read nothing and only join the shuffles.
template <typename T>
__device__ __forceinline__ void row_max_logsum(const T* xr, int K, int j, int G, bool live,
                                               T& m, double& L) {
    m = neg_inf(T(0));
    if (live) for (int k = j; k < K; k += G) m = max_nan(m, xr[k]);
    m = group_max(m, G);
    double below = 0.0;
    int ties = 0;
    if (live) {
        for (int k = j; k < K; k += G) {
            T v = xr[k];
            if (v < m) below += exp_acc((double)v - (double)m, T(0));
            else if (v == m) ties += 1;
        }
    }
    below = group_sum(below, G);
    ties = group_sum_int(ties, G);
    L = log1p(below + (double)(ties - 1));
}
"""


def lanes_per_row(K: int) -> int:
    """Lanes G that share a row: the smallest power of two with 4·G ≥ K, at most 32
    (each lane then takes about four columns; K = 10 -> 4, K ≥ 65 -> 32)."""
    g = 1
    while g < 32 and 4 * g < K:
        g *= 2
    return g


def launch_rows(source: str, names: tuple, name: str, dtype, M: int, K: int, arrays) -> None:
    """Launch row kernel ``name`` with G lanes for each of the M rows of K columns; the
    kernel's trailing arguments are (long long M, int K, int G)."""
    G = lanes_per_row(K)
    fn = kernel(source, names, name, dtype)
    launch(fn, M * G, (*arrays, np.int64(M), np.int32(K), np.int32(G)))


def map_rows(source: str, names: tuple, name: str, *inputs):
    """out = a new (M, K) array of the last input's dtype, written by row kernel ``name``
    of (*inputs, out, long long M, int K, int G) from C-contiguous copies of the (M, K)
    inputs. The element-wise row families (softmax, log_softmax) share it."""
    cp = cupy()
    inputs = tuple(cp.ascontiguousarray(a) for a in inputs)
    M, K = inputs[-1].shape
    out = cp.empty((M, K), dtype=inputs[-1].dtype)
    launch_rows(source, names, name, out.dtype, M, K, (*inputs, out))
    return out
