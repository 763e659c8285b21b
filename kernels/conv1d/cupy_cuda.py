"""conv1d on the GPU: SPEC's matrix form as implicit GEMMs with shared-memory tiles.

Kernels (256 threads a block; every block computes 4,096 outputs, each thread a 4 x 4
register tile, and walks the reduction in chunks of TR = 16 staged in shared memory):
- ``conv1d_fwd``: y = W2·X̂ + b (then ReLU for conv1d_relu); the X̂ tile is gathered from
  x on the fly (zero padding by bounds checks), never materialised.
- ``conv1d_bwd_data``: gx = W3·Ĝ with W3[c, (o,k)] = w[o,c,k] and
  Ĝ[(o,k), (n,j)] = gy[n,o,t] where t·S+k·d = j+Pl: each output gx[n,c,j] gathers the
  taps that read x[n,c,j] (no col2im, no atomics).
- ``conv1d_bwd_weight``: gw = G·X̂ᵀ and gb = G·1; blockIdx.z splits the long reduction over
  (n, t) into slices whose partial sums go to a workspace, which ``conv1d_sum_partials``
  adds up in a fixed order (deterministic, no atomics).
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import blocks, cupy, kernel

__all__ = ["fwd", "bwd", "forward", "backward"]

SOURCE = r"""
// Xc[c*K + k, n*Lo + t] = xp[n, c, t*S + k*d] is SPEC's unfolded input (im2col); it is
// gathered tile by tile into shared memory and never materialised.
#define TR 16          // reduction chunk staged in shared memory
#define TILE 4096      // outputs per block: tm x tp with (tm, tp) = (64, 64) or (32, 128)
#define NT 256         // threads per block; each owns a 4 x 4 register tile

// acc[i][j] += As[q][ty + tyn*i] * Bs[q][tx + txn*j] over the chunk q < TR.
template <typename T, int LDA, int LDB>
__device__ __forceinline__ void mac_chunk(const T (*As)[LDA], const T (*Bs)[LDB], T acc[4][4],
                                          int tx, int ty, int txn, int tyn)
{
#pragma unroll
    for (int q = 0; q < TR; ++q) {
        T a[4], v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = As[q][ty + tyn * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) v[j] = Bs[q][tx + txn * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * v[j];
    }
}

// Thread -> index map: block (blockIdx.x, blockIdx.y) owns the output columns
// p = n*Lo + t in [p0, p0 + tp) and the rows o in [m0, m0 + tm); thread tid = (tx, ty) with
// tx = tid % (tp/4), ty = tid / (tp/4) owns rows m0 + ty + (tm/4)*i and columns
// p0 + tx + (tp/4)*j, i, j < 4. Reduction index r = c*K + k in chunks of TR.
template <typename T>
__global__ void conv1d_fwd(const T* __restrict__ x, const T* __restrict__ w,
                           const T* __restrict__ b, T* __restrict__ y,
                           int N, int C, int L, int O, int K, int Lo,
                           int S, int pl, int d, int has_bias, int relu, int tm)
{
    __shared__ T As[TR][64 + 1];    // As[rr][mm] = w[m0+mm, r0+rr]
    __shared__ T Bs[TR][128 + 1];   // Bs[rr][pp] = Xc[r0+rr, p0+pp]
    const int tp = TILE / tm, txn = tp / 4, tyn = tm / 4;
    const int tid = threadIdx.x, tx = tid % txn, ty = tid / txn;
    const int R = C * K, P = N * Lo;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    // this thread always loads column pp = tid % tp of the B tile
    const int pp = tid % tp, p = p0 + pp;
    const int n = p / Lo, t = p - (p / Lo) * Lo;
    const long long xrow = (long long)n * C * L;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

    for (int r0 = 0; r0 < R; r0 += TR) {
        for (int mm = tid / TR; mm < tm; mm += NT / TR) {
            const int rr = tid % TR, m = m0 + mm, r = r0 + rr;
            As[rr][mm] = (m < O && r < R) ? w[(long long)m * R + r] : T(0);
        }
        for (int rr = tid / tp; rr < TR; rr += NT / tp) {
            const int r = r0 + rr, c = r / K, k = r - c * K;
            const int i = t * S + k * d - pl;
            Bs[rr][pp] = (p < P && r < R && i >= 0 && i < L) ? x[xrow + (long long)c * L + i]
                                                              : T(0);
        }
        __syncthreads();
        mac_chunk<T, 65, 129>(As, Bs, acc, tx, ty, txn, tyn);
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int q = p0 + tx + txn * j;
        if (q >= P) continue;
        const int qn = q / Lo, qt = q - qn * Lo;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int o = m0 + ty + tyn * i;
            if (o >= O) continue;
            T v = acc[i][j] + (has_bias ? b[o] : T(0));
            if (relu && !(v > T(0))) v = T(0);
            y[((long long)qn * O + o) * Lo + qt] = v;
        }
    }
}

