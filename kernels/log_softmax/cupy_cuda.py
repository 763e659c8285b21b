"""log_softmax, CUDA kernels (through CuPy).

Parallel strategy: the row kernels' (kernels/_rows_cuda.py): a group of G lanes of one warp
owns one row (lane j takes columns j, j + G, ...), the row's max, sum and tie count are
combined with butterfly shuffles (the shared helpers of kernels/_rows_cuda.py, whose
row_max_logsum computes (m, L)); fwd and bwd launch through its map_rows. Sums in double.

math: see SPEC (kernels/log_softmax/__init__.py).
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
__global__ void log_softmax_fwd(const T* x, T* y, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    T m;
    double L;
    row_max_logsum(x + row, K, j, G, live, m, L);
    if (live)
        for (int k = j; k < K; k += G) y[row + k] = (T)(((double)x[row + k] - (double)m) - L);
}

// Thread -> index map: as log_softmax_fwd (G lanes per row, lane j takes columns j + G*r).
template <typename T>
__global__ void log_softmax_bwd(const T* gy, const T* y, T* gx, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    double S = 0.0;
    if (live) for (int k = j; k < K; k += G) S += (double)gy[row + k];
    S = group_sum(S, G);
    if (live)
        for (int k = j; k < K; k += G)
            gx[row + k] = (T)((double)gy[row + k] - (double)exp(y[row + k]) * S);
}
"""
)

KERNELS = ("log_softmax_fwd", "log_softmax_bwd")


def fwd(x):
    """y = log_softmax(x) along the last axis. x (M, K) -> y (M, K)."""
    return map_rows(SOURCE, KERNELS, "log_softmax_fwd", x)


def bwd(gy, y):
    """gx = gy − exp(y)·Σ_k gy. gy, y (M, K) -> (gx (M, K),)."""
    return (map_rows(SOURCE, KERNELS, "log_softmax_bwd", gy, y),)
