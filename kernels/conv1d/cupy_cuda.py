"""conv1d on the GPU: SPEC's matrix form as implicit GEMMs with shared-memory tiles.

Each thread computes an 8 x 8 register tile of outputs from operand tiles its block stages
in shared memory, a chunk of the reduction at a time; the index bookkeeping (n, t of a
column, c, k of a reduction row) goes once per block or chunk into small shared tables, so
the tile loads are gathers without divisions (timings: benchmarks/NOTES.md, items 8, 26).
- ``conv1d_fwd``: y = W2·X̂ + b (then ReLU, for conv1d_relu), X̂ gathered tile by tile from
  x (zero padding by bounds checks), never materialised: ``gemm_tiles``, kernels/_gemm_cuda.py.
- ``conv1d_bwd_data``: gx = W3·Ĝ, W3[c, (o,k)] = w[o,c,k], Ĝ[(o,k), (n,j)] = gy[n,o,t] where
  t·S+k·d = j+Pl: each gx[n,c,j] gathers the taps that read x[n,c,j] (no col2im, no atomics).
- ``conv1d_bwd_weight``: gw = G·X̂ᵀ and gb = G·1 in one launch, the long (n, t) reduction
  split into slices over blockIdx.z and each output tile's slices added in a fixed order
  by its last block (kernels/_splitk_cuda.py): the bits do not depend on block timing.
Channels-last arrays go through transposes (``swap_layout``): the GPU runs the network
channels-first. conv1d_relu runs these kernels; the fused block runs their backward.
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

from kernels._cuda import blocks, cupy, kernel, launch_grid
from kernels._gemm_cuda import TILES, check_offsets, i32, tile, x_strides
from kernels._shapes import conv_out_length, swap_layout
from kernels._splitk_cuda import SPLITK, slices, tickets

__all__ = ["fwd", "bwd", "forward", "backward", "SOURCE", "KERNELS"]

_TRW = 16               # reduction chunk of conv1d_bwd_weight (TRW in SOURCE)
_TARGET_BLOCKS = 1024   # conv1d_bwd_weight: about eight 64-thread blocks per H100/H200 SM

SOURCE = TILES + SPLITK + r"""
#define TRW 16         // reduction chunk of conv1d_bwd_weight

// Thread -> index map: block (blockIdx.x, blockIdx.y) owns the output columns
// p = n*Lo + t in [p0, p0 + tp) and the rows o in [m0, m0 + tm), with
// (tm, tp, threads) = (32, 256, 128), (64, 256, 256) or (128, 128, 256); thread tid =
// (tx, ty), tx = tid % (tp/8), ty = tid / (tp/8), owns rows m0 + ty + (tm/8)*i and columns
// p0 + tx + (tp/8)*j, i, j < 8. The reduction r = c*K + k runs in chunks of TR; the tiles
// are filled by all threads in turn (element e -> row e / tp, column e % tp).
template <typename T>
__global__ void __launch_bounds__(256, MINBLOCKS)
conv1d_fwd(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
           T* __restrict__ y, int N, int C, int L, int O, int K, int Lo,
           int S, int pl, int d, int has_bias, int relu, int tm, int tp)
{
    __shared__ T As[TR][128 + 1];            // As[rr][mm] = w[m0+mm, r0+rr]
    __shared__ T Bs[TR][MAXTP + 1];          // Bs[rr][pp] = Xc[r0+rr, p0+pp]
    __shared__ int xbase[MAXTP], xpos[MAXTP], yoff[MAXTP];   // per column p0+pp
    __shared__ int roff[TR], rpos[TR];       // per row r0+rr: c*L and k*d (roff -1: r >= R)
    const int tid = threadIdx.x, nt = blockDim.x;
    const int txn = tp / RT, tyn = tm / RT, tx = tid % txn, ty = tid / txn;
    const int tsh = __ffs(tp) - 1;           // tp is a power of two
    const int R = C * K, P = N * Lo;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    for (int pp = tid; pp < tp; pp += nt) {
        const int p = p0 + pp, n = p / Lo, t = p - n * Lo;
        xbase[pp] = p < P ? n * C * L : -1;
        xpos[pp] = t * S - pl;
        yoff[pp] = n * O * Lo + t;
    }
    T acc[RT][RT];
    gemm_tiles(x, w, As, Bs, xbase, xpos, roff, rpos, acc, R, K, L, O, d, L, 1, m0, tm, tp,
               tsh, tid, nt, tx, ty, txn, tyn);
#pragma unroll
    for (int j = 0; j < RT; ++j) {
        const int pp = tx + txn * j;
        if (xbase[pp] < 0) continue;
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            const int o = m0 + ty + tyn * i;
            if (o >= O) continue;
            T v = acc[i][j] + (has_bias ? b[o] : T(0));
            if (relu && v < T(0)) v = T(0);     // NaN stays NaN, as max(z, 0) in the SPEC
            y[(long long)yoff[pp] + (long long)o * Lo] = v;
        }
    }
}