// Thread -> index map: as conv1d_fwd with rows m = c (tile tm) and columns p = n*L + j
// (tile tp); reduction index r = o*K + k. Gc[r, p] = gy[n,o,t] (times [y > 0] when relu)
// where t*S + k*d = j + pl, 0 <= t < Lo, else 0: a gather of the taps that read x[n,c,j].
template <typename T>
__global__ void conv1d_bwd_data(const T* __restrict__ gy, const T* __restrict__ y,
                                const T* __restrict__ w, T* __restrict__ gx,
                                int N, int C, int L, int O, int K, int Lo,
                                int S, int pl, int d, int relu, int tm)
{
    __shared__ T As[TR][64 + 1];    // As[rr][mm] = w[o, m0+mm, k], r0+rr = o*K + k
    __shared__ T Bs[TR][128 + 1];   // Bs[rr][pp] = Gc[r0+rr, p0+pp]
    const int tp = TILE / tm, txn = tp / 4, tyn = tm / 4;
    const int tid = threadIdx.x, tx = tid % txn, ty = tid / txn;
    const int R = O * K, P = N * L;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    const int pp = tid % tp, p = p0 + pp;
    const int n = p / L, j = p - (p / L) * L;
    const long long grow = (long long)n * O * Lo;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = T(0);

    for (int r0 = 0; r0 < R; r0 += TR) {
        for (int mm = tid / TR; mm < tm; mm += NT / TR) {
            const int rr = tid % TR, c = m0 + mm, r = r0 + rr;
            const int o = r / K, k = r - (r / K) * K;
            As[rr][mm] = (c < C && r < R) ? w[((long long)o * C + c) * K + k] : T(0);
        }
        for (int rr = tid / tp; rr < TR; rr += NT / tp) {
            const int r = r0 + rr, o = r / K, k = r - o * K;
            const int i = j + pl - k * d;      // padded position read by tap k
            T g = T(0);
            if (p < P && r < R && i >= 0 && i % S == 0 && i / S < Lo) {
                const long long at = grow + (long long)o * Lo + i / S;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Bs[rr][pp] = g;
        }
        __syncthreads();
        mac_chunk<T, 65, 129>(As, Bs, acc, tx, ty, txn, tyn);
        __syncthreads();
    }
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
        const int q = p0 + tx + txn * jj;
        if (q >= P) continue;
        const int qn = q / L, qj = q - qn * L;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int c = m0 + ty + tyn * i;
            if (c < C) gx[((long long)qn * C + c) * L + qj] = acc[i][jj];
        }
    }
}

