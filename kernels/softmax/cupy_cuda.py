"""softmax, CUDA kernels (through CuPy).

Parallel strategy: the row kernels' (kernels/_rows_cuda.py): a group of G lanes of one
warp owns one row, lane j reads columns j, j + G, j + 2G, ..., and the row's maximum and
sum are combined with butterfly shuffles, no shared memory and no atomics. The row is read
three times (max, sum, write), the later reads from L1. Sums in double; exp of a double
argument (exp_acc of ROW_HELPERS).

math: see SPEC (kernels/softmax/__init__.py).
"""

from __future__ import annotations

from kernels._rows_cuda import ROW_HELPERS, map_rows

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = (
    ROW_HELPERS
    + r"""
// Thread -> index map: global thread t; row i = t / G; lane j = t % G handles columns
// k = j, j + G, j + 2G, ... < K of row i. Threads with i >= M load and store nothing but
// still join the shuffles.
template <typename T>
__global__ void softmax_fwd(const T* x, T* y, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    T m = neg_inf(T(0));
    if (live) for (int k = j; k < K; k += G) m = max_nan(m, x[row + k]);
    m = group_max(m, G);
    double s = 0.0;
    if (live) for (int k = j; k < K; k += G) s += exp_acc((double)x[row + k] - (double)m, T(0));
    s = group_sum(s, G);
    if (live) {
        double inv = 1.0 / s;
        for (int k = j; k < K; k += G)
            y[row + k] = (T)(exp_acc((double)x[row + k] - (double)m, T(0)) * inv);
    }
}

// Thread -> index map: as softmax_fwd (G lanes per row, lane j takes columns j + G*r).
template <typename T>
__global__ void softmax_bwd(const T* gy, const T* y, T* gx, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    double s = 0.0;
    if (live) for (int k = j; k < K; k += G) s += (double)gy[row + k] * (double)y[row + k];
    s = group_sum(s, G);
    if (live)
        for (int k = j; k < K; k += G)
            gx[row + k] = (T)((double)y[row + k] * ((double)gy[row + k] - s));
}
"""
)

KERNELS = ("softmax_fwd", "softmax_bwd")


def fwd(x):
    """y = softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    return map_rows(SOURCE, KERNELS, "softmax_fwd", x)


def bwd(gy, y):
    """gx = y ⊙ (gy − Σ_k gy·y). gy, y (M, K) -> (gx (M, K),)."""
    return (map_rows(SOURCE, KERNELS, "softmax_bwd", gy, y),)