// Thread -> index map: as conv1d_fwd with rows m = c (tile tm) and columns p = n*L + j
// (tile tp); the reduction r = o*K + k. Gc[r, p] = gy[n,o,t] (times [y > 0] when relu)
// where t*S + k*d = j + pl, 0 <= t < Lo, else 0: a gather of the taps that read x[n,c,j].
template <typename T>
__global__ void __launch_bounds__(256, MINBLOCKS)
conv1d_bwd_data(const T* __restrict__ gy, const T* __restrict__ y, const T* __restrict__ w,
                T* __restrict__ gx, int N, int C, int L, int O, int K, int Lo,
                int S, int pl, int d, int relu, int tm, int tp)
{
    __shared__ T As[TR][128 + 1];            // As[rr][mm] = w[o, m0+mm, k], r0+rr = o*K + k
    __shared__ T Bs[TR][MAXTP + 1];          // Bs[rr][pp] = Gc[r0+rr, p0+pp]
    __shared__ int gbase[MAXTP], gpos[MAXTP], xoff[MAXTP];   // per column p0+pp
    __shared__ int roff[TR], rpos[TR], woff[TR];  // per row: o*Lo (-1: r >= R), k*d, o*C*K + k
    const int tid = threadIdx.x, nt = blockDim.x;
    const int txn = tp / RT, tyn = tm / RT, tx = tid % txn, ty = tid / txn;
    const int tsh = __ffs(tp) - 1;
    const int R = O * K, P = N * L;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    for (int pp = tid; pp < tp; pp += nt) {
        const int p = p0 + pp, n = p / L, j = p - n * L;
        gbase[pp] = p < P ? n * O * Lo : -1;
        gpos[pp] = j + pl;
        xoff[pp] = n * C * L + j;
    }
    T acc[RT][RT];
    zero_tile(acc);
    for (int r0 = 0; r0 < R; r0 += TR) {
        if (tid < TR) {
            const int r = r0 + tid, o = r / K, k = r - o * K;
            roff[tid] = r < R ? o * Lo : -1;
            rpos[tid] = k * d;
            woff[tid] = o * C * K + k;
        }
        __syncthreads();
        for (int e = tid; e < TR * tm; e += nt) {
            const int rr = e % TR, mm = e / TR, c = m0 + mm;
            As[rr][mm] = (c < C && roff[rr] >= 0) ? w[(long long)woff[rr] + c * K] : T(0);
        }
        for (int e = tid; e < TR * tp; e += nt) {
            const int rr = e >> tsh, pp = e & (tp - 1);
            const int i = gpos[pp] - rpos[rr];    // padded position read by tap k
            const int t = S == 1 ? i : i / S;     // the output position, if S divides i
            const bool ok = gbase[pp] >= 0 && roff[rr] >= 0 && i >= 0 && t * S == i && t < Lo;
            T g = T(0);
            if (ok) {
                const long long at = (long long)gbase[pp] + roff[rr] + t;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Bs[rr][pp] = g;
        }
        __syncthreads();
        mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < RT; ++j) {
        const int pp = tx + txn * j;
        if (gbase[pp] < 0) continue;
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            const int c = m0 + ty + tyn * i;
            if (c < C) gx[(long long)xoff[pp] + (long long)c * L] = acc[i][j];
        }
    }
}

