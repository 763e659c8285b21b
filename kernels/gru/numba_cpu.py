"""GRU layer on the CPU: BLAS for the big products, Numba loops for the recurrence.

Parallel strategy: batch rows are independent through time, so one ``prange`` iteration
walks one batch row n through all T steps (forward, or backward from t = T−1 to 0); no
synchronisation between steps. The products that do not depend on the recurrence (the
input projection p = x W_ihᵀ + b_ih of every step, and gx, gw_ih, gw_hh after the backward
walk) are single matrix products in the Python wrappers (NumPy's BLAS), outside njit.

Memory access: per step a row computes q = W_hh h + b_hh as axpy sweeps over the contiguous
rows of W_hhᵀ (H rows of 3H), four rows per sweep so that q is loaded and stored once per
four multiply-adds; the innermost loop runs over unit strides with no reduction and
vectorises without reassociation (no fastmath). The backward sweep g ← z ⊙ g + gq W_hh runs
over the contiguous rows of W_hh the same way. W_hh (48 KiB in float32 at H = 64) stays in
L1/L2 for a whole row. Grouping four rows of W per sweep made the forward walk faster than
one row per sweep (benchmarks/NOTES.md, item 27).

Activations: without a vector math library the scalar exp/tanh calls cost as much as the
products, so σ is 1/(1 + e) or e/(1 + e) in the input precision (expf for float32), and tanh
is (1 − e)/(1 + e) with e = exp(−2|a|) in float64 (libm's tanh is slower than exp here);
below |a| = 10⁻³, where 1 − e cancels, np.tanh (relative error ≤ 3·10⁻¹⁴ overall).

math: see SPEC (``kernels/gru/__init__.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _sigmoid(a, one):
    """σ(a) from e = exp(−|a|) (no overflow); ``one`` is 1 in the input precision."""
    e = np.exp(-abs(a))
    numerator = one if a >= 0 else e
    return numerator / (one + e)


@njit(cache=True)
def _tanh(a):
    """tanh(a) through one float64 exp; np.tanh near 0, where 1 − exp(−2|a|) cancels."""
    x = abs(np.float64(a))
    if x < 1e-3:
        return np.tanh(np.float64(a))
    e = np.exp(-2.0 * x)
    return np.copysign((1.0 - e) / (1.0 + e), a)


@njit(cache=True, parallel=True)
def _forward_walk(p, h0, w_hhT, b_hh, hs, gates):
    N, T, H3 = p.shape
    H = H3 // 3
    for n in prange(N):
        h = h0[n].copy()  # (H,) h_{t-1}, updated in place
        q = np.empty(H3, dtype=p.dtype)  # (3H,) W_hh h + b_hh
        one = p.dtype.type(1)
        for t in range(T):
            q[:] = b_hh
            k4 = H - H % 4
            for k in range(0, k4, 4):  # four rows of W_hhᵀ per sweep over q
                a0, a1, a2, a3 = h[k], h[k + 1], h[k + 2], h[k + 3]
                w0, w1, w2, w3 = w_hhT[k], w_hhT[k + 1], w_hhT[k + 2], w_hhT[k + 3]
                for j in range(H3):
                    q[j] += (w0[j] * a0 + w1[j] * a1) + (w2[j] * a2 + w3[j] * a3)
            for k in range(k4, H):
                hk = h[k]
                wk = w_hhT[k]
                for j in range(H3):
                    q[j] += wk[j] * hk
            for j in range(H):
                r = _sigmoid(p[n, t, j] + q[j], one)
                z = _sigmoid(p[n, t, H + j] + q[H + j], one)
                m = q[2 * H + j]
                c = _tanh(p[n, t, 2 * H + j] + r * m)
                h[j] = (1.0 - z) * c + z * h[j]  # h[j] is read by this j only
                hs[n, t, j] = h[j]
                gates[n, t, j] = r
                gates[n, t, H + j] = z
                gates[n, t, 2 * H + j] = c
                gates[n, t, 3 * H + j] = m


@njit(cache=True, parallel=True)
def _backward_walk(ghs, h0, w_hh, hs, gates, gp, gq, gh0):
    N, T, H = ghs.shape
    for n in prange(N):
        g = np.zeros(H, dtype=ghs.dtype)  # gradient reaching h_t
        for t in range(T - 1, -1, -1):
            hprev = h0[n] if t == 0 else hs[n, t - 1]
            for j in range(H):
                gj = g[j] + ghs[n, t, j]
                r = gates[n, t, j]
                z = gates[n, t, H + j]
                c = gates[n, t, 2 * H + j]
                m = gates[n, t, 3 * H + j]
                ga_n = gj * (1.0 - z) * (1.0 - c * c)
                ga_z = gj * (hprev[j] - c) * z * (1.0 - z)
                ga_r = ga_n * m * r * (1.0 - r)
                gp[n, t, j] = ga_r
                gp[n, t, H + j] = ga_z
                gp[n, t, 2 * H + j] = ga_n
                gq[n, t, j] = ga_r
                gq[n, t, H + j] = ga_z
                gq[n, t, 2 * H + j] = ga_n * r
                g[j] = z * gj  # the direct path z ⊙ g; the W_hh path is added below
            gqt = gq[n, t]
            i4 = 3 * H - (3 * H) % 4
            for i in range(0, i4, 4):  # four rows of W_hh per sweep over g
                a0, a1, a2, a3 = gqt[i], gqt[i + 1], gqt[i + 2], gqt[i + 3]
                w0, w1, w2, w3 = w_hh[i], w_hh[i + 1], w_hh[i + 2], w_hh[i + 3]
                for k in range(H):
                    g[k] += (a0 * w0[k] + a1 * w1[k]) + (a2 * w2[k] + a3 * w3[k])
            for i in range(i4, 3 * H):
                gi = gqt[i]
                wi = w_hh[i]
                for k in range(H):
                    g[k] += gi * wi[k]
        gh0[n] = g


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """GRU forward: ``(hs (N, T, H), gates (N, T, 4H))``; see the reference for the API."""
    N, T, D = x.shape
    H = h0.shape[1]
    p = np.ascontiguousarray(x).reshape(N * T, D) @ w_ih.T  # BLAS, (N*T, 3H)
    p += b_ih  # in place: no second (N*T, 3H) temporary
    hs = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 4 * H), dtype=x.dtype)
    w_hhT = np.ascontiguousarray(w_hh.T)  # (H, 3H)
    _forward_walk(
        p.reshape(N, T, 3 * H),
        np.ascontiguousarray(h0),
        w_hhT,
        np.ascontiguousarray(b_hh),
        hs,
        gates,
    )
    return hs, gates


def bwd(ghs, x, h0, w_ih, w_hh, hs, gates):
    """GRU backward: ``(gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    N, T, D = x.shape
    H = h0.shape[1]
    gp = np.empty((N, T, 3 * H), dtype=x.dtype)
    gq = np.empty((N, T, 3 * H), dtype=x.dtype)
    gh0 = np.empty((N, H), dtype=x.dtype)
    h0, hs = np.ascontiguousarray(h0), np.ascontiguousarray(hs)
    _backward_walk(
        np.ascontiguousarray(ghs),
        h0,
        np.ascontiguousarray(w_hh),
        hs,
        np.ascontiguousarray(gates),
        gp,
        gq,
        gh0,
    )
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H)
    gp2 = gp.reshape(N * T, 3 * H)
    gq2 = gq.reshape(N * T, 3 * H)
    gx = (gp2 @ w_ih).reshape(N, T, D)
    gw_ih = gp2.T @ np.ascontiguousarray(x).reshape(N * T, D)
    gw_hh = gq2.T @ hprev.reshape(N * T, H)
    return gx, gh0, gw_ih, gw_hh, gp2.sum(axis=0), gq2.sum(axis=0)
