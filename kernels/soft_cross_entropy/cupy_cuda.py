"""soft_cross_entropy (probability targets), CUDA kernels (through CuPy).

Parallel strategy: the row kernels' (kernels/_rows_cuda.py): a group of G lanes of one warp
owns one row (lane j takes columns j, j + G, ...); (m, L) comes from the shared
row_max_logsum of kernels/_rows_cuda.py, the weighted loss and Σ p are group sums (butterfly
shuffles), lane 0 of the group writes the row's loss and lse. Sums in double.

math: see SPEC (kernels/soft_cross_entropy/__init__.py).
"""

from __future__ import annotations

from kernels._cuda import cupy
from kernels._rows_cuda import ROW_HELPERS, launch_rows

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = (
    ROW_HELPERS
    + r"""
// Thread -> index map: global thread t; row i = t / G; lane j = t % G handles columns
// k = j, j + G, j + 2G, ... < K of row i; lane 0 writes loss[i] and lse[i]. Threads with
// i >= M load and store nothing but still join the shuffles.
template <typename T>
__global__ void soft_cross_entropy_fwd(const T* x, const T* p, T* loss, T* lse,
                                       long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    T m;
    double L;
    row_max_logsum(x + row, K, j, G, live, m, L);
    double acc = 0.0;
    if (live)
        for (int k = j; k < K; k += G)
            acc += (double)p[row + k] * (((double)m - (double)x[row + k]) + L);
    acc = group_sum(acc, G);
    if (live && j == 0) {
        loss[i] = (T)acc;
        lse[i] = (T)((double)m + L);
    }
}

// Thread -> index map: as soft_cross_entropy_fwd; lane j writes gx and gp at its columns.
template <typename T>
__global__ void soft_cross_entropy_bwd(const T* gloss, const T* x, const T* p, const T* lse,
                                       T* gx, T* gp, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    double P = 0.0;
    if (live) for (int k = j; k < K; k += G) P += (double)p[row + k];
    P = group_sum(P, G);
    if (live) {
        double g = (double)gloss[i];
        double l = (double)lse[i];
        for (int k = j; k < K; k += G) {
            double v = (double)x[row + k];
            gx[row + k] = (T)(g * (exp_acc(v - l, T(0)) * P - (double)p[row + k]));
            gp[row + k] = (T)(g * (l - v));
        }
    }
}
"""
)

KERNELS = ("soft_cross_entropy_fwd", "soft_cross_entropy_bwd")


def fwd(x, p):
    """loss = Σ_k p·(logsumexp(x) − x) per row. x, p (M, K) -> (loss (M,), lse (M,))."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    p = cp.ascontiguousarray(p)
    M, K = x.shape
    loss = cp.empty(M, dtype=x.dtype)
    lse = cp.empty(M, dtype=x.dtype)
    launch_rows(SOURCE, KERNELS, "soft_cross_entropy_fwd", x.dtype, M, K, (x, p, loss, lse))
    return loss, lse


def bwd(gloss, x, p, lse):
    """gx = gloss·(softmax(x)·Σ_k p − p), gp = gloss·(lse − x). gloss (M,), x, p (M, K),
    lse (M,) -> (gx (M, K), gp (M, K))."""
    cp = cupy()
    gloss = cp.ascontiguousarray(gloss)
    x = cp.ascontiguousarray(x)
    p = cp.ascontiguousarray(p)
    lse = cp.ascontiguousarray(lse)
    M, K = x.shape
    gx = cp.empty((M, K), dtype=x.dtype)
    gp = cp.empty((M, K), dtype=x.dtype)
    launch_rows(
        SOURCE, KERNELS, "soft_cross_entropy_bwd", x.dtype, M, K, (gloss, x, p, lse, gx, gp)
    )
    return gx, gp
