"""LSTM layer on the CPU: BLAS for the big products, Numba loops for the recurrence.

Parallel strategy: batch rows are independent through time, so one ``prange`` iteration
walks a block of ``_ROWS`` batch rows through all T steps (forward, or backward from
t = T−1 to 0); no synchronisation between steps. The products that do not depend on the
recurrence (the input projection x W_ihᵀ + b_ih + b_hh of every step, and gx, gw_ih, gw_hh
after the backward walk) are single matrix products in the Python wrappers (NumPy's BLAS),
outside njit.

Memory access: per step a block computes W_hh h_{t−1} as H axpy sweeps over the contiguous
rows of W_hhᵀ (H rows of 4H), each row applied to the block's rows while it is in L1, so the
innermost loop runs over unit strides with no reduction and vectorises without
reassociation (no fastmath); backward sweeps gz W_hh over the 4H contiguous rows of W_hh
the same way. W_hh is 64 KiB in float32 at H = 64: it streams from L2 once per step and
block, not once per row.

math: see SPEC (``kernels/lstm/__init__.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.rnn.numba_cpu import fast_tanh

__all__ = ["fwd", "bwd"]

#: Batch rows per prange iteration: each row of W_hh(ᵀ) is loaded once for this many rows.
_ROWS = 4


@njit(cache=True)
def _sigmoid(a):
    """σ(a) in float64 from e = exp(−|a|), so exp never overflows."""
    e = np.exp(-abs(float(a)))
    s = 1 / (1 + e)
    return s if a >= 0 else e * s


@njit(cache=True, parallel=True)
def _forward_walk(p, h0, c0, w_hhT, hs, cs, gates):
    N, T, G = p.shape
    H = G // 4
    R = _ROWS
    for blk in prange((N + R - 1) // R):
        n0 = blk * R
        rows = min(R, N - n0)
        h = np.empty((R, H), dtype=p.dtype)  # h_{t-1} of the block's rows
        c = np.empty((R, H), dtype=p.dtype)  # c_{t-1}
        z = np.empty((R, G), dtype=p.dtype)  # pre-activations z_t
        for r in range(rows):
            h[r] = h0[n0 + r]
            c[r] = c0[n0 + r]
        for t in range(T):
            for r in range(rows):
                z[r] = p[n0 + r, t]
            for k in range(H):
                wk = w_hhT[k]
                for r in range(rows):
                    hk = h[r, k]
                    zr = z[r]
                    for j in range(G):
                        zr[j] += hk * wk[j]
            for r in range(rows):
                n = n0 + r
                for j in range(H):
                    i = _sigmoid(z[r, j])
                    f = _sigmoid(z[r, H + j])
                    g = fast_tanh(z[r, 2 * H + j])
                    o = _sigmoid(z[r, 3 * H + j])
                    c[r, j] = f * c[r, j] + i * g
                    h[r, j] = o * fast_tanh(c[r, j])
                    gates[n, t, j] = i
                    gates[n, t, H + j] = f
                    gates[n, t, 2 * H + j] = g
                    gates[n, t, 3 * H + j] = o
                hs[n, t] = h[r]
                cs[n, t] = c[r]


@njit(cache=True, parallel=True)
def _backward_walk(ghs, gcs, c0, w_hh, cs, gates, gz, gh0, gc0):
    N, T, H = ghs.shape
    R = _ROWS
    for blk in prange((N + R - 1) // R):
        n0 = blk * R
        rows = min(R, N - n0)
        gh_next = np.zeros((R, H), dtype=ghs.dtype)  # gz_{t+1} W_hh
        gc_next = np.zeros((R, H), dtype=ghs.dtype)  # gc_{t+1} ⊙ f_{t+1}
        for t in range(T - 1, -1, -1):
            for r in range(rows):
                n = n0 + r
                for j in range(H):
                    i = gates[n, t, j]
                    f = gates[n, t, H + j]
                    g = gates[n, t, 2 * H + j]
                    o = gates[n, t, 3 * H + j]
                    tc = fast_tanh(cs[n, t, j])
                    cp = c0[n, j] if t == 0 else cs[n, t - 1, j]
                    gh = ghs[n, t, j] + gh_next[r, j]
                    gc = gcs[n, t, j] + gh * o * (1 - tc * tc) + gc_next[r, j]
                    gz[n, t, j] = gc * g * i * (1 - i)
                    gz[n, t, H + j] = gc * cp * f * (1 - f)
                    gz[n, t, 2 * H + j] = gc * i * (1 - g * g)
                    gz[n, t, 3 * H + j] = gh * tc * o * (1 - o)
                    gc_next[r, j] = gc * f
                gh_next[r] = 0
            for j in range(4 * H):
                wj = w_hh[j]
                for r in range(rows):
                    gzj = gz[n0 + r, t, j]
                    gr = gh_next[r]
                    for k in range(H):
                        gr[k] += gzj * wj[k]
        for r in range(rows):
            gh0[n0 + r] = gh_next[r]
            gc0[n0 + r] = gc_next[r]


def fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """LSTM forward: ``(hs, cs (N, T, H), gates (N, T, 4H))``; see the reference for the API."""
    N, T, D = x.shape
    H = h0.shape[1]
    p = (x.reshape(N * T, D) @ w_ih.T).reshape(N, T, 4 * H)  # BLAS
    p += b_ih + b_hh
    hs = np.empty((N, T, H), dtype=x.dtype)
    cs = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 4 * H), dtype=x.dtype)
    _forward_walk(p, h0, c0, np.ascontiguousarray(w_hh.T), hs, cs, gates)
    return hs, cs, gates


def bwd(ghs, gcs, x, h0, c0, w_ih, w_hh, hs, cs, gates):
    """LSTM backward: ``(gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    N, T, D = x.shape
    H = h0.shape[1]
    gz = np.empty((N, T, 4 * H), dtype=x.dtype)
    gh0 = np.empty((N, H), dtype=x.dtype)
    gc0 = np.empty((N, H), dtype=x.dtype)
    _backward_walk(ghs, gcs, c0, w_hh, cs, gates, gz, gh0, gc0)
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H)
    gz2 = gz.reshape(N * T, 4 * H)
    gx = (gz2 @ w_ih).reshape(N, T, D)
    gw_ih = gz2.T @ x.reshape(N * T, D)
    gw_hh = gz2.T @ hprev.reshape(N * T, H)
    gb = gz2.sum(axis=0)
    return gx, gh0, gc0, gw_ih, gw_hh, gb, gb.copy()
