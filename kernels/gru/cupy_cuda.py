"""GRU layer on the GPU: cuBLAS (cupy matmul) for the big products, one persistent kernel
for each walk through time.

Parallel strategy: the input projection p = x W_ihᵀ + b_ih of every step is one matmul.
Then ONE kernel launch runs the whole forward recurrence: block b owns the batch rows
4b … 4b+3 (``GRU_ROWS``) and loops over t with ``__syncthreads()`` between the phases of a
step; per step, thread i computes q[·, j] = W_hh h + b_hh for j ≡ i (mod blockDim) for all
the block's rows at once (each weight is read once per row block), then the gates and the
new h of elements (row, j). The backward walk is one kernel too (t from T−1 down to 0; per
step the gate gradients of every element, then g[·, k] = z ⊙ g + gq W_hh for k ≡ i); gx,
gw_ih, gw_hh and the bias gradients are matmuls afterwards. No atomics.

Memory: W_hh sits in dynamic shared memory when it fits next to the per-block buffers
(W_hhᵀ (H, 3H) forward so that a warp reads consecutive j, W_hh (3H, H) backward so that a
warp reads consecutive k: conflict-free either way); otherwise the kernels read it from
global memory (L2/L1-cached, coalesced the same way). The shared-memory opt-in and the
products after the walk are the recurrences' shared host side (kernels/_recurrent_cuda.py).

Against cuDNN: benchmarks/NOTES.md, item 27.

math: see SPEC (``kernels/gru/__init__.py``).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch_grid
from kernels._recurrent_cuda import allow_smem, column_sums, input_grads

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
#define GRU_ROWS 4  // batch rows per block; equals _ROWS in cupy_cuda.py

template <typename T>
__device__ __forceinline__ T gru_sigmoid(T a) {
    // e = exp(-|a|) never overflows; sigma(a) = 1/(1+e) for a >= 0, e/(1+e) for a < 0
    const T e = exp(-fabs(a));
    const T s = T(1) / (T(1) + e);
    return a >= T(0) ? s : e * s;
}

template <typename T>
__global__ void gru_forward_walk(
    const T* __restrict__ p,      // (N, steps, 3H) input projection x W_ih^T + b_ih
    const T* __restrict__ h0,     // (N, H)
    const T* __restrict__ w_hhT,  // (H, 3H) W_hh transposed
    const T* __restrict__ b_hh,   // (3H,)
    T* __restrict__ hs,           // (N, steps, H)
    T* __restrict__ gates,        // (N, steps, 4H): r, z, n, m
    const int N, const int steps, const int H, const int w_in_shared)
{
    // Block b owns batch rows n0 = b*GRU_ROWS ... n0+rows-1 for all steps.
    // Phase 1 of a step: thread i computes q[r][j] for j = i, i+blockDim, ... < 3H, every r.
    // Phase 2: thread i computes gate element e = (r, j) for e = i, i+blockDim, ... < rows*H.
    extern __shared__ __align__(16) unsigned char gru_smem[];
    T* h = reinterpret_cast<T*>(gru_smem);  // [GRU_ROWS][H] h_{t-1}
    T* q = h + GRU_ROWS * H;                // [GRU_ROWS][3H] W_hh h + b_hh
    T* ws = q + GRU_ROWS * 3 * H;           // [H][3H] copy of w_hhT if w_in_shared
    const int H3 = 3 * H;
    const int n0 = blockIdx.x * GRU_ROWS;
    const int rows = min(GRU_ROWS, N - n0);
    if (rows <= 0) return;  // whole block returns: no thread is left at a barrier

    if (w_in_shared) {
        for (int e = threadIdx.x; e < H * H3; e += blockDim.x) ws[e] = w_hhT[e];
    }
    const T* w = w_in_shared ? ws : w_hhT;
    for (int e = threadIdx.x; e < GRU_ROWS * H; e += blockDim.x) {
        const int r = e / H;
        h[e] = r < rows ? h0[(long long)(n0 + r) * H + (e - r * H)] : T(0);
    }
    __syncthreads();

    for (int t = 0; t < steps; ++t) {
        for (int j = threadIdx.x; j < H3; j += blockDim.x) {
            T acc[GRU_ROWS];
#pragma unroll
            for (int r = 0; r < GRU_ROWS; ++r) acc[r] = b_hh[j];
            for (int k = 0; k < H; ++k) {
                const T wkj = w[k * H3 + j];
#pragma unroll
                for (int r = 0; r < GRU_ROWS; ++r) acc[r] += wkj * h[r * H + k];
            }
#pragma unroll
            for (int r = 0; r < GRU_ROWS; ++r) q[r * H3 + j] = acc[r];
        }
        __syncthreads();
        for (int e = threadIdx.x; e < rows * H; e += blockDim.x) {
            const int r = e / H;
            const int j = e - r * H;
            const long long row = (long long)(n0 + r) * steps + t;  // (n, t) flattened
            const T* pt = p + row * H3;
            const T* qr = q + r * H3;
            const T rg = gru_sigmoid(pt[j] + qr[j]);
            const T zg = gru_sigmoid(pt[H + j] + qr[H + j]);
            const T m = qr[2 * H + j];
            const T c = tanh(pt[2 * H + j] + rg * m);
            const T hn = (T(1) - zg) * c + zg * h[e];  // h[e] is read by this thread only
            h[e] = hn;
            hs[row * H + j] = hn;
            T* gt = gates + row * 4 * H;
            gt[j] = rg;
            gt[H + j] = zg;
            gt[2 * H + j] = c;
            gt[3 * H + j] = m;
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void gru_backward_walk(
    const T* __restrict__ ghs,    // (N, steps, H) upstream gradient of hs
    const T* __restrict__ h0,     // (N, H)
    const T* __restrict__ w_hh,   // (3H, H)
    const T* __restrict__ hs,     // (N, steps, H)
    const T* __restrict__ gates,  // (N, steps, 4H): r, z, n, m
    T* __restrict__ gp,           // (N, steps, 3H) gradient of the input projection
    T* __restrict__ gq,           // (N, steps, 3H) gradient of the hidden projection
    T* __restrict__ gh0,          // (N, H)
    const int N, const int steps, const int H, const int w_in_shared)
{
    // Block b owns batch rows n0 = b*GRU_ROWS ... n0+rows-1, walking t = steps-1 ... 0.
    // Phase 1 of a step: thread i computes the gate gradients of element e = (r, j) for
    // e = i, i+blockDim, ... < rows*H. Phase 2: thread i computes the new g[r][k] for
    // k = i, i+blockDim, ... < H, every r (a gather over the 3H entries of gq).
    extern __shared__ __align__(16) unsigned char gru_smem[];
    T* g = reinterpret_cast<T*>(gru_smem);  // [GRU_ROWS][H] gradient reaching h_t from t+1
    T* gd = g + GRU_ROWS * H;               // [GRU_ROWS][H] direct path z * g
    T* gqs = gd + GRU_ROWS * H;             // [GRU_ROWS][3H] this step's gq
    T* ws = gqs + GRU_ROWS * 3 * H;         // [3H][H] copy of w_hh if w_in_shared
    const int H3 = 3 * H;
    const int n0 = blockIdx.x * GRU_ROWS;
    const int rows = min(GRU_ROWS, N - n0);
    if (rows <= 0) return;

    if (w_in_shared) {
        for (int e = threadIdx.x; e < H3 * H; e += blockDim.x) ws[e] = w_hh[e];
    }
    const T* w = w_in_shared ? ws : w_hh;
    // rows >= rows stay zero, so phase 2 reads defined values for them
    for (int e = threadIdx.x; e < GRU_ROWS * H; e += blockDim.x) {
        g[e] = T(0);
        gd[e] = T(0);
    }
    for (int e = threadIdx.x; e < GRU_ROWS * H3; e += blockDim.x) gqs[e] = T(0);
    __syncthreads();

    for (int t = steps - 1; t >= 0; --t) {
        for (int e = threadIdx.x; e < rows * H; e += blockDim.x) {
            const int r = e / H;
            const int j = e - r * H;
            const long long row = (long long)(n0 + r) * steps + t;
            const T* gt = gates + row * 4 * H;
            const T rg = gt[j];
            const T zg = gt[H + j];
            const T c = gt[2 * H + j];
            const T m = gt[3 * H + j];
            const T hprev = t > 0 ? hs[(row - 1) * H + j] : h0[(long long)(n0 + r) * H + j];
            const T gj = g[e] + ghs[row * H + j];
            const T ga_n = gj * (T(1) - zg) * (T(1) - c * c);
            const T ga_z = gj * (hprev - c) * zg * (T(1) - zg);
            const T ga_r = ga_n * m * rg * (T(1) - rg);
            T* gpt = gp + row * H3;
            T* gqt = gq + row * H3;
            gpt[j] = ga_r;
            gpt[H + j] = ga_z;
            gpt[2 * H + j] = ga_n;
            gqt[j] = ga_r;
            gqt[H + j] = ga_z;
            gqt[2 * H + j] = ga_n * rg;
            T* gqr = gqs + r * H3;
            gqr[j] = ga_r;
            gqr[H + j] = ga_z;
            gqr[2 * H + j] = ga_n * rg;
            gd[e] = zg * gj;
        }
        __syncthreads();
        for (int k = threadIdx.x; k < H; k += blockDim.x) {
            T acc[GRU_ROWS];
#pragma unroll
            for (int r = 0; r < GRU_ROWS; ++r) acc[r] = gd[r * H + k];
            for (int i = 0; i < H3; ++i) {
                const T wik = w[i * H + k];
#pragma unroll
                for (int r = 0; r < GRU_ROWS; ++r) acc[r] += gqs[r * H3 + i] * wik;
            }
#pragma unroll
            for (int r = 0; r < GRU_ROWS; ++r) g[r * H + k] = acc[r];
        }
        __syncthreads();
    }
    for (int e = threadIdx.x; e < rows * H; e += blockDim.x) {
        gh0[(long long)n0 * H + e] = g[e];  // rows n0 ... n0+rows-1 are contiguous in gh0
    }
}
"""

