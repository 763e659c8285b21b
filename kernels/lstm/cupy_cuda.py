"""LSTM layer on the GPU: cuBLAS for the big products, one persistent kernel per direction.

Parallel strategy: a persistent walk kernel (kernels/_recurrent_cuda.py): one CUDA block
owns a few batch rows (``rows``) and walks them through all T steps, with __syncthreads()
between the phases of a step. W_hh (4H·H values, 64 KiB in float32 at H = 64) sits in
dynamic shared memory when the device allows that much (opt-in above 48 KiB), in global
memory otherwise. The input projection x W_ihᵀ + b_ih + b_hh, and gx, gw_ih, gw_hh after
the backward walk, are cuBLAS products (``input_grads``, ``column_sums``).

Memory access: in the forward product thread j reads W_hhᵀ[k, j] (the transposed copy),
so a warp reads consecutive words (no bank conflicts) while h[r, k] is a broadcast; the
backward product reads W_hh[j, k] with thread k the same way.

Against cuDNN: benchmarks/NOTES.md, item 27.

math: see SPEC (``kernels/lstm/__init__.py``).
"""

from __future__ import annotations

from kernels._cuda import cupy, kernel
from kernels._recurrent_cuda import column_sums, input_grads, launch_recurrence

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
template <typename T>
__device__ __forceinline__ T lstm_sigmoid(T a) {
    // σ(a) from e = exp(−|a|), so exp never overflows
    T e = exp(-fabs(a));
    T s = T(1) / (T(1) + e);
    return a >= T(0) ? s : e * s;
}

