"""tanh-RNN layer in NumPy, written for clarity: the definition and the test oracle.

Vectorised over the batch, a plain Python loop over time. Math: see SPEC
(``kernels/rnn/__init__.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def _check(x, h0, w_ih, w_hh, b_ih, b_hh) -> None:
    if x.ndim != 3 or h0.ndim != 2 or w_ih.ndim != 2 or w_hh.ndim != 2:
        raise ValueError(
            f"rnn: expected x (N, T, D), h0 (N, H), w_ih (H, D), w_hh (H, H); got x "
            f"{x.shape}, h0 {h0.shape}, w_ih {w_ih.shape}, w_hh {w_hh.shape}"
        )
    N, T, D = x.shape
    H = h0.shape[1]
    if (
        h0.shape[0] != N
        or w_ih.shape != (H, D)
        or w_hh.shape != (H, H)
        or b_ih.shape != (H,)
        or b_hh.shape != (H,)
    ):
        raise ValueError(
            f"rnn: inconsistent shapes x {x.shape}, h0 {h0.shape}, w_ih {w_ih.shape}, "
            f"w_hh {w_hh.shape}, b_ih {b_ih.shape}, b_hh {b_hh.shape} "
            f"(want x (N, T, D), h0 (N, H), w_ih (H, D), w_hh (H, H), biases (H,))"
        )
    if T < 1:
        raise ValueError(f"rnn: need at least one time step, got x {x.shape}")


def fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """tanh-RNN forward over all T steps.

    Parameters
    ----------
    x : (N, T, D) array
    h0 : (N, H) array
    w_ih : (H, D) array
    w_hh : (H, H) array
    b_ih, b_hh : (H,) arrays

    Returns
    -------
    hs : (N, T, H) array, hs[:, t] = h_{t+1}
    """
    _check(x, h0, w_ih, w_hh, b_ih, b_hh)
    N, T, _ = x.shape
    H = h0.shape[1]
    p = x @ w_ih.T + b_ih + b_hh  # (N, T, H) input projection of every step, both biases
    hs = np.empty((N, T, H), dtype=x.dtype)
    h = h0
    for t in range(T):
        h = np.tanh(p[:, t] + h @ w_hh.T)
        hs[:, t] = h
    return hs


def bwd(ghs, x, h0, w_ih, w_hh, hs):
    """Gradients of a tanh-RNN layer (the backward walk of the SPEC).

    Parameters
    ----------
    ghs : (N, T, H) array, upstream gradient of hs
    x, h0, w_ih, w_hh : the inputs of ``fwd``
    hs : the output of ``fwd``

    Returns
    -------
    (gx (N, T, D), gh0 (N, H), gw_ih (H, D), gw_hh (H, H), gb_ih (H,), gb_hh (H,))
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H): h_{t-1}
    ga = np.empty((N, T, H), dtype=x.dtype)  # gradient of the pre-activation a_t
    g = np.zeros((N, H), dtype=x.dtype)  # gradient flowing back from step t+1
    for t in range(T - 1, -1, -1):
        ga[:, t] = (g + ghs[:, t]) * (1 - hs[:, t] ** 2)
        g = ga[:, t] @ w_hh
    gx = ga @ w_ih
    gw_ih = np.einsum("ntj,ntd->jd", ga, x)
    gw_hh = np.einsum("ntj,ntk->jk", ga, hprev)
    gb_ih = ga.sum(axis=(0, 1))
    return gx, g, gw_ih, gw_hh, gb_ih, gb_ih.copy()
