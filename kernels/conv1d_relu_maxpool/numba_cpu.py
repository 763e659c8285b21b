"""conv1d_relu_maxpool on the CPU: conv1d's channels-last products with the bias, ReLU and
max-pool fused into one pass over each chunk's product, and the pool's backward and the
ReLU mask fused into the pass that builds the gradient's rows.

Strategy (channels-last, the network's layout; kernels/conv1d/numba_cpu.py has the products
and kernels/_im2col.py the packing and the chunking): for a chunk of samples (about ``ROWS``
rows (n, t) of the convolution's output), ``im2col_nlc`` packs the windows, BLAS writes Z =
X̂ᵀ·W2ᵀ into a chunk buffer that stays in cache, and ``_bias_relu_pool`` reads it once: r =
max(z + b, 0) and the running maximum of each pool window go straight to y and argmax,
vectorised over the O contiguous channels (selects, no branches: the rule of
kernels/maxpool1d/numba_cpu.py, so ties and NaN go as in maxpool1d). The full-length r is
never written to memory. Backward, ``_gather_masked`` fills the chunk's gradient rows Gᵀ:
each row t gathers gy·[y > 0] from the windows that chose it, p ascending (the SPEC's
derived form; the same additions in the same order as maxpool1d's backward followed by
conv1d_relu's mask), and gb is summed in float64; conv1d's products and ``col2im_nlc``
follow (``chunk_products_nlc``).
Parallelism: over the chunks, on the threads of ``kernels._threads.run_chunks`` (each chunk's
packing, product and pass on one thread, BLAS single-threaded under it); each chunk has its
own buffers and partial gradients, added in chunk order, so any thread count gives the
same bits.
Channels-first arrays go through the unfused composition (conv1d_relu, then maxpool1d;
backward maxpool1d's, then conv1d's): the network uses this op channels-last on the CPU.

The network's pool (Kp = Sp = 2, Pp = 0) has its own unrolled passes
(``_bias_relu_pool_pairs``, ``_gather_masked_pairs``): one loop per written row and the
zero in the arrays' dtype, without which the loops did not vectorise (NOTES, experiment
18).

Against conv1d_relu followed by maxpool1d (both channels-last Numba kernels), the passes
save writing r (forward) and the pool's full-length gradient (backward), and the reads of
both (timings: benchmarks/NOTES.md, items 17 and 26).

math: see SPEC (kernels/conv1d_relu_maxpool/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._im2col import (
    chunk_products_nlc,
    im2col_nlc,
    row_chunks,
    w_from_rows,
    w_rows,
)
from kernels._shapes import conv_out_length, pool_out_length
from kernels._threads import per_slot, run_chunks, sum_in_order
from kernels.conv1d import numba_cpu as conv
from kernels.conv1d_relu import numba_cpu as conv_relu
from kernels.maxpool1d import numba_cpu as maxpool

__all__ = ["fwd", "bwd"]


@njit(cache=True, nogil=True)
def _bias_relu_pool(z, b, Kp, Sp, Pp, y, argmax):
    """r = max(z + b, 0) over z (n, Lc, O); y[n, p, :] = max of r over window p's real rows,
    argmax its first position (maxpool1d's rule); y, argmax (n, Lp, O)."""
    Nc, Lc, O = z.shape
    Lp = y.shape[1]
    for n in range(Nc):
        for p in range(Lp):
            start = p * Sp - Pp
            lo = max(start, 0)          # real rows of window p: lo … hi − 1
            hi = min(start + Kp, Lc)
            for o in range(O):
                y[n, p, o] = max(z[n, lo, o] + b[o], 0.0)
                argmax[n, p, o] = lo
            for j in range(lo + 1, hi):
                for o in range(O):      # contiguous, branch-free: vectorised
                    v = max(z[n, j, o] + b[o], 0.0)
                    best = y[n, p, o]
                    arg = argmax[n, p, o]
                    take = (v > best) | ((v != v) & (best == best))
                    y[n, p, o] = v if take else best
                    argmax[n, p, o] = j if take else arg


@njit(cache=True, nogil=True)
def _gather_masked(gy, y, argmax, Kp, Sp, Pp, G, gb):
    """G[n, t, :] = Σ_{p : argmax = t} gy[n, p, :]·[y[n, p, :] > 0], p ascending, zero
    where no window chose t; gb[o] += the same terms (float64). gy, y, argmax (n, Lp, O);
    G (n, Lc, O). A gather over the windows p ∈ [⌈(t + Pp − Kp + 1)/Sp⌉, ⌊(t + Pp)/Sp⌋]
    that contain t, as selects over the O contiguous channels (a scatter into G at argmax
    was slower: its stores do not vectorise; benchmarks/NOTES.md, item 27)."""
    Nc, Lp, O = gy.shape
    Lc = G.shape[1]
    for n in range(Nc):
        for t in range(Lc):
            a = t + Pp - Kp + 1
            p_lo = (a + Sp - 1) // Sp if a > 0 else 0
            p_hi = min((t + Pp) // Sp, Lp - 1)
            for o in range(O):
                G[n, t, o] = 0.0
            for p in range(p_lo, p_hi + 1):
                for o in range(O):
                    s = G[n, t, o]
                    take = (argmax[n, p, o] == t) & (y[n, p, o] > 0.0)
                    G[n, t, o] = s + gy[n, p, o] if take else s
        for p in range(Lp):
            for o in range(O):
                gb[o] += gy[n, p, o] if y[n, p, o] > 0.0 else 0.0


@njit(cache=True, nogil=True)
def _bias_relu_pool_pairs(z, b, y, argmax, zero):
    """``_bias_relu_pool`` for Kp = Sp = 2, Pp = 0 (the network's pool): window p is rows
    2p and 2p+1, unrolled; the same comparisons, so the same y and argmax."""
    Nc, Lc, O = z.shape
    Lp = y.shape[1]
    for n in range(Nc):
        for p in range(Lp):
            for o in range(O):
                u = max(z[n, 2 * p, o] + b[o], zero)
                v = max(z[n, 2 * p + 1, o] + b[o], zero)
                take = (v > u) | ((v != v) & (u == u))
                y[n, p, o] = v if take else u
                argmax[n, p, o] = 2 * p + 1 if take else 2 * p


@njit(cache=True, nogil=True)
def _gather_masked_pairs(gy, y, argmax, G, gb, zero):
    """``_gather_masked`` for Kp = Sp = 2, Pp = 0: row t lies in window t // 2 only, so
    G[n, t, :] = gy·[y > 0]·[argmax = t] of that window (rows past 2·Lp are 0). One loop
    per written row, and ``zero`` in the arrays' dtype: with both rows' stores in one loop
    (or a float64 0.0) the loop did not vectorise (benchmarks/NOTES.md, item 27)."""
    Nc, Lp, O = gy.shape
    Lc = G.shape[1]
    for n in range(Nc):
        for p in range(Lp):
            t = 2 * p
            for o in range(O):
                g = gy[n, p, o] if y[n, p, o] > zero else zero
                G[n, t, o] = g if argmax[n, p, o] == t else zero
            for o in range(O):
                g = gy[n, p, o] if y[n, p, o] > zero else zero
                G[n, t + 1, o] = zero if argmax[n, p, o] == t else g
            for o in range(O):
                gb[o] += gy[n, p, o] if y[n, p, o] > zero else zero
        for t in range(2 * Lp, Lc):
            for o in range(O):
                G[n, t, o] = zero


def _forward_nlc(x, w, b, S, pl, pr, d, Kp, Sp, Pp):
    x = np.ascontiguousarray(x)
    N, L, C = x.shape
    O, _, K = w.shape
    Lc = conv_out_length(L, K, S, pl, pr, d)
    Lp = pool_out_length("conv1d_relu_maxpool", Lc, Kp, Sp, Pp)
    wm = w_rows(w)                                                       # (K·C, O)
    bias = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty((N, Lp, O), dtype=x.dtype)
    argmax = np.empty((N, Lp, O), dtype=np.int32)
    pairs = Kp == 2 and Sp == 2 and Pp == 0
    zero = x.dtype.type(0)
    nb, chunks = row_chunks(N, Lc)
    rows = min(N, nb) * Lc
    bufs = per_slot(chunks, lambda: (np.empty(rows * K * C, dtype=x.dtype),
                                     np.empty(rows * O, dtype=x.dtype)))   # (X̂ᵀ, Z) a thread

    def chunk(slot, i, n0, n1):
        m = (n1 - n0) * Lc
        cols_buf, z_buf = bufs[slot]
        cols = cols_buf[:m * K * C].reshape(m, K * C)
        im2col_nlc(x[n0:n1], K, S, pl, d, Lc, cols)
        z = np.matmul(cols, wm, out=z_buf[:m * O].reshape(m, O))          # (m, O)
        if pairs:
            _bias_relu_pool_pairs(z.reshape(n1 - n0, Lc, O), bias, y[n0:n1], argmax[n0:n1],
                                  zero)
        else:
            _bias_relu_pool(z.reshape(n1 - n0, Lc, O), bias, Kp, Sp, Pp, y[n0:n1],
                            argmax[n0:n1])

    run_chunks(chunk, chunks)
    return y, argmax


def _backward_nlc(gy, x, w, y, argmax, S, pl, pr, d, Kp, Sp, Pp, need_gx):
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    y = np.ascontiguousarray(y)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    N, L, C = x.shape
    O, _, K = w.shape
    Lc = conv_out_length(L, K, S, pl, pr, d)
    wm = w_rows(w)
    gx = np.empty((N, L, C), dtype=x.dtype) if need_gx else None
    nb, chunks = row_chunks(N, Lc)
    rows = min(N, nb) * Lc
    gw_parts = np.empty((len(chunks), K * C, O), dtype=x.dtype)   # chunk i's X̂·G
    gb_parts = np.zeros((len(chunks), O), dtype=np.float64)
    bufs = per_slot(chunks, lambda: (np.empty(rows * K * C, dtype=x.dtype),
                                     np.empty(rows * O, dtype=x.dtype)))   # (X̂ᵀ, Gᵀ) a thread
    zero = x.dtype.type(0)

    def chunk(slot, i, n0, n1):
        m = (n1 - n0) * Lc
        cols_buf, g_buf = bufs[slot]
        G = g_buf[:m * O].reshape(n1 - n0, Lc, O)
        if Kp == 2 and Sp == 2 and Pp == 0:
            _gather_masked_pairs(gy[n0:n1], y[n0:n1], argmax[n0:n1], G, gb_parts[i], zero)
        else:
            _gather_masked(gy[n0:n1], y[n0:n1], argmax[n0:n1], Kp, Sp, Pp, G, gb_parts[i])
        cols = cols_buf[:m * K * C].reshape(m, K * C)
        chunk_products_nlc(x[n0:n1], G.reshape(m, O), wm, S, pl, d, Lc, cols, gw_parts[i],
                           gx[n0:n1] if need_gx else None)

    run_chunks(chunk, chunks)
    gwm = sum_in_order(gw_parts, x.dtype)
    gb = sum_in_order(gb_parts, np.float64)
    return gx, w_from_rows(gwm, C, K), gb.astype(x.dtype)


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        pool_size: int, pool_stride: int, pool_padding: int, channels_last: bool = False):
    """(y, argmax) = maxpool1d(max(conv1d(x, w, b), 0)): (N, O, Lp) each, or (N, Lp, O)
    for channels-last x (N, L, C)."""
    conv_p = dict(stride=int(stride), padding_left=int(padding_left),
                  padding_right=int(padding_right), dilation=int(dilation))
    pool_p = dict(kernel_size=int(pool_size), stride=int(pool_stride),
                  padding=int(pool_padding))
    if not channels_last:                                       # the unfused composition
        r = conv_relu.fwd(x, w, b, **conv_p)
        return maxpool.fwd(r, **pool_p)
    return _forward_nlc(x, w, b, *conv_p.values(), *pool_p.values())


def bwd(gy, x, w, y, argmax, *, stride: int, padding_left: int, padding_right: int,
        dilation: int, pool_size: int, pool_stride: int, pool_padding: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx or None, gw (O, C, K), gb (O,)) for gy, given fwd's y and argmax."""
    conv_p = dict(stride=int(stride), padding_left=int(padding_left),
                  padding_right=int(padding_right), dilation=int(dilation))
    if not channels_last:
        masked = np.where(y > 0, gy, 0).astype(gy.dtype, copy=False)
        length = conv_out_length(x.shape[2], w.shape[2], *conv_p.values())
        (gz,) = maxpool.bwd(masked, argmax, length=length, kernel_size=int(pool_size),
                            stride=int(pool_stride), padding=int(pool_padding))
        return conv.bwd(gz, x, w, **conv_p, need_gx=bool(need_gx))
    return _backward_nlc(gy, x, w, y, argmax, *conv_p.values(), int(pool_size),
                         int(pool_stride), int(pool_padding), bool(need_gx))
