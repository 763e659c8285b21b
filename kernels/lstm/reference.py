"""LSTM layer in NumPy, written for clarity: the definition and the test oracle.

Vectorised over the batch, a plain Python loop over time. Math: see SPEC
(``kernels/lstm/__init__.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^(−a)), computed from e = exp(−|a|) so that exp never overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _check(x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> None:
    if x.ndim != 3 or h0.ndim != 2 or c0.ndim != 2 or w_ih.ndim != 2 or w_hh.ndim != 2:
        raise ValueError(
            f"lstm: expected x (N, T, D), h0 (N, H), c0 (N, H), w_ih (4H, D), w_hh (4H, H); "
            f"got x {x.shape}, h0 {h0.shape}, c0 {c0.shape}, w_ih {w_ih.shape}, "
            f"w_hh {w_hh.shape}"
        )
    N, T, D = x.shape
    H = h0.shape[1]
    if (
        h0.shape[0] != N
        or c0.shape != h0.shape
        or w_ih.shape != (4 * H, D)
        or w_hh.shape != (4 * H, H)
        or b_ih.shape != (4 * H,)
        or b_hh.shape != (4 * H,)
    ):
        raise ValueError(
            f"lstm: inconsistent shapes x {x.shape}, h0 {h0.shape}, c0 {c0.shape}, "
            f"w_ih {w_ih.shape}, w_hh {w_hh.shape}, b_ih {b_ih.shape}, b_hh {b_hh.shape} "
            f"(want x (N, T, D), h0 and c0 (N, H), w_ih (4H, D), w_hh (4H, H), biases (4H,))"
        )
    if T < 1:
        raise ValueError(f"lstm: need at least one time step, got x {x.shape}")


def fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """LSTM forward over all T steps.

    Parameters
    ----------
    x : (N, T, D) array
    h0, c0 : (N, H) arrays
    w_ih : (4H, D) array, gates i, f, g, o
    w_hh : (4H, H) array
    b_ih, b_hh : (4H,) arrays

    Returns
    -------
    hs : (N, T, H) array, hs[:, t] = h_{t+1}
    cs : (N, T, H) array, cs[:, t] = c_{t+1}
    gates : (N, T, 4H) array, [i, f, g, o] after their nonlinearities, per step
    """
    _check(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    N, T, _ = x.shape
    H = h0.shape[1]
    p = x @ w_ih.T + b_ih + b_hh  # (N, T, 4H) input projection of every step, both biases
    hs = np.empty((N, T, H), dtype=x.dtype)
    cs = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 4 * H), dtype=x.dtype)
    h, c = h0, c0
    for t in range(T):
        z = p[:, t] + h @ w_hh.T  # (N, 4H)
        i = sigmoid(z[:, :H])
        f = sigmoid(z[:, H : 2 * H])
        g = np.tanh(z[:, 2 * H : 3 * H])
        o = sigmoid(z[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs[:, t] = h
        cs[:, t] = c
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)
    return hs, cs, gates


def bwd(ghs, gcs, x, h0, c0, w_ih, w_hh, hs, cs, gates):
    """Gradients of an LSTM layer (the backward walk of the SPEC).

    Parameters
    ----------
    ghs, gcs : (N, T, H) arrays, upstream gradients of hs and cs
    x, h0, c0, w_ih, w_hh : the inputs of ``fwd``
    hs, cs, gates : the outputs of ``fwd``

    Returns
    -------
    (gx (N, T, D), gh0 (N, H), gc0 (N, H), gw_ih (4H, D), gw_hh (4H, H), gb_ih (4H,),
    gb_hh (4H,))
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))  # each (N, T, H)
    hprev = np.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H): h_{t-1}
    cprev = np.concatenate([c0[:, None, :], cs[:, :-1]], axis=1)  # (N, T, H): c_{t-1}
    gz = np.empty((N, T, 4 * H), dtype=x.dtype)  # gradient of the pre-activations z_t
    gh_next = np.zeros((N, H), dtype=x.dtype)  # gz_{t+1} W_hh
    gc_next = np.zeros((N, H), dtype=x.dtype)  # gc_{t+1} ⊙ f_{t+1}
    for t in range(T - 1, -1, -1):
        tc = np.tanh(cs[:, t])
        gh = ghs[:, t] + gh_next
        gc = gcs[:, t] + gh * o[:, t] * (1 - tc**2) + gc_next
        gi = gc * g[:, t]
        gf = gc * cprev[:, t]
        gg = gc * i[:, t]
        go = gh * tc
        gz[:, t] = np.concatenate(
            [
                gi * i[:, t] * (1 - i[:, t]),
                gf * f[:, t] * (1 - f[:, t]),
                gg * (1 - g[:, t] ** 2),
                go * o[:, t] * (1 - o[:, t]),
            ],
            axis=1,
        )
        gh_next = gz[:, t] @ w_hh
        gc_next = gc * f[:, t]
    gx = gz @ w_ih
    gw_ih = np.einsum("ntj,ntd->jd", gz, x)
    gw_hh = np.einsum("ntj,ntk->jk", gz, hprev)
    gb_ih = gz.sum(axis=(0, 1))
    return gx, gh_next, gc_next, gw_ih, gw_hh, gb_ih, gb_ih.copy()
