"""head_losses, CUDA kernels (through CuPy).

Parallel strategy. Forward: a block owns up to ROWS_PER_BLOCK consecutive rows; its first
P = ⌊blockDim/T⌋·T threads take (row, task) pairs: thread q computes task t = q mod T of the
rows r0 + q div T, r0 + q div T + P/T, ... (serially over the task's K columns, in double),
and keeps one running sum. The block then reduces in a fixed order (thread t < T adds the
sums of threads t, t + T, t + 2T, ... from shared memory). With one block (N ≤
ROWS_PER_BLOCK: the article's batches of 32..256 rows) the same launch writes the means
and the total: one launch. With more blocks each writes its T partial sums and a second,
one-block kernel adds them in block order: two launches. No atomics, so the result is
the same bits run to run. Backward: one thread per (row, task) pair writes that task's K
columns of the row (a gather: every gx element is written once), the factors a_t / c_t
computed in-kernel from g, so no host work sits between the forward and the backward.
Sums in double.

math: see SPEC (kernels/head_losses/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch, launch_grid

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS", "ROWS_PER_BLOCK"]

#: rows of one forward block; up to this many rows the forward is one launch
ROWS_PER_BLOCK = 4096
#: threads of a forward block (at least T are needed: one per task)
MAX_THREADS = 1024

SOURCE = r"""
// The loss of task t's row i (spec row t = kind, s, K, j), in double; lse_out is written
// for kind 0. A label outside [0, K) gives NaN and reads nothing.
template <typename T>
__device__ double row_loss(const T* x, const long long* labels, const T* targets,
                           const long long* spec, long long N, int W, long long i, int t,
                           T* lse) {
    long long kind = spec[4 * t], s = spec[4 * t + 1], K = spec[4 * t + 2], j = spec[4 * t + 3];
    const T* z = x + i * (long long)W + s;
    double nan = __longlong_as_double(0x7ff8000000000000LL);
    if (kind == 0) {
        long long y = labels[j * N + i];
        if (y < 0 || y >= K) { lse[j * N + i] = (T)nan; return nan; }
        double m = -__longlong_as_double(0x7ff0000000000000LL);
        for (long long k = 0; k < K; ++k) {
            double v = (double)z[k];
            m = (v > m || v != v) ? v : m;           // a NaN takes over, as x.max() does
        }
        double below = 0.0, ties = 0.0;
        for (long long k = 0; k < K; ++k) {
            double v = (double)z[k];
            if (v < m) below += exp(v - m);
            else if (v == m) ties += 1.0;
        }
        double L = log1p(below + (ties - 1.0));
        lse[j * N + i] = (T)(m + L);
        return (m - (double)z[y]) + L;
    }
    const T* yv = targets + N * j + i * K;
    double sum = 0.0;
    for (long long k = 0; k < K; ++k) {
        double v = (double)z[k], y = (double)yv[k];
        if (kind == 1) sum += (v >= 0.0 ? v * (1.0 - y) : -v * y) + log1p(exp(-fabs(v)));
        else sum += (v - y) * (v - y);
    }
    return sum;
}

// The means and the total from the T per-task sums in part[0..T) (shared), by thread 0.
template <typename T>
__device__ void write_means(const double* part, const long long* spec, const double* weights,
                            long long N, int n_tasks, T* losses) {
    double total = 0.0;
    for (int t = 0; t < n_tasks; ++t) {
        double count = spec[4 * t] == 0 ? (double)N : (double)N * (double)spec[4 * t + 2];
        double mean = part[t] / count;                 // N = 0: 0/0 = NaN
        losses[1 + t] = (T)mean;
        total += weights[t] * mean;
    }
    losses[0] = (T)total;
}

// Thread -> index map: block b owns rows [b*R, min(N, (b+1)*R)); thread q < P (= the
// largest multiple of n_tasks <= blockDim) takes task q % n_tasks of rows
// b*R + q / n_tasks, stepping by P / n_tasks rows. One block: thread 0 writes losses;
// several: thread t < n_tasks writes partial[b * n_tasks + t].
template <typename T>
__global__ void head_losses_fwd(const T* x, const long long* labels, const T* targets,
                                const long long* spec, const double* weights, T* losses,
                                T* lse, double* partial, long long N, int W, int n_tasks,
                                long long R) {
    __shared__ double part[1024];
    int q = threadIdx.x;
    int P = (blockDim.x / n_tasks) * n_tasks;
    double acc = 0.0;
    if (q < P) {
        int t = q % n_tasks;
        long long lo = (long long)blockIdx.x * R;
        long long hi = lo + R < N ? lo + R : N;
        for (long long i = lo + q / n_tasks; i < hi; i += P / n_tasks)
            acc += row_loss(x, labels, targets, spec, N, W, i, t, lse);
    }
    part[q] = acc;
    __syncthreads();
    if (q < n_tasks) {
        double s = 0.0;
        for (int r = q; r < P; r += n_tasks) s += part[r];   // fixed order
        if (gridDim.x > 1) partial[(long long)blockIdx.x * n_tasks + q] = s;
        acc = s;
    }
    __syncthreads();
    if (q < n_tasks) part[q] = acc;
    __syncthreads();
    if (gridDim.x == 1 && q == 0) write_means(part, spec, weights, N, n_tasks, losses);
}

