"""conv1d on the CPU: Numba packing loops around one BLAS matrix product per product.

Strategy (SPEC's matrix form): njit loops pack the padded input into columns
X̂[(c,k), (n,t)] (``_im2col``, one prange iteration fills the row of one (c, k)), the Python
wrapper multiplies with NumPy's BLAS (``W2 @ X̂``, ``G @ X̂ᵀ``, ``W2ᵀ @ G``), and njit loops
move the results between the (O, N·Lo) product layout and the (N, O, Lo) array layout:
``_to_ncl`` (one iteration: sample n; adds the bias, optionally applies ReLU) and
``_to_rows`` (one iteration: channel o; optionally masks by y > 0, also sums gb[o]).
``_col2im`` (one iteration: input channel c) adds each tap's column back onto the
positions it read; a channel's taps are all in one iteration, so there is no race.
Memory: every loop walks rows contiguously; the packing reads x[n, c, :] with stride S.
The columns buffer of backward is reused for gX̂ (``out=``), so backward allocates
X̂, G and the three gradients only.

Why BLAS: at the article's shapes, float32, 2 threads, forward + backward took
(N=32: 32->64 ch, L=64, K=3 | 64->128 ch, L=31, K=3; N=256: same two layers)
    pure njit loops (prange over n, o; 4-channel register tile)   BENCH_LOOPS
    im2col + BLAS (this file)                                     BENCH_BLAS
    torch.nn.functional.conv1d, same process                      BENCH_TORCH

math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "forward", "backward"]


@njit(cache=True, parallel=True)
def _im2col(x, K, S, pl, d, Lo):
    """cols[c·K+k, n·Lo+t] = xp[n, c, t·S+k·d] (zero in the padding); (C·K, N·Lo)."""
    N, C, L = x.shape
    cols = np.empty((C * K, N * Lo), dtype=x.dtype)
    for ck in prange(C * K):
        c = ck // K
        k = ck - c * K
        for n in range(N):
            row = n * Lo
            for t in range(Lo):
                i = t * S + k * d - pl
                cols[ck, row + t] = x[n, c, i] if 0 <= i < L else 0.0
    return cols


@njit(cache=True, parallel=True)
def _to_ncl(Y2, b, N, Lo, relu):
    """y[n, o, t] = Y2[o, n·Lo+t] + b[o], then max(·, 0) when relu; (N, O, Lo)."""
    O = Y2.shape[0]
    y = np.empty((N, O, Lo), dtype=Y2.dtype)
    for n in prange(N):
        for o in range(O):
            bo = b[o]
            for t in range(Lo):
                v = Y2[o, n * Lo + t] + bo
                y[n, o, t] = max(v, 0.0) if relu else v
    return y


@njit(cache=True, parallel=True)
def _to_rows(gy, y, relu):
    """G[o, n·Lo+t] = gy[n, o, t]·[y[n, o, t] > 0 or not relu] and gb[o] = Σ G[o, :].

    ``y`` is only read when relu is true (callers without a mask pass gy again)."""
    N, O, Lo = gy.shape
    G = np.empty((O, N * Lo), dtype=gy.dtype)
    gb = np.empty(O, dtype=gy.dtype)
    for o in prange(O):
        s = 0.0
        for n in range(N):
            for t in range(Lo):
                g = gy[n, o, t]
                if relu and not y[n, o, t] > 0.0:
                    g = 0.0
                G[o, n * Lo + t] = g
                s += g
        gb[o] = s
    return G, gb


@njit(cache=True, parallel=True)
def _col2im(gcols, N, L, K, S, pl, d, Lo):
    """gx[n, c, j] = Σ_k gcols[c·K+k, n·Lo+t] over t·S+k·d = j+pl; (N, C, L)."""
    C = gcols.shape[0] // K
    gx = np.empty((N, C, L), dtype=gcols.dtype)
    for c in prange(C):
        for n in range(N):
            gx[n, c, :] = 0.0
            row = n * Lo
            for k in range(K):
                ck = c * K + k
                for t in range(Lo):
                    i = t * S + k * d - pl
                    if 0 <= i < L:
                        gx[n, c, i] += gcols[ck, row + t]
    return gx


def _lo(L, K, stride, padding_left, padding_right, dilation):
    return (L + padding_left + padding_right - dilation * (K - 1) - 1) // stride + 1


def forward(x, w, b, stride, padding_left, padding_right, dilation, relu):
    """conv1d (then ReLU when ``relu``) through im2col + BLAS; shared with conv1d_relu."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = _lo(L, K, stride, padding_left, padding_right, dilation)
    cols = _im2col(x, K, stride, padding_left, dilation, Lo)     # (C·K, N·Lo)
    Y2 = w.reshape(O, C * K) @ cols                               # (O, N·Lo)
    bias = np.zeros(O, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    return _to_ncl(Y2, bias, N, Lo, relu)                         # (N, O, Lo)


def backward(gy, x, w, y, stride, padding_left, padding_right, dilation):
    """conv1d's (gx, gw, gb) for gy, masked by y > 0 when y is given (conv1d_relu)."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    N, C, L = x.shape
    O, _, K = w.shape
    Lo = gy.shape[2]
    relu = y is not None
    mask = np.ascontiguousarray(y) if relu else gy                # gy: unread stand-in
    G, gb = _to_rows(gy, mask, relu)                              # (O, N·Lo), (O,)
    cols = _im2col(x, K, stride, padding_left, dilation, Lo)      # (C·K, N·Lo)
    w2 = w.reshape(O, C * K)
    gw = (G @ cols.T).reshape(O, C, K)
    gcols = np.matmul(w2.T, G, out=cols)                          # reuse the columns buffer
    gx = _col2im(gcols, N, L, K, stride, padding_left, dilation, Lo)
    return gx, gw, gb


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int):
    """y (N, O, Lo) = conv1d(x (N, C, L), w (O, C, K), b (O,) | None); see SPEC."""
    return forward(x, w, b, int(stride), int(padding_left), int(padding_right),
                   int(dilation), False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int):
    """(gx (N, C, L), gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo)."""
    return backward(gy, x, w, None, int(stride), int(padding_left), int(padding_right),
                    int(dilation))
