"""tanh-RNN layer on the GPU: cuBLAS for the big products, one persistent kernel per
direction.

Parallel strategy: a persistent walk kernel (kernels/_recurrent_cuda.py): one CUDA block
owns a few batch rows (``rows``) and walks them through all T steps, with __syncthreads()
between steps; W_hh sits in dynamic shared memory when the device allows that much. The
input projection x W_ihᵀ + b_ih + b_hh, and gx, gw_ih, gw_hh after the backward walk, are
cuBLAS products (``input_grads``, ``column_sums``); ``launch_recurrence`` is the launch plan.

Memory access: in the forward product thread j reads W_hhᵀ[k, j] (a transposed copy), so
a warp reads consecutive words (no bank conflicts) while h[r, k] is a broadcast; the
backward product reads W_hh[j, k] with thread k the same way.

Against cuDNN: benchmarks/NOTES.md, item 27.

math: see SPEC (``kernels/rnn/__init__.py``).
"""

from __future__ import annotations

from kernels._cuda import cupy, kernel
from kernels._recurrent_cuda import column_sums, input_grads, launch_recurrence

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
template <typename T>
__global__ void rnn_fwd(const T* __restrict__ p,      // (N, steps, H) x W_ihᵀ + b_ih + b_hh
                        const T* __restrict__ h0,     // (N, H)
                        const T* __restrict__ w_hhT,  // (H, H) W_hh transposed
                        T* __restrict__ hs,           // (N, steps, H)
                        int N, int steps, int H, int rows, int w_in_smem) {
    // Block b owns batch rows n0 = b·rows … n0 + nr − 1 for all steps.
    // Thread ↔ q = r·H + j (strided by blockDim) computes h_t[j] of row r from h_{t−1},
    // reading one shared buffer and writing the other (they swap every step).
    // Shared: [W_hhᵀ (H·H) if w_in_smem] [buffer A (rows·H)] [buffer B (rows·H)].
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sm = reinterpret_cast<T*>(smem_raw);
    const int n0 = blockIdx.x * rows;
    const int nr = min(rows, N - n0);
    if (nr <= 0) return;  // whole block: no __syncthreads() is skipped by part of it
    const T* W = w_hhT;
    T* h = sm;
    if (w_in_smem) {
        for (int q = threadIdx.x; q < H * H; q += blockDim.x) sm[q] = w_hhT[q];
        W = sm;
        h = sm + H * H;
    }
    T* hn = h + rows * H;
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) h[q] = h0[(size_t)n0 * H + q];
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int j = q - r * H;
            const size_t at = ((size_t)(n0 + r) * steps + t) * H + j;
            const T* hr = h + r * H;
            T a = p[at];
            for (int k = 0; k < H; ++k) a += hr[k] * W[k * H + j];
            const T v = tanh(a);
            hn[q] = v;
            hs[at] = v;
        }
        __syncthreads();  // h_t complete; nobody reads h_{t−1} any more
        T* tmp = h;
        h = hn;
        hn = tmp;
    }
}

template <typename T>
__global__ void rnn_bwd(const T* __restrict__ ghs,   // (N, steps, H)
                        const T* __restrict__ w_hh,  // (H, H)
                        const T* __restrict__ hs,    // (N, steps, H)
                        T* __restrict__ ga,          // (N, steps, H) out
                        T* __restrict__ gh0,         // (N, H) out
                        int N, int steps, int H, int rows, int w_in_smem) {
    // Block b owns batch rows n0 = b·rows … n0 + nr − 1, walking t = steps−1 … 0.
    // Phase 1: thread ↔ q = r·H + j computes ga_t[j] of row r.
    // Phase 2: thread ↔ q = r·H + k computes g_next[r, k] = Σ_j ga_t[r, j]·W_hh[j, k].
    // Shared: [W_hh (H·H) if w_in_smem] [g_next (rows·H)] [gas (rows·H)].
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sm = reinterpret_cast<T*>(smem_raw);
    const int n0 = blockIdx.x * rows;
    const int nr = min(rows, N - n0);
    if (nr <= 0) return;
    const T* W = w_hh;
    T* g_next = sm;
    if (w_in_smem) {
        for (int q = threadIdx.x; q < H * H; q += blockDim.x) sm[q] = w_hh[q];
        W = sm;
        g_next = sm + H * H;
    }
    T* gas = g_next + rows * H;
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) g_next[q] = T(0);
    __syncthreads();
    for (int t = steps - 1; t >= 0; --t) {
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int j = q - r * H;
            const size_t at = ((size_t)(n0 + r) * steps + t) * H + j;
            const T h = hs[at];
            const T v = (ghs[at] + g_next[q]) * (T(1) - h * h);
            gas[q] = v;
            ga[at] = v;
        }
        __syncthreads();
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int k = q - r * H;
            const T* gr = gas + r * H;
            T s = T(0);
            for (int j = 0; j < H; ++j) s += gr[j] * W[j * H + k];
            g_next[q] = s;
        }
        __syncthreads();
    }
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) gh0[(size_t)n0 * H + q] = g_next[q];
}
"""

KERNELS = ("rnn_fwd", "rnn_bwd")

def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """tanh-RNN forward: ``hs (N, T, H)``; see the reference for the API."""
    cp = cupy()
    N, steps, D = x.shape
    H = h0.shape[1]
    p = x.reshape(N * steps, D) @ w_ih.T  # (N·T, H), cuBLAS
    p += b_ih + b_hh
    hs = cp.empty((N, steps, H), dtype=x.dtype)
    if N > 0:
        fn = kernel(SOURCE, KERNELS, "rnn_fwd", x.dtype)
        args = (p, h0, cp.ascontiguousarray(w_hh.T), hs)
        launch_recurrence(fn, "rnn", x.dtype, N, steps, H, w_size=H * H, per_row=2 * H, args=args)
    return hs


def bwd(ghs, x, h0, w_ih, w_hh, hs):
    """tanh-RNN backward: ``(gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    cp = cupy()
    N, steps, D = x.shape
    H = h0.shape[1]
    if N == 0:
        gb = cp.zeros(H, dtype=x.dtype)
        return (
            cp.zeros_like(x),
            cp.zeros_like(h0),
            cp.zeros_like(w_ih),
            cp.zeros_like(w_hh),
            gb,
            gb.copy(),
        )
    ga = cp.empty((N, steps, H), dtype=x.dtype)
    gh0 = cp.empty((N, H), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "rnn_bwd", x.dtype)
    args = (ghs, w_hh, hs, ga, gh0)
    launch_recurrence(fn, "rnn", x.dtype, N, steps, H, w_size=H * H, per_row=2 * H, args=args)
    gx, gw_ih, gw_hh = input_grads(ga, ga, x, h0, hs, w_ih)
    gb = column_sums(ga.reshape(N * steps, H))
    return gx, gh0, gw_ih, gw_hh, gb, gb.copy()
