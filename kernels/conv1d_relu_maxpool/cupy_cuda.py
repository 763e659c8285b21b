"""conv1d_relu_maxpool on the GPU: one kernel forward, the pool's backward and the ReLU
mask in one kernel backward (CUDA C and thread -> index maps: cuda_source.py).

Forward, ``conv1d_relu_maxpool_fwd``: conv1d_fwd's tiled implicit GEMM (the same tiles, the
same reduction order, so the pre-activations are bitwise conv1d_relu's) whose columns are
the pool windows' conv positions, window after window; the epilogue adds the bias, applies
the ReLU and pools each block's tile through shared memory, writing y and argmax only. The
full-length activation is never written or re-read, and the backward needs only y and
argmax (SPEC). With Sp = Kp (the network's pool) every conv position is computed once; with
overlapping windows (Sp < Kp) the shared positions are computed once per window, and
positions in no window (Sp > Kp) not at all. A pool wider than a block's column tile
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
from kernels._gemm_cuda import i32, tile, x_strides
from kernels._shapes import conv_out_length, pool_out_length, swap_layout
from kernels.conv1d import cupy_cuda as conv
from kernels.conv1d_relu import cupy_cuda as conv_relu
from kernels.conv1d_relu_maxpool.cuda_source import KERNELS, SOURCE
from kernels.maxpool1d import cupy_cuda as maxpool

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

OP = "conv1d_relu_maxpool"


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
    if N * max(L, Lc) * max(C, O) >= 2**31:
        raise ValueError(f"{OP} (cupy): N={N}, C={C}, L={L}, O={O} too large for int32 "
                         "offsets")
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
