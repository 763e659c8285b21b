"""The CUDA C of conv1d_relu_maxpool's two fused GPU kernels, after the implicit-GEMM tiles
the forward shares with conv1d_fwd (``TILES``: ``gemm_tiles``, ``mac_chunk``, ``zero_tile``
and the tile sizes, kernels/_gemm_cuda.py):

- ``conv1d_relu_maxpool_fwd``: conv1d_fwd's implicit GEMM with its columns taken window by
  window (the conv positions of Kp-wide pool windows, so no window straddles two blocks),
  and an epilogue that adds the bias, applies the ReLU and pools the block's tile through
  shared memory into y and argmax; the full-length activation never reaches memory.
- ``relu_maxpool_bwd``: maxpool1d_bwd's gather with the ReLU mask of the pooled value
  (the SPEC's derived form), giving the convolution's pre-activation gradient gz directly.

Each kernel opens with its thread -> index map; cupy_cuda.py launches them.
math: see SPEC (kernels/conv1d_relu_maxpool/__init__.py).
"""

from kernels._gemm_cuda import TILES
from kernels._pool_cuda import WINDOWS

__all__ = ["SOURCE", "KERNELS"]

FUSED_SOURCE = r"""
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

SOURCE = TILES + WINDOWS + FUSED_SOURCE
KERNELS = ("conv1d_relu_maxpool_fwd", "relu_maxpool_bwd")
