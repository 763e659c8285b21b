"""GRU layer in NumPy, written for clarity: the definition and the test oracle.

Vectorised over the batch, a plain Python loop over time. Math: see SPEC
(``kernels/gru/__init__.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^(−a)), computed from e = exp(−|a|) so that exp never overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _check(x, h0, w_ih, w_hh, b_ih, b_hh) -> None:
    if x.ndim != 3 or h0.ndim != 2 or w_ih.ndim != 2 or w_hh.ndim != 2:
        raise ValueError(
            f"gru: expected x (N, T, D), h0 (N, H), w_ih (3H, D), w_hh (3H, H); got x "
            f"{x.shape}, h0 {h0.shape}, w_ih {w_ih.shape}, w_hh {w_hh.shape}"
        )
    N, T, D = x.shape
    H = h0.shape[1]
    if (
        h0.shape[0] != N
        or w_ih.shape != (3 * H, D)
        or w_hh.shape != (3 * H, H)
        or b_ih.shape != (3 * H,)
        or b_hh.shape != (3 * H,)
    ):
        raise ValueError(
            f"gru: inconsistent shapes x {x.shape}, h0 {h0.shape}, w_ih {w_ih.shape}, "
            f"w_hh {w_hh.shape}, b_ih {b_ih.shape}, b_hh {b_hh.shape} "
            f"(want x (N, T, D), h0 (N, H), w_ih (3H, D), w_hh (3H, H), biases (3H,))"
        )
    if T < 1:
        raise ValueError(f"gru: need at least one time step, got x {x.shape}")


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """GRU forward over all T steps.

    Parameters
    ----------
    x : (N, T, D) array
    h0 : (N, H) array
    w_ih : (3H, D) array, gates r, z, n
    w_hh : (3H, H) array
    b_ih, b_hh : (3H,) arrays

    Returns
    -------
    hs : (N, T, H) array, hs[:, t] = h_{t+1}
    gates : (N, T, 4H) array, [r, z, n, W_hn h_{t-1} + b_hn] per step
    """
    _check(x, h0, w_ih, w_hh, b_ih, b_hh)
    N, T, _ = x.shape
    H = h0.shape[1]
    p = x @ w_ih.T + b_ih  # (N, T, 3H) input projection of every step
    hs = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 4 * H), dtype=x.dtype)
    h = h0
    for t in range(T):
        q = h @ w_hh.T + b_hh  # (N, 3H)
        r = sigmoid(p[:, t, :H] + q[:, :H])
        z = sigmoid(p[:, t, H : 2 * H] + q[:, H : 2 * H])
        m = q[:, 2 * H :]
        n = np.tanh(p[:, t, 2 * H :] + r * m)
        h = (1 - z) * n + z * h
        hs[:, t] = h
        gates[:, t] = np.concatenate([r, z, n, m], axis=1)
    return hs, gates


def bwd(ghs, x, h0, w_ih, w_hh, hs, gates):
    """Gradients of a GRU layer (the backward walk of the SPEC).

    Parameters
    ----------
    ghs : (N, T, H) array, upstream gradient of hs
    x, h0, w_ih, w_hh : the inputs of ``fwd``
    hs, gates : the outputs of ``fwd``

    Returns
    -------
    (gx (N, T, D), gh0 (N, H), gw_ih (3H, D), gw_hh (3H, H), gb_ih (3H,), gb_hh (3H,))
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    r, z, n, m = (gates[..., i * H : (i + 1) * H] for i in range(4))  # each (N, T, H)
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H): h_{t-1}
    gp = np.empty((N, T, 3 * H), dtype=x.dtype)  # gradient of the input projection
    gq = np.empty((N, T, 3 * H), dtype=x.dtype)  # gradient of the hidden projection
    g = np.zeros((N, H), dtype=x.dtype)  # gradient flowing back from step t+1
    for t in range(T - 1, -1, -1):
        g = g + ghs[:, t]
        ga_n = g * (1 - z[:, t]) * (1 - n[:, t] ** 2)
        ga_z = g * (hprev[:, t] - n[:, t]) * z[:, t] * (1 - z[:, t])
        ga_r = ga_n * m[:, t] * r[:, t] * (1 - r[:, t])
        gp[:, t] = np.concatenate([ga_r, ga_z, ga_n], axis=1)
        gq[:, t] = np.concatenate([ga_r, ga_z, ga_n * r[:, t]], axis=1)
        g = z[:, t] * g + gq[:, t] @ w_hh
    gx = gp @ w_ih
    gw_ih = np.einsum("ntg,ntd->gd", gp, x)
    gw_hh = np.einsum("ntg,ntk->gk", gq, hprev)
    gb_ih = gp.sum(axis=(0, 1))
    gb_hh = gq.sum(axis=(0, 1))
    return gx, g, gw_ih, gw_hh, gb_ih, gb_hh