// Thread -> index map: block (blockIdx.x, blockIdx.y, blockIdx.z) owns gw rows o in
// [m0, m0+64), columns r = c*K + k in [r0, r0+64), and the slice p = n*Lo + t in
// [z*pb, min(P, (z+1)*pb)) of the reduction; thread (tx, ty) = (tid % 16, tid / 16) owns
// rows m0 + ty + 16*i and columns r0 + tx + 16*j. Blocks with blockIdx.x == 0 also sum
// G over the slice for gb (thread tid < 64: row m0 + tid). Each block writes its partial
// sums to part[z, :] = (gw partial (O*R), gb partial (O)).
template <typename T>
__global__ void conv1d_bwd_weight(const T* __restrict__ gy, const T* __restrict__ y,
                                  const T* __restrict__ x, T* __restrict__ part,
                                  int N, int C, int L, int O, int K, int Lo,
                                  int S, int pl, int d, int relu, int pb)
{
    __shared__ T Gs[TR][64 + 1];    // Gs[q][mm] = G[m0+mm, pc+q]
    __shared__ T Xs[TR][64 + 1];    // Xs[q][rr] = Xc[r0+rr, pc+q]
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int R = C * K, P = N * Lo;
    const int r0 = blockIdx.x * 64, m0 = blockIdx.y * 64;
    const int pbeg = blockIdx.z * pb;
    const int pend = min(P, pbeg + pb);
    const int q = tid % TR;               // this thread loads chunk column q
    const int ld0 = tid / TR;             // ... of rows ld0 + 16*s, s < 4
    int xc[4], xk[4];                     // (c, k) of the Xc rows this thread loads
#pragma unroll
    for (int s = 0; s < 4; ++s) {
        const int r = r0 + ld0 + 16 * s;
        xc[s] = r / K;
        xk[s] = r - (r / K) * K;
    }
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
    T gbacc = T(0);

    for (int pc = pbeg; pc < pend; pc += TR) {
        const int p = pc + q;
        const int n = p / Lo, t = p - (p / Lo) * Lo;
        const bool pin = p < pend;
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            const int mm = ld0 + 16 * s, o = m0 + mm;
            T g = T(0);
            if (pin && o < O) {
                const long long at = ((long long)n * O + o) * Lo + t;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Gs[q][mm] = g;
            const int rr = ld0 + 16 * s, r = r0 + rr;
            const int i = t * S + xk[s] * d - pl;
            Xs[q][rr] = (pin && r < R && i >= 0 && i < L)
                            ? x[((long long)n * C + xc[s]) * L + i] : T(0);
        }
        __syncthreads();
        mac_chunk<T, 65, 65>(Gs, Xs, acc, tx, ty, 16, 16);
        if (blockIdx.x == 0 && tid < 64) {
#pragma unroll
            for (int qq = 0; qq < TR; ++qq) gbacc += Gs[qq][tid];
        }
        __syncthreads();
    }
    T* out = part + (long long)blockIdx.z * (O * R + O);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int o = m0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int r = r0 + tx + 16 * j;
            if (o < O && r < R) out[(long long)o * R + r] = acc[i][j];
        }
    }
    if (blockIdx.x == 0 && tid < 64 && m0 + tid < O) out[O * R + m0 + tid] = gbacc;
}