template <typename T>
__global__ void lstm_fwd(const T* __restrict__ p,      // (N, steps, 4H) x W_ihᵀ + b_ih + b_hh
                         const T* __restrict__ h0,     // (N, H)
                         const T* __restrict__ c0,     // (N, H)
                         const T* __restrict__ w_hhT,  // (H, 4H) W_hh transposed
                         T* __restrict__ hs,           // (N, steps, H)
                         T* __restrict__ cs,           // (N, steps, H)
                         T* __restrict__ gates,        // (N, steps, 4H)
                         int N, int steps, int H, int rows, int w_in_smem) {
    // Block b owns batch rows n0 = b·rows … n0 + nr − 1 for all steps.
    // Phase 1: thread ↔ q = r·4H + j (strided by blockDim) computes gate j of row r.
    // Phase 2: thread ↔ q = r·H + k updates c and h of unit k of row r.
    // Shared: [W_hhᵀ (H·4H) if w_in_smem] [h (rows·H)] [c (rows·H)] [act (rows·4H)].
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sm = reinterpret_cast<T*>(smem_raw);
    const int G = 4 * H;
    const int n0 = blockIdx.x * rows;
    const int nr = min(rows, N - n0);
    if (nr <= 0) return;  // whole block: no __syncthreads() is skipped by part of it
    const T* W = w_hhT;
    T* h = sm;
    if (w_in_smem) {
        for (int q = threadIdx.x; q < H * G; q += blockDim.x) sm[q] = w_hhT[q];
        W = sm;
        h = sm + H * G;
    }
    T* c = h + rows * H;
    T* act = c + rows * H;
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
        h[q] = h0[(size_t)n0 * H + q];
        c[q] = c0[(size_t)n0 * H + q];
    }
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        for (int q = threadIdx.x; q < nr * G; q += blockDim.x) {
            const int r = q / G;
            const int j = q - r * G;
            const size_t at = ((size_t)(n0 + r) * steps + t) * G + j;
            const T* hr = h + r * H;
            T z = p[at];
            for (int k = 0; k < H; ++k) z += hr[k] * W[k * G + j];
            const T a = (j >= 2 * H && j < 3 * H) ? tanh(z) : lstm_sigmoid(z);
            act[q] = a;
            gates[at] = a;
        }
        __syncthreads();
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int k = q - r * H;
            const T* ar = act + r * G;
            const T cn = ar[H + k] * c[q] + ar[k] * ar[2 * H + k];
            const T hn = ar[3 * H + k] * tanh(cn);
            c[q] = cn;
            h[q] = hn;
            const size_t at = ((size_t)(n0 + r) * steps + t) * H + k;
            cs[at] = cn;
            hs[at] = hn;
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void lstm_bwd(const T* __restrict__ ghs,    // (N, steps, H)
                         const T* __restrict__ gcs,    // (N, steps, H)
                         const T* __restrict__ c0,     // (N, H)
                         const T* __restrict__ w_hh,   // (4H, H)
                         const T* __restrict__ cs,     // (N, steps, H)
                         const T* __restrict__ gates,  // (N, steps, 4H)
                         T* __restrict__ gz,           // (N, steps, 4H) out
                         T* __restrict__ gh0,          // (N, H) out
                         T* __restrict__ gc0,          // (N, H) out
                         int N, int steps, int H, int rows, int w_in_smem) {
    // Block b owns batch rows n0 = b·rows … n0 + nr − 1, walking t = steps−1 … 0.
    // Phase 1: thread ↔ q = r·H + k computes the four gate gradients of unit k of row r.
    // Phase 2: thread ↔ q = r·H + k computes gh_next[r, k] = Σ_j gz[r, j]·W_hh[j, k].
    // Shared: [W_hh (4H·H) if w_in_smem] [gh_next (rows·H)] [gc_next (rows·H)]
    //         [gzs (rows·4H)].
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sm = reinterpret_cast<T*>(smem_raw);
    const int G = 4 * H;
    const int n0 = blockIdx.x * rows;
    const int nr = min(rows, N - n0);
    if (nr <= 0) return;
    const T* W = w_hh;
    T* gh_next = sm;
    if (w_in_smem) {
        for (int q = threadIdx.x; q < G * H; q += blockDim.x) sm[q] = w_hh[q];
        W = sm;
        gh_next = sm + G * H;
    }
    T* gc_next = gh_next + rows * H;
    T* gzs = gc_next + rows * H;
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
        gh_next[q] = T(0);
        gc_next[q] = T(0);
    }
    __syncthreads();
    for (int t = steps - 1; t >= 0; --t) {
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int k = q - r * H;
            const int n = n0 + r;
            const size_t at = ((size_t)n * steps + t) * H + k;
            const size_t ag = ((size_t)n * steps + t) * G + k;
            const T i = gates[ag];
            const T f = gates[ag + H];
            const T g = gates[ag + 2 * H];
            const T o = gates[ag + 3 * H];
            const T tc = tanh(cs[at]);
            const T cp = t > 0 ? cs[at - H] : c0[(size_t)n * H + k];
            const T gh = ghs[at] + gh_next[q];
            const T gc = gcs[at] + gh * o * (T(1) - tc * tc) + gc_next[q];
            const T zi = gc * g * i * (T(1) - i);
            const T zf = gc * cp * f * (T(1) - f);
            const T zg = gc * i * (T(1) - g * g);
            const T zo = gh * tc * o * (T(1) - o);
            T* gr = gzs + r * G;
            gr[k] = zi;
            gr[H + k] = zf;
            gr[2 * H + k] = zg;
            gr[3 * H + k] = zo;
            gz[ag] = zi;
            gz[ag + H] = zf;
            gz[ag + 2 * H] = zg;
            gz[ag + 3 * H] = zo;
            gc_next[q] = gc * f;
        }
        __syncthreads();
        for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
            const int r = q / H;
            const int k = q - r * H;
            const T* gr = gzs + r * G;
            T s = T(0);
            for (int j = 0; j < G; ++j) s += gr[j] * W[j * H + k];
            gh_next[q] = s;
        }
        __syncthreads();
    }
    for (int q = threadIdx.x; q < nr * H; q += blockDim.x) {
        gh0[(size_t)n0 * H + q] = gh_next[q];
        gc0[(size_t)n0 * H + q] = gc_next[q];
    }
}
"""

KERNELS = ("lstm_fwd", "lstm_bwd")


def fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """LSTM forward: ``(hs, cs (N, T, H), gates (N, T, 4H))``; see the reference for the API."""
    cp = cupy()
    N, steps, D = x.shape
    H = h0.shape[1]
    p = x.reshape(N * steps, D) @ w_ih.T  # (N·T, 4H), cuBLAS
    p += b_ih + b_hh
    hs = cp.empty((N, steps, H), dtype=x.dtype)
    cs = cp.empty((N, steps, H), dtype=x.dtype)
    gates = cp.empty((N, steps, 4 * H), dtype=x.dtype)
    if N > 0:
        w_hhT = cp.ascontiguousarray(w_hh.T)  # (H, 4H)
        fn = kernel(SOURCE, KERNELS, "lstm_fwd", x.dtype)
        args = (p, h0, c0, w_hhT, hs, cs, gates)
        launch_recurrence(
            fn, "lstm", x.dtype, N, steps, H, w_size=4 * H * H, per_row=6 * H, args=args
        )
    return hs, cs, gates


def bwd(ghs, gcs, x, h0, c0, w_ih, w_hh, hs, cs, gates):
    """LSTM backward: ``(gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    cp = cupy()
    N, steps, D = x.shape
    H = h0.shape[1]
    G = 4 * H
    if N == 0:
        gb = cp.zeros(G, dtype=x.dtype)
        return (
            cp.zeros_like(x),
            cp.zeros_like(h0),
            cp.zeros_like(c0),
            cp.zeros_like(w_ih),
            cp.zeros_like(w_hh),
            gb,
            gb.copy(),
        )
    gz = cp.empty((N, steps, G), dtype=x.dtype)
    gh0 = cp.empty((N, H), dtype=x.dtype)
    gc0 = cp.empty((N, H), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "lstm_bwd", x.dtype)
    args = (ghs, gcs, c0, w_hh, cs, gates, gz, gh0, gc0)
    launch_recurrence(fn, "lstm", x.dtype, N, steps, H, w_size=4 * H * H, per_row=6 * H, args=args)
    gx, gw_ih, gw_hh = input_grads(gz, gz, x, h0, hs, w_ih)
    gb = column_sums(gz.reshape(N * steps, G))
    return gx, gh0, gc0, gw_ih, gw_hh, gb, gb.copy()
