"""conv1d in NumPy, written for clarity: the definition and the test oracle.

The padded input is unfolded into windows ``cols[n, c, t, k] = xp[n, c, t·S + k·d]`` once,
then forward and weight gradient are single ``einsum`` contractions, and the input
gradient scatters each tap back onto the positions it read. Math: see SPEC
(kernels/conv1d/__init__.py). Channels-last arrays ((N, L, C) in, (N, Lo, O) out) go
through the same code with the last two axes swapped.
"""

from __future__ import annotations

import numpy as np

from kernels._shapes import conv_out_length, swap_layout

__all__ = ["fwd", "bwd"]


def _check(x, w, b, stride, padding_left, padding_right, dilation) -> int:
    """Cheap consistency checks; returns Lo."""
    if x.ndim != 3 or w.ndim != 3 or x.shape[1] != w.shape[1]:
        raise ValueError(f"conv1d: x {x.shape} must be (N, C, L) and w {w.shape} (O, C, K)")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"conv1d: b {b.shape} must be (O,) = ({w.shape[0]},)")
    if stride < 1 or dilation < 1 or padding_left < 0 or padding_right < 0:
        raise ValueError(
            f"conv1d: need stride ≥ 1, dilation ≥ 1, padding ≥ 0; got stride={stride}, "
            f"padding=({padding_left}, {padding_right}), dilation={dilation}"
        )
    Lo = conv_out_length(x.shape[2], w.shape[2], stride, padding_left, padding_right, dilation)
    if Lo < 1:
        raise ValueError(f"conv1d: window of w {w.shape} (dilation {dilation}) does not fit "
                         f"x {x.shape} padded by ({padding_left}, {padding_right})")
    return Lo


def _windows(x, K, stride, padding_left, padding_right, dilation, Lo):
    """cols[n, c, t, k] = xp[n, c, t·S + k·d], shape (N, C, Lo, K)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding_left, padding_right)))
    idx = np.arange(Lo)[:, None] * stride + np.arange(K)[None, :] * dilation  # (Lo, K)
    return xp[:, :, idx]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y[n,o,t] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t·S+k·d].

    Parameters
    ----------
    x : (N, C, L) array, or (N, L, C) when channels_last;  w : (O, C, K) array;
    b : (O,) array or None
    stride, padding_left, padding_right, dilation : int

    Returns
    -------
    y : (N, O, Lo) array of x's dtype, or (N, Lo, O) when channels_last
    """
    if channels_last:  # the same math on the swapped axes
        return swap_layout(fwd(swap_layout(x), w, b, stride=stride,
                               padding_left=padding_left, padding_right=padding_right,
                               dilation=dilation))
    Lo = _check(x, w, b, stride, padding_left, padding_right, dilation)
    cols = _windows(x, w.shape[2], stride, padding_left, padding_right, dilation, Lo)
    y = np.einsum("nctk,ock->not", cols, w)  # (N, O, Lo)
    if b is not None:
        y = y + b[None, :, None]
    return y.astype(x.dtype, copy=False)


def bwd(gy, x, w, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """Gradients of ``fwd`` for the upstream gradient gy (N, O, Lo) ((N, Lo, O) and x
    (N, L, C) when channels_last).

    Returns
    -------
    (gx, gw, gb) : (N, C, L) (or (N, L, C)), (O, C, K), (O,) arrays of x's dtype; gx is
    None when ``need_gx`` is false (an input that needs no gradient, such as the data)
    """
    if channels_last:
        gx, gw, gb = bwd(swap_layout(gy), swap_layout(x), w, stride=stride,
                         padding_left=padding_left, padding_right=padding_right,
                         dilation=dilation, need_gx=need_gx)
        return (None if gx is None else swap_layout(gx)), gw, gb
    Lo = _check(x, w, None, stride, padding_left, padding_right, dilation)
    if gy.shape != (x.shape[0], w.shape[0], Lo):
        raise ValueError(f"conv1d: gy {gy.shape} must be (N, O, Lo) = "
                         f"{(x.shape[0], w.shape[0], Lo)} for x {x.shape}, w {w.shape}")
    N, C, L = x.shape
    K = w.shape[2]
    cols = _windows(x, K, stride, padding_left, padding_right, dilation, Lo)
    gb = gy.sum(axis=(0, 2))                               # step 1
    gw = np.einsum("not,nctk->ock", gy, cols)              # step 2
    if not need_gx:
        return None, gw.astype(x.dtype, copy=False), gb.astype(x.dtype, copy=False)
    gcols = np.einsum("not,ock->nctk", gy, w)              # ∂ℓ/∂cols
    gxp = np.zeros((N, C, L + padding_left + padding_right), dtype=x.dtype)
    last = (Lo - 1) * stride + 1
    for k in range(K):                                     # step 3: tap k read xp[t·S+k·d]
        gxp[:, :, k * dilation:k * dilation + last:stride] += gcols[:, :, :, k]
    gx = gxp[:, :, padding_left:padding_left + L]          # step 4: drop the padding
    return (gx.astype(x.dtype), gw.astype(x.dtype, copy=False),
            gb.astype(x.dtype, copy=False))