KERNELS = ("gru_forward_walk", "gru_backward_walk")

_ROWS = 4  # GRU_ROWS of SOURCE


def _threads(width: int) -> int:
    """Threads per block: ``width`` rounded up to whole warps, between 32 and 1024."""
    return min(1024, max(32, (width + 31) // 32 * 32))


def _walk(name: str, dtype, N: int, threads: int, buffer_elems: int, w_elems: int, args):
    """Launch a walk kernel over ceil(N / _ROWS) blocks, with W in shared memory if it fits."""
    if N == 0:
        return
    fn = kernel(SOURCE, KERNELS, name, dtype)
    itemsize = np.dtype(dtype).itemsize
    shared = buffer_elems * itemsize
    w_in_shared = allow_smem(fn, shared + w_elems * itemsize)
    if w_in_shared:
        shared += w_elems * itemsize
    elif not allow_smem(fn, shared):
        raise ValueError(f"gru: the walk needs {shared} bytes of shared memory per block, "
                         f"more than this device allows")
    n_blocks = (N + _ROWS - 1) // _ROWS
    launch_grid(fn, (n_blocks,), (threads,), (*args, np.int32(int(w_in_shared))),
                shared_mem=shared)


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """GRU forward: ``(hs (N, T, H), gates (N, T, 4H))``; see the reference for the API."""
    cp = cupy()
    N, T, D = x.shape
    H = h0.shape[1]
    p = x.reshape(N * T, D) @ w_ih.T  # (N*T, 3H), cuBLAS
    p += b_ih  # in place: no second (N*T, 3H) temporary
    hs = cp.empty((N, T, H), dtype=x.dtype)
    gates = cp.empty((N, T, 4 * H), dtype=x.dtype)
    args = (
        p,
        cp.ascontiguousarray(h0),
        cp.ascontiguousarray(w_hh.T),  # (H, 3H)
        cp.ascontiguousarray(b_hh),
        hs,
        gates,
        np.int32(N),
        np.int32(T),
        np.int32(H),
    )
    _walk("gru_forward_walk", x.dtype, N, _threads(3 * H), _ROWS * 4 * H, 3 * H * H, args)
    return hs, gates


def bwd(ghs, x, h0, w_ih, w_hh, hs, gates):
    """GRU backward: ``(gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    cp = cupy()
    N, T, D = x.shape
    H = h0.shape[1]
    h0 = cp.ascontiguousarray(h0)
    hs = cp.ascontiguousarray(hs)
    gp = cp.empty((N, T, 3 * H), dtype=x.dtype)
    gq = cp.empty((N, T, 3 * H), dtype=x.dtype)
    gh0 = cp.empty((N, H), dtype=x.dtype)
    args = (
        cp.ascontiguousarray(ghs),
        h0,
        cp.ascontiguousarray(w_hh),
        hs,
        cp.ascontiguousarray(gates),
        gp,
        gq,
        gh0,
        np.int32(N),
        np.int32(T),
        np.int32(H),
    )
    _walk("gru_backward_walk", x.dtype, N, _threads(_ROWS * H), _ROWS * 5 * H, 3 * H * H, args)
    gx, gw_ih, gw_hh = input_grads(gp, gq, x, h0, hs, w_ih)
    return (gx, gh0, gw_ih, gw_hh, column_sums(gp.reshape(N * T, 3 * H)),
            column_sums(gq.reshape(N * T, 3 * H)))