// Thread -> index map: thread e < O*R + O owns one entry of (gw, gb) and adds the
// partial sums part[z, e] for z = 0 .. splits-1 in order.
template <typename T>
__global__ void conv1d_sum_partials(const T* __restrict__ part, T* __restrict__ gw,
                                    T* __restrict__ gb, int splits, int OR, int O)
{
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    const int count = OR + O;
    if (e >= count) return;
    T s = T(0);
    for (int z = 0; z < splits; ++z) s += part[(long long)z * count + e];
    if (e < OR) gw[e] = s;
    else gb[e - OR] = s;
}
"""

KERNELS = ("conv1d_fwd", "conv1d_bwd_data", "conv1d_bwd_weight", "conv1d_sum_partials")

_TILE = 4096      # outputs per block of conv1d_fwd / conv1d_bwd_data
_TR = 16          # reduction chunk
_TARGET_BLOCKS = 528   # conv1d_bwd_weight: about four blocks per multiprocessor of an H100/H200


def _i32(*values):
    return tuple(np.int32(v) for v in values)


def _lo(L, K, stride, padding_left, padding_right, dilation):
    return (L + padding_left + padding_right - dilation * (K - 1) - 1) // stride + 1


def _tm(rows):
    """Rows per block tile: 32 (with 128 columns) for at most 32 rows, else 64 (x 64)."""
    return 32 if rows <= 32 else 64


def forward(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """conv1d (then ReLU when ``relu``) on the GPU; shared with conv1d_relu."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = _lo(L, K, stride, padding_left, padding_right, dilation)
    assert N * max(L, Lo) * max(C, O) < 2**31, "conv1d (cupy): tensor too large for int32"
    y = cp.empty((N, O, Lo), dtype=x.dtype)
    if y.size == 0:
        return y
    bias = y if b is None else cp.ascontiguousarray(b, dtype=x.dtype)  # y: unread dummy
    tm = _tm(O)
    fn = kernel(SOURCE, KERNELS, "conv1d_fwd", x.dtype)
    grid = (blocks(N * Lo, _TILE // tm), blocks(O, tm))
    fn(grid, (256,), (x, w, bias, y, *_i32(N, C, L, O, K, Lo, stride, padding_left, dilation,
                                          b is not None, relu, tm)))
    return y


def backward(gy, x, w, y, stride, padding_left, padding_right, dilation):
    """conv1d's (gx, gw, gb) for gy, masked by y > 0 when y is given (conv1d_relu)."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    gy = cp.ascontiguousarray(gy, dtype=x.dtype)
    relu = y is not None
    mask = cp.ascontiguousarray(y, dtype=x.dtype) if relu else gy   # gy: unread dummy
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = gy.shape[2]
    R = C * K
    P = N * Lo
    assert N * max(L, Lo) * max(C, O) < 2**31, "conv1d (cupy): tensor too large for int32"
    if P == 0:
        return (cp.zeros((N, C, L), dtype=x.dtype), cp.zeros((O, C, K), dtype=x.dtype),
                cp.zeros((O,), dtype=x.dtype))
    gx = cp.empty((N, C, L), dtype=x.dtype)
    gw = cp.empty((O, C, K), dtype=x.dtype)
    gb = cp.empty((O,), dtype=x.dtype)
    # gx: gather of the taps (one implicit GEMM over the reduction (o, k))
    tm = _tm(C)
    fn = kernel(SOURCE, KERNELS, "conv1d_bwd_data", x.dtype)
    grid = (blocks(N * L, _TILE // tm), blocks(C, tm))
    fn(grid, (256,), (gy, mask, w, gx, *_i32(N, C, L, O, K, Lo, stride, padding_left,
                                            dilation, relu, tm)))
    # gw, gb: slices of the (n, t) reduction per block, then a fixed-order sum of the slices
    tiles = blocks(R, 64) * blocks(O, 64)
    per_block = -(-P // max(1, _TARGET_BLOCKS // tiles))
    pb = max(16 * _TR, -(-per_block // _TR) * _TR)              # a multiple of the chunk
    splits = -(-P // pb)
    part = cp.empty((splits, O * R + O), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "conv1d_bwd_weight", x.dtype)
    fn((blocks(R, 64), blocks(O, 64), splits), (256,),
       (gy, mask, x, part, *_i32(N, C, L, O, K, Lo, stride, padding_left, dilation, relu, pb)))
    fn = kernel(SOURCE, KERNELS, "conv1d_sum_partials", x.dtype)
    fn((blocks(O * R + O),), (256,), (part, gw, gb, *_i32(splits, O * R, O)))
    return gx, gw, gb


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int):
    """y (N, O, Lo) = conv1d(x (N, C, L), w (O, C, K), b (O,) | None); see SPEC."""
    return forward(x, w, b, int(stride), int(padding_left), int(padding_right),
                   int(dilation), False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int):
    """(gx (N, C, L), gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo)."""
    return backward(gy, x, w, None, int(stride), int(padding_left), int(padding_right),
                    int(dilation))
