"""tanh-RNN layer on the CPU: BLAS for the big products, Numba loops for the recurrence.

Parallel strategy: batch rows are independent through time, so one ``prange`` iteration
walks a block of ``_ROWS`` batch rows through all T steps (forward, or backward from
t = T−1 to 0); no synchronisation between steps. The products that do not depend on the
recurrence (the input projection x W_ihᵀ + b_ih + b_hh of every step, and gx, gw_ih, gw_hh
after the backward walk) are single matrix products in the Python wrappers (NumPy's BLAS),
outside njit.

Memory access: per step a block computes W_hh h_{t−1} as H axpy sweeps over the contiguous
rows of W_hhᵀ, each row applied to the block's rows while it is in L1, so the innermost loop
runs over unit strides with no reduction and vectorises without reassociation (no
fastmath); backward sweeps ga W_hh over the contiguous rows of W_hh the same way.

math: see SPEC (``kernels/rnn/__init__.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd"]

#: Batch rows per prange iteration: each row of W_hh(ᵀ) is loaded once for this many rows.
_ROWS = 4


@njit(cache=True)
def fast_tanh(a):
    """tanh(a) in float64 from one exp: (1 − e)/(1 + e) with e = exp(−2|a|), and the odd
    Taylor polynomial to a⁹ for |a| < 0.05, where 1 − e would cancel; relative error about
    1e-15 everywhere. libm's scalar tanh, which Numba calls for np.tanh, took 6x as long
    (35 ns against 5 ns a call), and it was most of the recurrence's time."""
    x = abs(float(a))
    if x < 0.05:
        x2 = x * x
        t = x * (1 + x2 * (-1 / 3 + x2 * (2 / 15 + x2 * (-17 / 315 + x2 * (62 / 2835)))))
    else:
        e = np.exp(-2 * x)
        t = (1 - e) / (1 + e)
    return t if a >= 0 else -t


@njit(cache=True, parallel=True)
def _forward_walk(p, h0, w_hhT, hs):
    N, T, H = p.shape
    R = _ROWS
    for blk in prange((N + R - 1) // R):
        n0 = blk * R
        rows = min(R, N - n0)
        h = np.empty((R, H), dtype=p.dtype)  # h_{t-1} of the block's rows
        a = np.empty((R, H), dtype=p.dtype)  # pre-activations a_t
        for r in range(rows):
            h[r] = h0[n0 + r]
        for t in range(T):
            for r in range(rows):
                a[r] = p[n0 + r, t]
            for k in range(H):
                wk = w_hhT[k]
                for r in range(rows):
                    hk = h[r, k]
                    ar = a[r]
                    for j in range(H):
                        ar[j] += hk * wk[j]
            for r in range(rows):
                for j in range(H):
                    h[r, j] = fast_tanh(a[r, j])
                hs[n0 + r, t] = h[r]


@njit(cache=True, parallel=True)
def _backward_walk(ghs, w_hh, hs, ga, gh0):
    N, T, H = ghs.shape
    R = _ROWS
    for blk in prange((N + R - 1) // R):
        n0 = blk * R
        rows = min(R, N - n0)
        g = np.zeros((R, H), dtype=ghs.dtype)  # gradient flowing back from step t+1
        for t in range(T - 1, -1, -1):
            for r in range(rows):
                n = n0 + r
                for j in range(H):
                    h = hs[n, t, j]
                    ga[n, t, j] = (g[r, j] + ghs[n, t, j]) * (1 - h * h)
                g[r] = 0
            for j in range(H):
                wj = w_hh[j]
                for r in range(rows):
                    gaj = ga[n0 + r, t, j]
                    gr = g[r]
                    for k in range(H):
                        gr[k] += gaj * wj[k]
        for r in range(rows):
            gh0[n0 + r] = g[r]


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """tanh-RNN forward: ``hs (N, T, H)``; see the reference for the API."""
    N, T, D = x.shape
    H = h0.shape[1]
    p = (x.reshape(N * T, D) @ w_ih.T).reshape(N, T, H)  # BLAS
    p += b_ih + b_hh
    hs = np.empty((N, T, H), dtype=x.dtype)
    _forward_walk(p, h0, np.ascontiguousarray(w_hh.T), hs)
    return hs


def bwd(ghs, x, h0, w_ih, w_hh, hs):
    """tanh-RNN backward: ``(gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    N, T, D = x.shape
    H = h0.shape[1]
    ga = np.empty((N, T, H), dtype=x.dtype)
    gh0 = np.empty((N, H), dtype=x.dtype)
    _backward_walk(ghs, w_hh, hs, ga, gh0)
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H)
    ga2 = ga.reshape(N * T, H)
    gx = (ga2 @ w_ih).reshape(N, T, D)
    gw_ih = ga2.T @ x.reshape(N * T, D)
    gw_hh = ga2.T @ hprev.reshape(N * T, H)
    gb = ga2.sum(axis=0)
    return gx, gh0, gw_ih, gw_hh, gb, gb.copy()
