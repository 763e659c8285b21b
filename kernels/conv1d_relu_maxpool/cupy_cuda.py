"""conv1d_relu_maxpool on the GPU: one kernel forward, the pool's backward and the ReLU
mask in one kernel backward (each kernel in ``SOURCE`` opens with its thread -> index map).

Forward, ``conv1d_relu_maxpool_fwd``: conv1d_fwd's tiled implicit GEMM (the same tiles and
reduction order, kernels/_gemm_cuda.py, so the pre-activations are bitwise conv1d_relu's)
whose columns are the pool windows' conv positions, window after window; the epilogue adds
the bias, applies the ReLU and pools each block's tile through shared memory, writing y and
argmax only. The full-length activation is never written or re-read, and the backward needs
only y and argmax (SPEC). With Sp = Kp (the network's pool) every conv position is computed
once; with overlapping windows (Sp < Kp) the shared positions are computed once per window,
and positions in no window (Sp > Kp) not at all. A pool wider than a block's column tile
(Kp > 128) falls back to conv1d_relu followed by maxpool1d.

Backward, ``relu_maxpool_bwd``: maxpool1d_bwd's gather (one thread per element of the
convolution's output, no atomics, terms in increasing window order) keeping only the
windows with y > 0, which is the SPEC's gz; conv1d's backward kernels follow (the
data gradient unless ``need_gx`` is False, and the weight gradient in one launch).

Input layout: x may be C-contiguous (N, C, L), or the transposed view of a C-contiguous
(N, L, C) array, which is what the towers feed the first block (they transpose their
(N, L, F) input); the forward kernel and conv1d_bwd_weight read it in place through its
strides instead of copying it. A warp's 32 loads of one tile row then lie C·S elements
apart instead of S, but the block's columns are consecutive positions, so the block reads
one contiguous stretch of x that stays in L1/L2 across the reduction's chunks: the DRAM
traffic is x once, as with the copy, and the copy's extra kernel and its write and re-read
of x are gone. It only ever concerns the first block, whose C (the input's features) and
reduction C·K are small. With ``channels_last=True`` x is read the same way, y and argmax
are written channels-last by the forward kernel, and the backward goes through conv1d's
transposes of gz and gx (the GPU runs the network channels-first).

math: see SPEC (kernels/conv1d_relu_maxpool/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import blocks, cupy, kernel, launch, launch_grid
from kernels._gemm_cuda import TILES, check_offsets, i32, tile, x_strides
from kernels._pool_cuda import WINDOWS
from kernels._shapes import conv_out_length, pool_out_length, swap_layout
from kernels.conv1d import cupy_cuda as conv
from kernels.conv1d_relu import cupy_cuda as conv_relu
from kernels.maxpool1d import cupy_cuda as maxpool

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

OP = "conv1d_relu_maxpool"

SOURCE = TILES + WINDOWS + r"""
// Thread -> index map: as conv1d_fwd (row tile tm of o, column tile tp, thread (tx, ty)
// owning rows m0 + ty + tyn*i and columns tx + txn*j, i, j < 8), but the columns are pool
// windows: column pp of block bx is tap e = pp % Kp of window g = bx*W + pp / Kp
// (W = tp / Kp windows a block; columns pp >= W*Kp are idle), g = n*Lp + q, at the conv
// position t = q*Sp - Pp + e; a column with t outside [0, Lc) is pool padding (loaded as
// 0, skipped by the max). x[n, c, i] is read at n*sN + c*sC + i*sL (see conv1d_bwd_weight).
// Epilogue, one register row i at a time: each thread writes r = max(acc + b, 0) of its
// row to Es[ty][pp] (Es aliases Bs: tyn*tp <= 2048 values), then thread tid pools the
// (row, window) pairs e = tid, tid + nt, ... over their Kp columns in ascending t with
// maxpool1d_fwd's comparisons. Channels-first y: e -> (row e / W, window e % W), so
// consecutive threads write consecutive q; channels-last (ycl): e -> (row e % tyn,
// window e / tyn), consecutive threads write consecutive o.
template <typename T>
__global__ void __launch_bounds__(256, MINBLOCKS)
conv1d_relu_maxpool_fwd(const T* __restrict__ x, const T* __restrict__ w,
                        const T* __restrict__ b, T* __restrict__ y, int* __restrict__ argmax,
                        int N, int C, int L, int O, int K, int Lc, int Lp, int S, int pl,
                        int d, int Kp, int Sp, int Pp, int sN, int sC, int sL,
                        int has_bias, int ycl, int tm, int tp)
{
    __shared__ T As[TR][128 + 1];            // As[rr][mm] = w[m0+mm, r0+rr]
    __shared__ T Bs[TR][MAXTP + 1];          // Bs[rr][pp] = Xc[r0+rr, column pp]
    __shared__ int xbase[MAXTP], xpos[MAXTP], tcol[MAXTP];  // per column (tcol -1: padding)
    __shared__ int roff[TR], rpos[TR];       // per row r0+rr: c*sC (-1: r >= R), k*d
    const int tid = threadIdx.x, nt = blockDim.x;
    const int txn = tp / RT, tyn = tm / RT, tx = tid % txn, ty = tid / txn;
    const int tsh = __ffs(tp) - 1;           // tp is a power of two
    const int R = C * K, G = N * Lp, W = tp / Kp;
    const int g0 = blockIdx.x * W, m0 = blockIdx.y * tm;
    for (int pp = tid; pp < tp; pp += nt) {
        const int wi = pp / Kp, g = g0 + wi, n = g / Lp, q = g - n * Lp;
        const int t = q * Sp - Pp + (pp - wi * Kp);
        const bool live = wi < W && g < G && t >= 0 && t < Lc;
        tcol[pp] = live ? t : -1;
        xbase[pp] = live ? n * sN : -1;
        xpos[pp] = t * S - pl;
    }
    T acc[RT][RT];
    gemm_tiles(x, w, As, Bs, xbase, xpos, roff, rpos, acc, R, K, L, O, d, sC, sL, m0, tm, tp,
               tsh, tid, nt, tx, ty, txn, tyn);
    T* Es = &Bs[0][0];                       // Es[row*tp + pp], row < tyn
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        const int o = m0 + ty + tyn * i;
        const T bo = (has_bias && o < O) ? b[o] : T(0);
#pragma unroll
        for (int j = 0; j < RT; ++j) {
            T v = acc[i][j] + bo;            // conv1d_fwd's bias and ReLU, bit for bit
            if (v < T(0)) v = T(0);          // NaN stays NaN, as max(z, 0) in the SPEC
            Es[ty * tp + tx + txn * j] = v;
        }
        __syncthreads();
        for (int e = tid; e < tyn * W; e += nt) {
            const int row = ycl ? e % tyn : e / W, wi = ycl ? e / tyn : e % W;
            const int g = g0 + wi, oo = m0 + row + tyn * i;
            if (g >= G || oo >= O) continue;
            const T* er = Es + row * tp + wi * Kp;
            const int* tc = tcol + wi * Kp;
            int k0 = 0;
            while (tc[k0] < 0) ++k0;         // the first real position (the rules leave one)
            T best = er[k0];
            int arg = tc[k0];
            for (int k = k0 + 1; k < Kp; ++k) {
                if (tc[k] < 0) continue;
                const T v = er[k];
                // strictly greater keeps the first maximum; NaN beats any number, once
                const bool take = (v > best) || (v != v && best == best);
                if (take) {
                    best = v;
                    arg = tc[k];
                }
            }
            const int n = g / Lp, q = g - n * Lp;
            const long long at = ycl ? ((long long)n * Lp + q) * O + oo
                                     : ((long long)n * O + oo) * Lp + q;
            y[at] = best;
            argmax[at] = arg;
        }
        __syncthreads();                     // Es is rewritten by the next row
    }
}