// Thread -> index map: 64 threads a block. Block (x, y, z) owns gw rows o in [m0, m0+64),
// columns r = c*K + k in [r0, r0+64) and the slice p = n*Lo + t in [z*pb, min(P, (z+1)*pb))
// of the reduction, in chunks of TRW; thread (tx, ty) = (tid % 8, tid / 8) owns rows
// m0 + ty + 8*i and columns r0 + tx + 8*j, i, j < 8; with x == 0 also gb's row m0 + tid.
// Partial sums go to part[z, :] = (gw (O*R), gb (O)); the tile's last block adds them up,
// thread tid the column r0 + tid of every row (and row m0 + tid of gb when x == 0).
// x[n, c, i] is read at n*sN + c*sC + i*sL: channels-first (C*L, L, 1), or the transposed
// view of a channels-last buffer, (L*C, 1, C) (conv1d_relu_maxpool's input).
template <typename T>
__global__ void conv1d_bwd_weight(const T* __restrict__ gy, const T* __restrict__ y,
                                  const T* __restrict__ x, T* __restrict__ part,
                                  T* __restrict__ gw, T* __restrict__ gb,
                                  int* __restrict__ tickets,
                                  int N, int C, int L, int O, int K, int Lo,
                                  int S, int pl, int d, int relu, int pb,
                                  int sN, int sC, int sL)
{
    __shared__ T Gs[TRW][64 + 1];            // Gs[q][mm] = G[m0+mm, pc+q]
    __shared__ T Xs[TRW][64 + 1];            // Xs[q][rr] = Xc[r0+rr, pc+q]
    __shared__ int roff[64], rpos[64];       // per column r0+rr: c*L (-1: r >= R), k*d
    __shared__ int gbase[TRW], xbase[TRW], xpos[TRW];   // per p = pc+q (gbase -1: p out)
    const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
    const int R = C * K, P = N * Lo;
    const int r0 = blockIdx.x * 64, m0 = blockIdx.y * 64;
    const int pbeg = blockIdx.z * pb;
    const int pend = min(P, pbeg + pb);
    {
        const int r = r0 + tid, c = r / K, k = r - c * K;
        roff[tid] = r < R ? c * sC : -1;
        rpos[tid] = k * d;
    }
    T acc[RT][RT];
    zero_tile(acc);
    T gbacc = T(0);
    for (int pc = pbeg; pc < pend; pc += TRW) {
        if (tid < TRW) {
            const int p = pc + tid, n = p / Lo, t = p - n * Lo;
            gbase[tid] = p < pend ? n * O * Lo + t : -1;
            xbase[tid] = n * sN;
            xpos[tid] = t * S - pl;
        }
        __syncthreads();
        for (int e = tid; e < TRW * 64; e += 64) {
            const int q = e % TRW, mm = e / TRW, o = m0 + mm;
            T g = T(0);
            if (gbase[q] >= 0 && o < O) {
                const long long at = (long long)gbase[q] + (long long)o * Lo;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Gs[q][mm] = g;
            const int rr = mm, i = xpos[q] + rpos[rr];
            const bool ok = gbase[q] >= 0 && roff[rr] >= 0 && i >= 0 && i < L;
            Xs[q][rr] = ok ? x[(long long)xbase[q] + roff[rr] + (long long)i * sL] : T(0);
        }
        __syncthreads();
        mac_chunk<T, TRW, 65, 65>(Gs, Xs, acc, tx, ty, 8, 8);
        if (blockIdx.x == 0) {
#pragma unroll
            for (int q = 0; q < TRW; ++q) gbacc += Gs[q][tid];
        }
        __syncthreads();
    }
    const long long stride = (long long)O * R + O;   // one slice of part
    T* out = part + (long long)blockIdx.z * stride;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        const int o = m0 + ty + 8 * i;
#pragma unroll
        for (int j = 0; j < RT; ++j) {
            const int r = r0 + tx + 8 * j;
            if (o < O && r < R) out[(long long)o * R + r] = acc[i][j];
        }
    }
    if (blockIdx.x == 0 && m0 + tid < O) out[(long long)O * R + m0 + tid] = gbacc;
    if (!last_of_tile(tickets, blockIdx.y * gridDim.x + blockIdx.x)) return;
    const volatile T* done = part;
    const int r = r0 + tid, splits = gridDim.z;
    if (r < R)
        for (int mm = 0; mm < 64 && m0 + mm < O; ++mm) {
            const long long e = (long long)(m0 + mm) * R + r;
            gw[e] = sum_slices(done + e, splits, stride);
        }
    if (blockIdx.x == 0 && m0 + tid < O)
        gb[m0 + tid] = sum_slices(done + (long long)O * R + m0 + tid, splits, stride);
}
"""

KERNELS = ("conv1d_fwd", "conv1d_bwd_data", "conv1d_bwd_weight")


def forward(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """conv1d (then ReLU when ``relu``) on the GPU; shared with conv1d_relu."""
    cp = cupy()
    x = cp.ascontiguousarray(x)
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = conv_out_length(L, K, stride, padding_left, padding_right, dilation)
    check_offsets("conv1d", N, C, L, O, Lo)
    y = cp.empty((N, O, Lo), dtype=x.dtype)
    if y.size == 0:
        return y
    bias = y if b is None else cp.ascontiguousarray(b, dtype=x.dtype)  # y: unread stand-in
    tm, tp, threads = tile(O)
    fn = kernel(SOURCE, KERNELS, "conv1d_fwd", x.dtype)
    launch_grid(fn, (blocks(N * Lo, tp), blocks(O, tm)), (threads,),
                (x, w, bias, y, *i32(N, C, L, O, K, Lo, stride, padding_left, dilation,
                                     b is not None, relu, tm, tp)))
    return y


def backward(gy, x, w, y, stride, padding_left, padding_right, dilation, need_gx=True):
    """conv1d's (gx, gw, gb) for gy, masked by y > 0 when y is given (conv1d_relu); gx is
    None (its kernel not launched) when not ``need_gx``."""
    cp = cupy()
    xbuf, xs = x_strides(cp, x)             # read in place when x is a transposed view
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    gy = cp.ascontiguousarray(gy, dtype=x.dtype)
    relu = y is not None
    mask = cp.ascontiguousarray(y, dtype=x.dtype) if relu else gy   # gy: unread stand-in
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = gy.shape[2]
    R, P = C * K, N * Lo
    check_offsets("conv1d", N, C, L, O, Lo)
    if P == 0:
        return (cp.zeros((N, C, L), dtype=x.dtype) if need_gx else None,
                cp.zeros((O, C, K), dtype=x.dtype), cp.zeros((O,), dtype=x.dtype))
    gx = cp.empty((N, C, L), dtype=x.dtype) if need_gx else None
    gw = cp.empty((O, C, K), dtype=x.dtype)
    gb = cp.empty((O,), dtype=x.dtype)
    if need_gx:
        # gx: gather of the taps (one implicit GEMM over the reduction (o, k))
        tm, tp, threads = tile(C)
        fn = kernel(SOURCE, KERNELS, "conv1d_bwd_data", x.dtype)
        launch_grid(fn, (blocks(N * L, tp), blocks(C, tm)), (threads,),
                    (gy, mask, w, gx, *i32(N, C, L, O, K, Lo, stride, padding_left,
                                           dilation, relu, tm, tp)))
    # gw, gb: slices of the (n, t) reduction per block, each tile's last block adding the
    # tile's slices in a fixed order
    tiles = blocks(R, 64) * blocks(O, 64)
    pb, splits = slices(P, tiles, _TRW, _TARGET_BLOCKS)
    part = cp.empty((splits, O * R + O), dtype=x.dtype)
    fn = kernel(SOURCE, KERNELS, "conv1d_bwd_weight", x.dtype)
    launch_grid(fn, (blocks(R, 64), blocks(O, 64), splits), (64,),
                (gy, mask, xbuf, part, gw, gb, tickets(cp, tiles),
                 *i32(N, C, L, O, K, Lo, stride, padding_left, dilation, relu, pb, *xs)))
    return gx, gw, gb


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = conv1d(x (N, C, L), w (O, C, K), b (O,) | None);
    channels-last (N, L, C) → (N, Lo, O) through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation))
    if channels_last:
        return swap_layout(forward(swap_layout(x), w, b, *p, False))
    return forward(x, w, b, *p, False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo);
    channels-last through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation), bool(need_gx))
    if channels_last:
        gx, gw, gb = backward(swap_layout(gy), swap_layout(x), w, None, *p)
        return (None if gx is None else swap_layout(gx)), gw, gb
    return backward(gy, x, w, None, *p)
