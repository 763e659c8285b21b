"""cross_entropy with integer labels, CUDA kernels (through CuPy).

Parallel strategy: the row kernels' (kernels/_rows_cuda.py): a group of G lanes of one warp
owns one row (lane j takes columns j, j + G, ...); (m, L) comes from the shared
row_max_logsum of kernels/_rows_cuda.py and lane 0 of the group writes the row's loss and
lse. In backward each lane writes its own columns off the label and the group's sum of them
goes to the label's entry (lane 0): a gather, no atomics. Sums in double.

math: see SPEC (kernels/cross_entropy/__init__.py).
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
__global__ void cross_entropy_fwd(const T* x, const long long* labels, T* loss, T* lse,
                                  long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    T m;
    double L;
    row_max_logsum(x + row, K, j, G, live, m, L);
    if (live && j == 0) {
        loss[i] = (T)(((double)m - (double)x[row + labels[i]]) + L);
        lse[i] = (T)((double)m + L);
    }
}

// Thread -> index map: as cross_entropy_fwd; lane j writes gx at its columns k != label,
// lane 0 writes gx[i, label] = -gloss[i] * (the group's sum of those softmax values).
template <typename T>
__global__ void cross_entropy_bwd(const T* gloss, const T* x, const long long* labels,
                                  const T* lse, T* gx, long long M, int K, int G) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long i = t / G;
    int j = (int)(t % G);
    bool live = i < M;
    long long row = live ? i * (long long)K : 0;
    double off_label = 0.0;
    double g = 0.0;
    long long y = 0;
    if (live) {
        g = (double)gloss[i];
        double l = (double)lse[i];
        y = labels[i];
        for (int k = j; k < K; k += G) {
            if (k != y) {
                double s = exp_acc((double)x[row + k] - l, T(0));
                gx[row + k] = (T)(g * s);
                off_label += s;
            }
        }
    }
    off_label = group_sum(off_label, G);
    if (live && j == 0) gx[row + y] = (T)(-g * off_label);
}
"""
)

KERNELS = ("cross_entropy_fwd", "cross_entropy_bwd")


def fwd(x, labels):
    """loss = logsumexp(x) − x[label] per row. x (M, K), labels (M,) int64
    -> (loss (M,), lse (M,))."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    labels = cp.ascontiguousarray(labels, dtype=cp.int64)
    M, K = x.shape
    loss = cp.empty(M, dtype=x.dtype)
    lse = cp.empty(M, dtype=x.dtype)
    launch_rows(SOURCE, KERNELS, "cross_entropy_fwd", x.dtype, M, K, (x, labels, loss, lse))
    return loss, lse


def bwd(gloss, x, labels, lse):
    """gx = gloss·(softmax(x) − onehot(labels)). gloss (M,), x (M, K), labels (M,),
    lse (M,) -> (gx (M, K), None)."""
    cp = cupy()
    gloss = cp.ascontiguousarray(gloss)
    x = cp.ascontiguousarray(x)
    labels = cp.ascontiguousarray(labels, dtype=cp.int64)
    lse = cp.ascontiguousarray(lse)
    M, K = x.shape
    gx = cp.empty((M, K), dtype=x.dtype)
    launch_rows(
        SOURCE, KERNELS, "cross_entropy_bwd", x.dtype, M, K, (gloss, x, labels, lse, gx)
    )
    return gx, None
