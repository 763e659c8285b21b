"""The packing loops of the CPU convolutions (Numba), shared by conv1d, conv1d_relu and
conv1d_relu_maxpool: im2col, which unfolds the padded input into the columns X̂ of conv1d's
matrix form (SPEC), its adjoint col2im, which adds each tap's column back onto the
positions it read, both layouts of each, the weight matrix of the channels-last products,
and the batch chunks the products run in.

The loops are serial (njit, no prange) and walk rows contiguously; kernels/conv1d/numba_cpu.py
says why, and how the products around them use BLAS.

The channels-last chunks run on the threads of kernels/_threads.py (``run_chunks``); the
channels-last packing loops release the GIL (``nogil``) for that.
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ROWS", "batch_chunks", "row_chunks", "im2col", "col2im", "im2col_nlc",
           "col2im_nlc", "w_rows", "w_from_rows", "chunk_products_nlc"]

#: Rows (n, t) per chunk of the channels-last products (conv1d's and the fused block's).
ROWS = 2048


def batch_chunks(N, Lo, per_chunk):
    """(samples per chunk nb, the sample ranges [n0, n1)) for chunks of about ``per_chunk``
    output positions (n, t) each; nb ≥ 1."""
    nb = max(1, per_chunk // max(Lo, 1))
    return nb, [(n0, min(N, n0 + nb)) for n0 in range(0, N, nb)]


def row_chunks(N, Lo):
    """``batch_chunks`` of the channels-last products: about ``ROWS`` rows (n, t) each. Never
    the thread count: the chunks, and so the bits of the results, are the same on any
    number of threads."""
    return batch_chunks(N, Lo, ROWS)


@njit(cache=True)
def im2col(x, K, S, pl, d, Lo, cols):
    """cols[c·K+k, n·Lo+t] = xp[n, c, t·S+k·d] (zero in the padding); cols (C·K, N·Lo)."""
    N, C, L = x.shape
    for ck in range(C * K):
        c = ck // K
        k = ck - c * K
        for n in range(N):
            row = n * Lo
            for t in range(Lo):
                i = t * S + k * d - pl
                cols[ck, row + t] = x[n, c, i] if 0 <= i < L else 0.0


@njit(cache=True)
def col2im(gcols, K, S, pl, d, Lo, gx):
    """gx[n, c, j] = Σ_k gcols[c·K+k, n·Lo+t] over t·S+k·d = j+pl; gx (N, C, L)."""
    N, C, L = gx.shape
    for c in range(C):
        for n in range(N):
            gx[n, c, :] = 0.0
            row = n * Lo
            for k in range(K):
                ck = c * K + k
                for t in range(Lo):
                    i = t * S + k * d - pl
                    if 0 <= i < L:
                        gx[n, c, i] += gcols[ck, row + t]


@njit(cache=True, nogil=True)
def im2col_nlc(x, K, S, pl, d, Lo, cols):
    """cols[n·Lo+t, k·C+c] = xp[n, t·S+k·d, c] (zero in the padding); x (N, L, C).

    Channels-last rows are contiguous runs of C values, so each (t, k) is one short copy."""
    N, L, C = x.shape
    for n in range(N):
        for t in range(Lo):
            r = n * Lo + t
            for k in range(K):
                i = t * S + k * d - pl
                if 0 <= i < L:
                    for c in range(C):
                        cols[r, k * C + c] = x[n, i, c]
                else:
                    for c in range(C):
                        cols[r, k * C + c] = 0.0


@njit(cache=True, nogil=True)
def col2im_nlc(gcols, K, S, pl, d, Lo, gx):
    """gx[n, j, c] = Σ_k gcols[n·Lo+t, k·C+c] over t·S+k·d = j+pl (k, then t, ascending)."""
    N, L, C = gx.shape
    for n in range(N):
        gx[n] = 0.0
        for k in range(K):
            for t in range(Lo):
                i = t * S + k * d - pl
                if 0 <= i < L:
                    r = n * Lo + t
                    for c in range(C):
                        gx[n, i, c] += gcols[r, k * C + c]


def w_rows(w):
    """W as the (K·C, O) matrix of the channels-last products: wm[k·C+c, o] = w[o, c, k]."""
    O, C, K = w.shape
    return np.ascontiguousarray(w.transpose(2, 1, 0)).reshape(K * C, O)


def w_from_rows(wm, C, K):
    """``w_rows`` undone: w[o, c, k] = wm[k·C+c, o], (O, C, K) and contiguous."""
    O = wm.shape[1]
    return np.ascontiguousarray(wm.reshape(K, C, O).transpose(2, 1, 0))


def chunk_products_nlc(x, G, wm, S, pl, d, Lo, cols, gw_part, gx):
    """The backward products of one channels-last chunk, given its gradient rows G
    (m, O) = Gᵀ: the chunk's weight gradient gw_part = X̂·G (K·C, O) and, when gx is
    given, gx = col2im(G·W2), reusing ``cols`` (m, K·C) first for X̂ᵀ, then for the
    product."""
    K = wm.shape[0] // x.shape[2]
    im2col_nlc(x, K, S, pl, d, Lo, cols)
    np.matmul(cols.T, G, out=gw_part)                                      # (K·C, O)
    if gx is not None:
        gcols = np.matmul(G, wm.T, out=cols)                               # reuse the buffer
        col2im_nlc(gcols, K, S, pl, d, Lo, gx)
