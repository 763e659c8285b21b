"""The implicit-GEMM tiles of the GPU convolutions, shared by conv1d (and conv1d_relu,
which runs conv1d's kernels) and the fused conv1d_relu_maxpool block.

``TILES`` is CUDA C that a family's ``SOURCE`` starts with: the tile sizes, ``mac_chunk``
(a chunk of the reduction multiplied into each thread's 8 x 8 register tile), ``zero_tile``
and ``gemm_tiles`` (the forward's whole reduction, weight tile and gathered input tile per
chunk, in one fixed order, so that conv1d_fwd and conv1d_relu_maxpool_fwd compute the same
bits). On the host side: ``tile`` (the block shape for a GEMM's row count), ``x_strides``
(how a kernel reads x: channels-first, or a channels-last buffer through its transposed
view), ``check_offsets`` (the kernels' int32 offsets) and ``i32`` (a launch's int
arguments).
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TILES", "tile", "x_strides", "check_offsets", "i32"]

TILES = r"""
// Xc[c*K + k, n*Lo + t] = xp[n, c, t*S + k*d] is SPEC's unfolded input (im2col); it is
// gathered tile by tile into shared memory and never materialised.
#define TR 8           // reduction chunk of conv1d_fwd / conv1d_bwd_data
#define RT 8           // each thread owns an RT x RT register tile of outputs
#define MAXTP 256      // widest column tile
// At most 128 registers a thread, so that two 256-thread blocks share an SM (float needs
// no more; double spills a little, its speed is not the target)
#define MINBLOCKS 2

// acc[i][j] += As[q][ty + tyn*i] * Bs[q][tx + txn*j] over the chunk q < NQ.
template <typename T, int NQ, int LDA, int LDB>
__device__ __forceinline__ void mac_chunk(const T (*As)[LDA], const T (*Bs)[LDB],
                                          T (&acc)[RT][RT], int tx, int ty, int txn, int tyn)
{
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
        T a[RT], v[RT];
#pragma unroll
        for (int i = 0; i < RT; ++i) a[i] = As[q][ty + tyn * i];
#pragma unroll
        for (int j = 0; j < RT; ++j) v[j] = Bs[q][tx + txn * j];
#pragma unroll
        for (int i = 0; i < RT; ++i)
#pragma unroll
            for (int j = 0; j < RT; ++j) acc[i][j] += a[i] * v[j];
    }
}

template <typename T>
__device__ __forceinline__ void zero_tile(T (&acc)[RT][RT])
{
#pragma unroll
    for (int i = 0; i < RT; ++i)
#pragma unroll
        for (int j = 0; j < RT; ++j) acc[i][j] = T(0);
}

// The implicit GEMM's reduction over r = c*K + k, chunk by chunk (conv1d_fwd's and
// conv1d_relu_maxpool_fwd's, so both sum in one order): per chunk the row tables (roff: c*sC,
// -1 past R; rpos: k*d), then the weight tile As and the column tile Bs (column pp reads x
// at xbase[pp] + c*sC + i*sL, i = xpos[pp] + k*d; xbase -1: an idle column) filled by all
// threads in turn, then multiplied into acc. The barrier after the last multiply is what
// lets conv1d_relu_maxpool_fwd reuse Bs for its epilogue (Es) right after the call.
template <typename T>
__device__ __forceinline__ void gemm_tiles(
    const T* __restrict__ x, const T* __restrict__ w, T (&As)[TR][128 + 1],
    T (&Bs)[TR][MAXTP + 1], const int* xbase, const int* xpos, int* roff, int* rpos,
    T (&acc)[RT][RT], int R, int K, int L, int O, int d, int sC, int sL, int m0, int tm,
    int tp, int tsh, int tid, int nt, int tx, int ty, int txn, int tyn)
{
    zero_tile(acc);
    for (int r0 = 0; r0 < R; r0 += TR) {
        if (tid < TR) {
            const int r = r0 + tid, c = r / K, k = r - c * K;
            roff[tid] = r < R ? c * sC : -1;
            rpos[tid] = k * d;
        }
        __syncthreads();
        for (int e = tid; e < TR * tm; e += nt) {
            const int rr = e % TR, mm = e / TR, m = m0 + mm, r = r0 + rr;
            As[rr][mm] = (m < O && r < R) ? w[(long long)m * R + r] : T(0);
        }
        for (int e = tid; e < TR * tp; e += nt) {
            const int rr = e >> tsh, pp = e & (tp - 1);
            const int i = xpos[pp] + rpos[rr];
            const bool ok = xbase[pp] >= 0 && roff[rr] >= 0 && i >= 0 && i < L;
            Bs[rr][pp] = ok ? x[(long long)xbase[pp] + roff[rr] + (long long)i * sL] : T(0);
        }
        __syncthreads();
        mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);
        __syncthreads();
    }
}
"""


def tile(rows):
    """(tm, tp, threads) of conv1d_fwd / conv1d_bwd_data / conv1d_relu_maxpool_fwd for a
    GEMM with ``rows`` rows: the narrowest row tile that covers them (8 x 8 outputs per
    thread)."""
    if rows <= 32:
        return 32, 256, 128
    if rows <= 64:
        return 64, 256, 256
    return 128, 128, 256


def x_strides(cp, x):
    """(buffer, (sN, sC, sL)): x (N, C, L) as conv1d_bwd_weight and conv1d_relu_maxpool_fwd
    read it, x[n, c, i] at n·sN + c·sC + i·sL of the buffer. The transposed view of a
    C-contiguous (N, L, C) array (the towers' first input) is read in place, through its
    strides; any other non-contiguous x is copied (``cp.ascontiguousarray``) to the
    channels-first layout."""
    N, C, L = x.shape
    if not x.flags.c_contiguous:
        xt = x.swapaxes(1, 2)
        if xt.flags.c_contiguous:
            return xt, (L * C, 1, C)
        x = cp.ascontiguousarray(x)
    return x, (C * L, L, 1)


def check_offsets(op, N, C, L, O, Lo):
    """Refuse shapes whose element offsets overflow the kernels' int32 arithmetic."""
    if N * max(L, Lo) * max(C, O) >= 2**31:
        raise ValueError(f"{op} (cupy): N={N}, C={C}, L={L}, O={O} too large for int32 "
                         "offsets")


def i32(*values):
    """The values as the int32 scalars a kernel's ``int`` parameters take."""
    return tuple(np.int32(v) for v in values)
