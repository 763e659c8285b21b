"""tanh-RNN layer on the CPU: one BLAS product per step, NumPy's SIMD tanh, Numba for the
fused elementwise backward step.

Strategy: the recurrence is a Python loop over t. Per step, W_hh h_{t−1} for the whole
batch is one BLAS product (``np.matmul`` with ``out=``, straight into hs[:, t]), and the
activation is NumPy's vectorised tanh, in place. Backward, an njit kernel fuses
ga_t = (g_t + ghs_t) ⊙ (1 − h_t²) over the batch, and one BLAS product carries
g_{t−1} = ga_t W_hh to the step before. The products that do not depend on the recurrence
(the input projection x W_ihᵀ + b_ih + b_hh of every step; gx, gw_ih, gw_hh after the walk)
are single BLAS products.

Memory: hs[:, t], ga[:, t] are (N, H) views with row stride T·H, which BLAS reads and
writes directly (unit stride along H); nothing is copied per step.

Why not one njit walk over all steps (prange over blocks of batch rows, W_hh h as axpy
sweeps, Numba's scalar tanh), as first written: it was about twice as slow (timings:
benchmarks/NOTES.md, item 27). Numba calls libm's scalar tanh where NumPy's is SIMD, and a
32×64 by 64×64 BLAS product beats the njit axpy sweeps; the per-step kernels are too small
for prange.

math: see SPEC (``kernels/rnn/__init__.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _tanh_backward_step(ghs, g, hs, ga, t, one):
    """ga[:, t] = (g + ghs[:, t]) ⊙ (1 − hs[:, t]²): through h_t = tanh(a_t). ``one`` is 1
    in the arrays' dtype (a Python 1 would turn float32 math into float64)."""
    N, _, H = ghs.shape
    for n in range(N):
        for j in range(H):
            h = hs[n, t, j]
            ga[n, t, j] = (g[n, j] + ghs[n, t, j]) * (one - h * h)


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """tanh-RNN forward: ``hs (N, T, H)``; see the reference for the API."""
    N, T, D = x.shape
    H = h0.shape[1]
    p = (x.reshape(N * T, D) @ w_ih.T).reshape(N, T, H)  # BLAS, every step at once
    p += b_ih + b_hh
    w_hhT = np.ascontiguousarray(w_hh.T)
    hs = np.empty((N, T, H), dtype=x.dtype)
    h = h0
    for t in range(T):
        a = hs[:, t]  # (N, H) view: a_t, then h_t in place
        np.matmul(h, w_hhT, out=a)  # W_hh h_{t−1}
        a += p[:, t]
        np.tanh(a, out=a)
        h = a
    return hs


def bwd(ghs, x, h0, w_ih, w_hh, hs):
    """tanh-RNN backward: ``(gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    N, T, D = x.shape
    H = h0.shape[1]
    ga = np.empty((N, T, H), dtype=x.dtype)
    g = np.zeros((N, H), dtype=x.dtype)  # gradient reaching h_t from step t+1
    one = x.dtype.type(1)
    for t in range(T - 1, -1, -1):
        _tanh_backward_step(ghs, g, hs, ga, t, one)
        np.matmul(ga[:, t], w_hh, out=g)  # g_{t−1} = ga_t W_hh
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H)
    ga2 = ga.reshape(N * T, H)
    gx = (ga2 @ w_ih).reshape(N, T, D)
    gw_ih = ga2.T @ x.reshape(N * T, D)
    gw_hh = ga2.T @ hprev.reshape(N * T, H)
    gb = ga2.sum(axis=0)
    return gx, g, gw_ih, gw_hh, gb, gb.copy()
