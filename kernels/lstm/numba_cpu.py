"""LSTM layer on the CPU: one BLAS product per step, NumPy's SIMD tanh for the gates, Numba
for the fused elementwise cell steps.

Strategy: the recurrence is a Python loop over t. Forward, per step: W_hh h_{t−1} for the
whole batch is one BLAS product (``np.matmul`` with ``out=``); the four gate
nonlinearities are ONE call of NumPy's vectorised tanh over the (N, 4H) pre-activations,
using σ(z) = ½ + ½·tanh(z/2) for i, f, o (the pre-activations of those gates are halved
first); an njit kernel then forms the gates and c_t = f ⊙ c_{t−1} + i ⊙ g and stores them;
h_t = o ⊙ tanh(c_t) is another vectorised tanh and product. Backward: tanh(c_t) of every
step is one vectorised tanh before the walk, so the walk has no transcendental at all: per
step an njit kernel fuses every elementwise line of the SPEC's backward (gh_t, gc_t, the
four gate gradients, gc_t ⊙ f_t), and one BLAS product carries gz_t W_hh to step t−1. The
products that do not depend on the recurrence (the input projection x W_ihᵀ + b_ih + b_hh
of every step; gx, gw_ih, gw_hh after the walk) are single BLAS products.

Memory: per-step slices [:, t] of the (N, T, ·) arrays are (N, ·) views with a row stride
of T·H or T·4H that BLAS and the kernels read and write directly; nothing is copied per
step. The njit kernels walk each batch row's units contiguously.

Why not one njit walk over all steps (prange over blocks of batch rows, W_hh h as axpy
sweeps over W_hhᵀ, Numba's scalar exp for the gates), as first written: it was more than
twice as slow (timings: benchmarks/NOTES.md, experiment 5 and item 27). Numba calls libm's
scalar exp (five per cell) where NumPy's tanh is SIMD, and a 32×64 by 64×256 BLAS product
beats the njit axpy sweeps; the per-step kernels are too small for prange. OpenBLAS runs
that per-step product on two threads (it is above its threading threshold); on a loaded
machine the threads' handshakes cost more than they save.

math: see SPEC (``kernels/lstm/__init__.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _cell_forward_step(a, c, cs, gates, t, half):
    """From a = tanh(s ⊙ z_t) (s = ½ for i, f, o and 1 for g), shape (N, 4H): the gates
    i, f, o = ½ + ½·a and g = a into gates[:, t]; c ← f ⊙ c + i ⊙ g, also into cs[:, t].
    ``half`` is ½ in the arrays' dtype (a Python 0.5 would turn float32 math into float64)."""
    N, G = a.shape
    H = G // 4
    for n in range(N):
        for j in range(H):
            i = half + half * a[n, j]
            f = half + half * a[n, H + j]
            g = a[n, 2 * H + j]
            o = half + half * a[n, 3 * H + j]
            c[n, j] = f * c[n, j] + i * g
            cs[n, t, j] = c[n, j]
            gates[n, t, j] = i
            gates[n, t, H + j] = f
            gates[n, t, 2 * H + j] = g
            gates[n, t, 3 * H + j] = o


@njit(cache=True)
def _cell_backward_step(ghs, gcs, gh, gc, tcs, cs, c0, gates, gz, t, one):
    """Step t of the SPEC's backward walk, elementwise: gh = gz_{t+1} W_hh and
    gc = gc_{t+1} ⊙ f_{t+1} arrive from step t+1; writes gz[:, t] and leaves gc_t ⊙ f_t in
    gc. tcs = tanh(cs); ``one`` is 1 in the arrays' dtype (a Python 1 would turn float32
    math into float64, a slower walk: benchmarks/NOTES.md, item 27)."""
    N, _, H = ghs.shape
    for n in range(N):
        for j in range(H):
            i = gates[n, t, j]
            f = gates[n, t, H + j]
            g = gates[n, t, 2 * H + j]
            o = gates[n, t, 3 * H + j]
            tc = tcs[n, t, j]
            cp = c0[n, j] if t == 0 else cs[n, t - 1, j]
            ght = ghs[n, t, j] + gh[n, j]
            gct = gcs[n, t, j] + ght * o * (one - tc * tc) + gc[n, j]
            gz[n, t, j] = gct * g * i * (one - i)
            gz[n, t, H + j] = gct * cp * f * (one - f)
            gz[n, t, 2 * H + j] = gct * i * (one - g * g)
            gz[n, t, 3 * H + j] = ght * tc * o * (one - o)
            gc[n, j] = gct * f


def fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """LSTM forward: ``(hs, cs (N, T, H), gates (N, T, 4H))``; see the reference for the API."""
    N, T, D = x.shape
    H = h0.shape[1]
    G = 4 * H
    # σ(z) = ½ + ½·tanh(z/2) for i, f, o and g = tanh(z): the gate nonlinearities are one
    # tanh of s ⊙ z, s = ½ for i, f, o and 1 for g. Halving is exact, so s goes into both
    # products instead of a pass over z per step.
    s = np.full(G, 0.5, dtype=x.dtype)
    s[2 * H : 3 * H] = 1
    p = (x.reshape(N * T, D) @ (w_ih.T * s)).reshape(N, T, G)  # BLAS, every step at once
    p += (b_ih + b_hh) * s
    w_hhT = np.ascontiguousarray(w_hh.T) * s  # (H, 4H)
    hs = np.empty((N, T, H), dtype=x.dtype)
    cs = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, G), dtype=x.dtype)
    a = np.empty((N, G), dtype=x.dtype)  # s ⊙ z_t, then its tanh
    c = c0.copy()  # c_{t-1}, updated in place
    tc = np.empty((N, H), dtype=x.dtype)
    half = x.dtype.type(0.5)
    h = h0
    for t in range(T):
        np.matmul(h, w_hhT, out=a)  # s ⊙ W_hh h_{t−1}
        a += p[:, t]
        np.tanh(a, out=a)
        _cell_forward_step(a, c, cs, gates, t, half)
        np.tanh(c, out=tc)
        h = hs[:, t]  # (N, H) view
        np.multiply(gates[:, t, 3 * H :], tc, out=h)  # h_t = o ⊙ tanh(c_t)
    return hs, cs, gates


def bwd(ghs, gcs, x, h0, c0, w_ih, w_hh, hs, cs, gates):
    """LSTM backward: ``(gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh)``; see the reference."""
    N, T, D = x.shape
    H = h0.shape[1]
    G = 4 * H
    tcs = np.tanh(cs)  # tanh(c_t) of every step, vectorised
    gz = np.empty((N, T, G), dtype=x.dtype)
    gh = np.zeros((N, H), dtype=x.dtype)  # gz_{t+1} W_hh
    gc = np.zeros((N, H), dtype=x.dtype)  # gc_{t+1} ⊙ f_{t+1}
    one = x.dtype.type(1)
    for t in range(T - 1, -1, -1):
        _cell_backward_step(ghs, gcs, gh, gc, tcs, cs, c0, gates, gz, t, one)
        np.matmul(gz[:, t], w_hh, out=gh)
    # [x_t, h_{t−1}] side by side, so that gw_ih and gw_hh are one product
    xh = np.empty((N, T, D + H), dtype=x.dtype)
    xh[:, :, :D] = x
    xh[:, 0, D:] = h0
    xh[:, 1:, D:] = hs[:, :-1]
    gz2 = gz.reshape(N * T, G)
    gx = (gz2 @ w_ih).reshape(N, T, D)
    gw = gz2.T @ xh.reshape(N * T, D + H)  # (4H, D + H)
    gb = gz2.sum(axis=0)
    return gx, gh, gc, gw[:, :D].copy(), gw[:, D:].copy(), gb, gb.copy()