// Thread -> index map: as maxpool1d_bwd. gz seen as (R, Lc, I), gy, y and argmax as
// (R, Lp, I) (channels-first: I = 1; channels-last: R = N, I = O); thread i -> gz element
// (r, j, c), i = (r*Lc + j)*I + c, sums gy over the windows t that contain j, chose j and
// pooled a positive value (y > 0: the ReLU's derivative there), in increasing t.
template <typename T>
__global__ void relu_maxpool_bwd(const T* __restrict__ gy, const T* __restrict__ y,
                                 const int* __restrict__ argmax, T* __restrict__ gz,
                                 long long total, int L, int Lo, int I, int K, int S, int P)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long long r;
    int j, c;
    split_index(i, L, I, r, j, c);  // kernels/_pool_cuda.py
    int t_lo, t_hi;
    windows_containing(j, K, S, P, Lo, t_lo, t_hi);
    const long long base = r * Lo * I + c;   // window t of row r, channel c: base + t*I
    T s = T(0);
    for (int t = t_lo; t <= t_hi; ++t) {
        long long o = base + (long long)t * I;
        if (argmax[o] == j && y[o] > T(0)) s += gy[o];
    }
    gz[i] = s;
}
"""

KERNELS = ("conv1d_relu_maxpool_fwd", "relu_maxpool_bwd")


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        pool_size: int, pool_stride: int, pool_padding: int, channels_last: bool = False):
    """(y, argmax) = maxpool1d(max(conv1d(x, w, b), 0)), (N, O, Lp) each, or (N, Lp, O)
    for channels-last x (N, L, C); cupy arrays."""
    cp = cupy()
    S, pl, pr, d = int(stride), int(padding_left), int(padding_right), int(dilation)
    Kp, Sp, Pp = int(pool_size), int(pool_stride), int(pool_padding)
    xv = x.swapaxes(1, 2) if channels_last else x                    # (N, C, L) view
    N, C, L = xv.shape
    O, _, K = w.shape
    tm, tp, threads = tile(O)
    if Kp > tp:                                                      # composition
        r = conv_relu.fwd(x, w, b, stride=S, padding_left=pl, padding_right=pr, dilation=d,
                          channels_last=channels_last)
        return maxpool.fwd(r, kernel_size=Kp, stride=Sp, padding=Pp,
                           channels_last=channels_last)
    xbuf, xs = x_strides(cp, xv)
    w = cp.ascontiguousarray(w, dtype=x.dtype)
    Lc = conv_out_length(L, K, S, pl, pr, d)
    Lp = pool_out_length(OP, Lc, Kp, Sp, Pp)
    check_offsets(OP, N, C, L, O, Lc)
    shape = (N, Lp, O) if channels_last else (N, O, Lp)
    y = cp.empty(shape, dtype=x.dtype)
    argmax = cp.empty(shape, dtype=cp.int32)
    if y.size == 0:
        return y, argmax
    bias = y if b is None else cp.ascontiguousarray(b, dtype=x.dtype)  # y: unread stand-in
    per_block = tp // Kp                                             # windows a block
    fn = kernel(SOURCE, KERNELS, "conv1d_relu_maxpool_fwd", x.dtype)
    launch_grid(fn, (blocks(N * Lp, per_block), blocks(O, tm)), (threads,),
                (xbuf, w, bias, y, argmax,
                 *i32(N, C, L, O, K, Lc, Lp, S, pl, d, Kp, Sp, Pp, *xs, b is not None,
                      channels_last, tm, tp)))
    return y, argmax


def bwd(gy, x, w, y, argmax, *, stride: int, padding_left: int, padding_right: int,
        dilation: int, pool_size: int, pool_stride: int, pool_padding: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx or None, gw (O, C, K), gb (O,)) for gy, given fwd's y and argmax."""
    cp = cupy()
    p = (int(stride), int(padding_left), int(padding_right), int(dilation))
    Kp, Sp, Pp = int(pool_size), int(pool_stride), int(pool_padding)
    gy = cp.ascontiguousarray(gy, dtype=x.dtype)
    y = cp.ascontiguousarray(y, dtype=x.dtype)
    argmax = cp.ascontiguousarray(argmax, dtype=cp.int32)
    xv = x.swapaxes(1, 2) if channels_last else x                    # (N, C, L) view
    N, C, L = xv.shape
    Lc = conv_out_length(L, w.shape[2], *p)
    if channels_last:
        _, Lp, O = gy.shape
        R, I, shape = N, O, (N, Lc, O)
    else:
        _, O, Lp = gy.shape
        R, I, shape = N * O, 1, (N, O, Lc)
    gz = cp.empty(shape, dtype=x.dtype)                              # SPEC's gz
    total = R * Lc * I
    fn = kernel(SOURCE, KERNELS, "relu_maxpool_bwd", x.dtype)
    launch(fn, total, (gy, y, argmax, gz, np.int64(total),
                       *i32(Lc, Lp, I, Kp, Sp, Pp)))
    if channels_last:
        gx, gw, gb = conv.backward(swap_layout(gz), xv, w, None, *p, bool(need_gx))
        return (None if gx is None else swap_layout(gx)), gw, gb
    return conv.backward(gz, xv, w, None, *p, bool(need_gx))