// Thread -> index map: one block; thread t < n_tasks adds partial[b * n_tasks + t] over the
// blocks b in order; thread 0 then writes the means and the total.
template <typename T>
__global__ void head_losses_sum(const double* partial, const long long* spec,
                                const double* weights, T* losses, long long N, int n_tasks,
                                int blocks) {
    __shared__ double part[1024];
    int t = threadIdx.x;
    if (t < n_tasks) {
        double s = 0.0;
        for (int b = 0; b < blocks; ++b) s += partial[(long long)b * n_tasks + t];
        part[t] = s;
    }
    __syncthreads();
    if (t == 0) write_means(part, spec, weights, N, n_tasks, losses);
}

// Thread -> index map: thread p = i * n_tasks + t writes task t's K columns of row i, with
// b_t = (g[0] * w_t + g[1 + t] if G > 1) / c_t.
template <typename T>
__global__ void head_losses_bwd(const T* g, const T* x, const long long* labels,
                                const T* targets, const long long* spec,
                                const double* weights, const T* lse, T* gx, long long N,
                                int W, int n_tasks, int G) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= N * n_tasks) return;
    long long i = p / n_tasks;
    int t = (int)(p % n_tasks);
    long long kind = spec[4 * t], s = spec[4 * t + 1], K = spec[4 * t + 2], j = spec[4 * t + 3];
    double a = (double)g[0] * weights[t] + (G > 1 ? (double)g[1 + t] : 0.0);
    double b = a / (kind == 0 ? (double)N : (double)N * (double)K);
    const T* z = x + i * (long long)W + s;
    T* gz = gx + i * (long long)W + s;
    if (kind == 0) {
        long long y = labels[j * N + i];
        if (y < 0 || y >= K) {
            double nan = __longlong_as_double(0x7ff8000000000000LL);
            for (long long k = 0; k < K; ++k) gz[k] = (T)nan;
            return;
        }
        double l = (double)lse[j * N + i];
        double off_label = 0.0;
        for (long long k = 0; k < K; ++k) {
            if (k != y) {
                double e = exp((double)z[k] - l);
                gz[k] = (T)(b * e);
                off_label += e;
            }
        }
        gz[y] = (T)(-b * off_label);
        return;
    }
    const T* yv = targets + N * j + i * K;
    for (long long k = 0; k < K; ++k) {
        double v = (double)z[k], y = (double)yv[k];
        if (kind == 1) {
            double e = exp(-fabs(v));
            double r = e / (1.0 + e);                    // sigma(-|z|)
            gz[k] = (T)(b * (v >= 0.0 ? (1.0 - y) - r : r - y));
        } else {
            gz[k] = (T)(b * 2.0 * (v - y));
        }
    }
}
"""

KERNELS = ("head_losses_fwd", "head_losses_sum", "head_losses_bwd")


def _threads(n_tasks: int) -> int:
    if n_tasks > MAX_THREADS:
        raise ValueError(f"head_losses: at most {MAX_THREADS} tasks on CUDA, got {n_tasks}")
    return max(256, -(-n_tasks // 32) * 32)


def _normalised(cp, x, labels, targets, spec, weights):
    """C-contiguous arrays of the kernels' types (int64 labels and spec, float64 weights;
    no copy when they are already so)."""
    return (cp.ascontiguousarray(x), cp.ascontiguousarray(labels, dtype=cp.int64),
            cp.ascontiguousarray(targets, dtype=x.dtype),
            cp.ascontiguousarray(spec, dtype=cp.int64),
            cp.ascontiguousarray(weights, dtype=cp.float64))


def fwd(x, labels, targets, spec, weights):
    """Every task's mean loss and the weighted total. x (N, W), labels (Tm, N), targets
    (S,), spec (T, 4), weights (T,) -> (losses (T + 1,), lse (Tm, N))."""
    cp = cupy()
    x, labels, targets, spec, weights = _normalised(cp, x, labels, targets, spec, weights)
    N, W = x.shape
    T = spec.shape[0]
    losses = cp.empty(T + 1, dtype=x.dtype)
    lse = cp.empty(labels.shape, dtype=x.dtype)
    blocks = max(1, -(-N // ROWS_PER_BLOCK))
    partial = cp.empty(blocks * T if blocks > 1 else 1, dtype=cp.float64)
    fn = kernel(SOURCE, KERNELS, "head_losses_fwd", x.dtype)
    launch_grid(fn, (blocks,), (_threads(T),),
                (x, labels, targets, spec, weights, losses, lse, partial, np.int64(N),
                 np.int32(W), np.int32(T), np.int64(ROWS_PER_BLOCK)))
    if blocks > 1:
        fn = kernel(SOURCE, KERNELS, "head_losses_sum", x.dtype)
        launch_grid(fn, (1,), (_threads(T),),
                    (partial, spec, weights, losses, np.int64(N), np.int32(T),
                     np.int32(blocks)))
    return losses, lse


def bwd(g, x, labels, targets, spec, weights, lse):
    """gx (N, W) from g (1,) or (T + 1,) -> (gx, None, None, None, None)."""
    cp = cupy()
    x, labels, targets, spec, weights = _normalised(cp, x, labels, targets, spec, weights)
    g, lse = cp.ascontiguousarray(g, dtype=x.dtype), cp.ascontiguousarray(lse, dtype=x.dtype)
    N, W = x.shape
    T = spec.shape[0]
    gx = cp.empty((N, W), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "head_losses_bwd", x.dtype)
    launch(fn, N * T, (g, x, labels, targets, spec, weights, lse, gx, np.int64(N),
                       np.int32(W), np.int32(T), np.int32(g.shape[0])))
    return gx, None, None, None, None
