"""conv1d on the CPU: Numba packing loops around BLAS matrix products, a batch chunk at a time,
in either layout.

Strategy (SPEC's matrix form), for each chunk of about ``_COLS`` // Lo samples: an njit
loop packs the padded input into columns X̂[(c,k), (n,t)] (``im2col``, kernels/_im2col.py),
the Python wrapper multiplies with NumPy's BLAS (``W2 @ X̂``, ``G @ X̂ᵀ``, ``W2ᵀ @ G``; BLAS
on its own threads, or on one under each chunk thread: see Parallelism), and njit loops
move the results between the (O, n·Lo) product layout and the (N, O, Lo) array layout:
``_to_ncl`` (adds the bias, optionally applies ReLU) and ``_to_rows`` (optionally masks by
y > 0, adds the row sums to gb[o]); ``col2im`` adds each tap's column back onto the
positions it read.
Why BLAS: at the article's shapes pure njit loops (prange over n / o) were many times
slower than these three products, which run at the speed of torch.nn.functional.conv1d
(benchmarks/NOTES.md, item 27).
Parallelism: channels-first, only inside BLAS. The njit loops are serial on purpose: they
are short and memory-bound, and running them as ``prange`` loops on Numba's OpenMP threads
between OpenBLAS calls made the two spinning thread pools fight over the cores.
Channels-last, also over whole chunks (packing, product and pass of a chunk on one thread,
BLAS single-threaded under it) when ``set_num_threads`` gives the chunks threads:
``run_chunks`` in kernels/_threads.py. (Then BLAS has one thread for the channels-first
path too, which the network does not run on the CPU.)
Memory: every loop walks rows contiguously. The chunk buffers (X̂ and the product) are
allocated once per call and reused for every chunk (backward also reuses X̂'s buffer for
gX̂), so they stay in cache and small enough that glibc keeps them on its heap: whole-batch
buffers page-faulted on every forward.

Channels-last (``channels_last=True``, x (N, L, C) → y (N, Lo, O); what the network uses on
the CPU): the same products with the roles of rows and columns swapped. The columns of one
output row (n, t) are the window x[n, t·S+k·d, :] for each k, runs of C contiguous values
(``im2col_nlc``), and y viewed as (N·Lo, O) IS the product X̂ᵀ·W2ᵀ, so BLAS writes each
chunk of ``ROWS`` rows (kernels/_im2col.py) straight into y and only the bias (and ReLU) is
added in place (``_bias_nlc``). Backward, gy viewed as (N·Lo, O) is already the product's
layout: one pass masks it and sums gb (``_mask_nlc``, nothing to do for plain conv1d),
then gW2ᵀ = X̂·G and gX̂ᵀ = G·W2 (``chunk_products_nlc``), and ``col2im_nlc`` adds rows of C
values back. No pass reorders a whole array, which made channels-last the faster layout
(benchmarks/NOTES.md, item 27).

math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._im2col import (
    batch_chunks,
    chunk_products_nlc,
    col2im,
    im2col,
    im2col_nlc,
    row_chunks,
    w_from_rows,
    w_rows,
)
from kernels._shapes import conv_out_length
from kernels._threads import per_slot, run_chunks, sum_in_order

__all__ = ["fwd", "bwd", "forward", "backward", "forward_nlc", "backward_nlc"]

#: Columns (n, t) per chunk: large enough for BLAS to run at full speed, small enough for
#: the chunk buffers to stay in cache.
_COLS = 1024


@njit(cache=True)
def _to_ncl(prod, b, Lo, relu, y):
    """y[n, o, t] = prod[o, n·Lo+t] + b[o], then max(·, 0) when relu; y (N, O, Lo)."""
    N, O, _ = y.shape
    for n in range(N):
        for o in range(O):
            bo = b[o]
            row = n * Lo
            if relu:
                for t in range(Lo):
                    y[n, o, t] = max(prod[o, row + t] + bo, 0.0)
            else:
                for t in range(Lo):
                    y[n, o, t] = prod[o, row + t] + bo


@njit(cache=True)
def _to_rows(gy, y, relu, G, gb):
    """G[o, n·Lo+t] = gy[n, o, t]·[y[n, o, t] > 0 or not relu]; gb[o] += Σ G[o, :].

    ``y`` is only read when relu is true (callers without a mask pass gy again). The row
    sum runs over Lo independent partial sums, so the loop over t vectorises."""
    N, O, Lo = gy.shape
    part = np.empty(Lo, dtype=np.float64)
    for o in range(O):
        part[:] = 0.0
        for n in range(N):
            row = n * Lo
            if relu:
                for t in range(Lo):
                    g = gy[n, o, t] if y[n, o, t] > 0.0 else 0.0
                    G[o, row + t] = g
                    part[t] += g
            else:
                for t in range(Lo):
                    g = gy[n, o, t]
                    G[o, row + t] = g
                    part[t] += g
        gb[o] += part.sum()


@njit(cache=True, nogil=True)
def _bias_nlc(y, b, relu, zero):
    """y[r, o] += b[o], then max(·, 0) when relu; y (R, O) in place; ``zero`` is 0 in y's
    dtype (see ``_mask_nlc``)."""
    R, O = y.shape
    for r in range(R):
        if relu:
            for o in range(O):
                y[r, o] = max(y[r, o] + b[o], zero)
        else:
            for o in range(O):
                y[r, o] = y[r, o] + b[o]


@njit(cache=True, nogil=True)
def _mask_nlc(gy, y, relu, G, gb, zero):
    """G[r, o] = gy[r, o]·[y[r, o] > 0 or not relu]; gb[o] += Σ_r G[r, o]; all (R, O).

    The sum runs over O independent float64 partial sums, one per column, so the loop
    over o vectorises; callers without a mask pass gy as y (unread) and G may be gy.
    The mask and the sum are separate loops, with ``zero`` (0 in gy's dtype) in the
    select: as one loop with 0.0 it ran slower (benchmarks/NOTES.md, item 27)."""
    R, O = gy.shape
    part = np.zeros(O, dtype=np.float64)
    for r in range(R):
        if relu:
            for o in range(O):
                G[r, o] = gy[r, o] if y[r, o] > zero else zero
            for o in range(O):
                part[o] += G[r, o]
        else:
            for o in range(O):
                part[o] += gy[r, o]
    for o in range(O):
        gb[o] += part[o]


def forward(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """conv1d (then ReLU when ``relu``) through im2col + BLAS; shared with conv1d_relu."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = conv_out_length(L, K, stride, padding_left, padding_right, dilation)
    w2 = w.reshape(O, C * K)
    bias = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((N, O, Lo), dtype=x.dtype)
    nb, chunks = batch_chunks(N, Lo, _COLS)
    cols_buf = np.empty(C * K * min(N, nb) * Lo, dtype=x.dtype)
    prod_buf = np.empty(O * min(N, nb) * Lo, dtype=x.dtype)
    for n0, n1 in chunks:
        m = (n1 - n0) * Lo
        cols = cols_buf[:C * K * m].reshape(C * K, m)
        im2col(x[n0:n1], K, stride, padding_left, dilation, Lo, cols)        # (C·K, m)
        prod = np.matmul(w2, cols, out=prod_buf[:O * m].reshape(O, m))        # (O, m)
        _to_ncl(prod, bias, Lo, relu, y[n0:n1])
    return y                                                                  # (N, O, Lo)


def backward(gy, x, w, y, stride, padding_left, padding_right, dilation, need_gx=True):
    """conv1d's (gx, gw, gb) for gy, masked by y > 0 when y is given (conv1d_relu); gx is
    None (its product and col2im skipped) when not ``need_gx``."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    relu = y is not None
    mask = np.ascontiguousarray(y) if relu else gy                # gy: unread stand-in
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = gy.shape[2]
    w2t = w.reshape(O, C * K).T
    gx = np.empty((N, C, L), dtype=x.dtype) if need_gx else None
    gw = np.zeros((O, C * K), dtype=x.dtype)
    gw_chunk = np.empty((O, C * K), dtype=x.dtype)
    gb = np.zeros(O, dtype=x.dtype)
    nb, chunks = batch_chunks(N, Lo, _COLS)
    cols_buf = np.empty(C * K * min(N, nb) * Lo, dtype=x.dtype)
    rows_buf = np.empty(O * min(N, nb) * Lo, dtype=x.dtype)
    for n0, n1 in chunks:
        m = (n1 - n0) * Lo
        G = rows_buf[:O * m].reshape(O, m)
        _to_rows(gy[n0:n1], mask[n0:n1], relu, G, gb)                    # (O, m); gb +=
        cols = cols_buf[:C * K * m].reshape(C * K, m)
        im2col(x[n0:n1], K, stride, padding_left, dilation, Lo, cols)   # (C·K, m)
        gw += np.matmul(G, cols.T, out=gw_chunk)                          # (O, C·K)
        if need_gx:
            gcols = np.matmul(w2t, G, out=cols)                           # reuse the buffer
            col2im(gcols, K, stride, padding_left, dilation, Lo, gx[n0:n1])
    return gx, gw.reshape(O, C, K), gb


def forward_nlc(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """Channels-last conv1d (then ReLU): x (N, L, C) → y (N, Lo, O); shared with conv1d_relu.

    y viewed as (N·Lo, O) is exactly the product X̂ᵀ·W2ᵀ, so BLAS writes each chunk's rows
    straight into y: no reordering pass, only the bias (and ReLU) added in place."""
    x = np.ascontiguousarray(x)
    N, L, C = x.shape
    O, _, K = w.shape
    Lo = conv_out_length(L, K, stride, padding_left, padding_right, dilation)
    wm = w_rows(w)                                                        # (K·C, O)
    bias = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((N * Lo, O), dtype=x.dtype)
    nb, chunks = row_chunks(N, Lo)
    bufs = per_slot(chunks, lambda: np.empty(min(N, nb) * Lo * K * C, dtype=x.dtype))  # X̂ᵀ

    def chunk(slot, i, n0, n1):
        rows = y[n0 * Lo:n1 * Lo]
        cols = bufs[slot][:rows.shape[0] * K * C].reshape(rows.shape[0], K * C)
        im2col_nlc(x[n0:n1], K, stride, padding_left, dilation, Lo, cols)   # (m, K·C)
        np.matmul(cols, wm, out=rows)                                      # (m, O)
        _bias_nlc(rows, bias, relu, x.dtype.type(0))

    run_chunks(chunk, chunks)
    return y.reshape(N, Lo, O)


def backward_nlc(gy, x, w, y, stride, padding_left, padding_right, dilation, need_gx=True):
    """Channels-last conv1d's (gx (N, L, C) or None, gw, gb) for gy (N, Lo, O), masked by
    y > 0 when y is given. gy viewed as (N·Lo, O) is already the product layout."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    relu = y is not None
    N, L, C = x.shape
    O, _, K = w.shape
    Lo = gy.shape[1]
    wm = w_rows(w)
    g_all = gy.reshape(N * Lo, O)
    mask = np.ascontiguousarray(y).reshape(N * Lo, O) if relu else g_all
    gx = np.empty((N, L, C), dtype=x.dtype) if need_gx else None
    nb, chunks = row_chunks(N, Lo)
    m_max = min(N, nb) * Lo
    gw_parts = np.empty((len(chunks), K * C, O), dtype=x.dtype)   # chunk i's X̂·G
    gb_parts = np.zeros((len(chunks), O), dtype=np.float64)     # chunk i's Σ G (float64)
    bufs = per_slot(chunks, lambda: (np.empty(m_max * K * C, dtype=x.dtype),
                                     np.empty(m_max * O, dtype=x.dtype) if relu else None))

    def chunk(slot, i, n0, n1):
        m = (n1 - n0) * Lo
        cols_buf, g_buf = bufs[slot]                # (X̂ᵀ, the masked Gᵀ) of this thread
        g = g_all[n0 * Lo:n1 * Lo]
        G = g_buf[:m * O].reshape(m, O) if relu else g
        _mask_nlc(g, mask[n0 * Lo:n1 * Lo], relu, G, gb_parts[i], x.dtype.type(0))
        cols = cols_buf[:m * K * C].reshape(m, K * C)
        chunk_products_nlc(x[n0:n1], G, wm, stride, padding_left, dilation, Lo, cols,
                           gw_parts[i], gx[n0:n1] if need_gx else None)

    run_chunks(chunk, chunks)
    gwm = sum_in_order(gw_parts, x.dtype)
    gb = sum_in_order(gb_parts, x.dtype)
    return gx, w_from_rows(gwm, C, K), gb


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = conv1d(x (N, C, L), w (O, C, K), b (O,) | None); channels-last:
    x (N, L, C) → y (N, Lo, O). See SPEC."""
    impl = forward_nlc if channels_last else forward
    return impl(x, w, b, int(stride), int(padding_left), int(padding_right), int(dilation),
                False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo);
    channels-last: gx (N, L, C) for gy (N, Lo, O)."""
    impl = backward_nlc if channels_last else backward
    return impl(gy, x, w, None, int(stride), int(padding_left), int(padding_right),
                int(dilation), bool(need_gx))
