"""maxpool1d in NumPy, written for clarity: the definition and the test oracle.

One output position t at a time, vectorised over (N, C): the window's real positions are a
slice of x, np.argmax gives its first maximum (and the first NaN, if any). Channels-last
arrays (N, L, C) go through the same code as transposed views and come back contiguous.
math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._shapes import pool_out_length, swap_layout

__all__ = ["fwd", "bwd", "out_length"]


def out_length(length: int, kernel_size: int, stride: int, padding: int) -> int:
    """Lo = ⌊(L + 2·P − K) / S⌋ + 1, checked against the rules in the SPEC."""
    return pool_out_length("maxpool1d", length, kernel_size, stride, padding)


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Max-pool over the length axis.

    Parameters
    ----------
    x : (N, C, L) float32 or float64; (N, L, C) if channels_last

    Returns
    -------
    y : (N, C, Lo), the window maxima, dtype of x; (N, Lo, C) if channels_last
    argmax : int32, shaped as y, the position in [0, L) of each window's first maximum
    """
    if x.ndim != 3:
        layout = "(N, L, C)" if channels_last else "(N, C, L)"
        raise ValueError(f"maxpool1d: x must be {layout}, got shape {x.shape}")
    if channels_last:
        y, argmax = fwd(x.transpose(0, 2, 1), kernel_size=kernel_size, stride=stride,
                        padding=padding)
        return swap_layout(y), swap_layout(argmax)
    N, C, L = x.shape
    Lo = out_length(L, kernel_size, stride, padding)
    y = np.empty((N, C, Lo), dtype=x.dtype)
    argmax = np.empty((N, C, Lo), dtype=np.int32)
    for t in range(Lo):
        # real positions of window t; the −∞ padding never wins, so it is left out
        lo = max(t * stride - padding, 0)
        hi = min(t * stride - padding + kernel_size, L)
        window = x[:, :, lo:hi]  # (N, C, hi - lo)
        k = np.argmax(window, axis=2)  # first maximum (or first NaN)
        argmax[:, :, t] = lo + k
        y[:, :, t] = np.take_along_axis(window, k[:, :, None], axis=2)[:, :, 0]
    return y, argmax


def bwd(gy, argmax, *, length: int, kernel_size: int, stride: int,
        padding: int, channels_last: bool = False):
    """Gradient of max-pool: gy scatter-added into gx at argmax.

    Parameters
    ----------
    gy : (N, C, Lo) float32 or float64, upstream gradient; (N, Lo, C) if channels_last
    argmax : int32, shaped as gy, from fwd
    length : L, the input length

    Returns
    -------
    (gx,) with gx : (N, C, L), dtype of gy; (N, L, C) if channels_last
    """
    if gy.shape != argmax.shape or gy.ndim != 3:
        layout = "(N, Lo, C)" if channels_last else "(N, C, Lo)"
        raise ValueError(
            f"maxpool1d: gy {gy.shape} and argmax {argmax.shape} must be the same {layout}"
        )
    Lo = gy.shape[1] if channels_last else gy.shape[2]
    if Lo != out_length(length, kernel_size, stride, padding):
        raise ValueError(f"maxpool1d: gy {gy.shape} does not fit input length {length}")
    if channels_last:
        (gx,) = bwd(gy.transpose(0, 2, 1), argmax.transpose(0, 2, 1), length=length,
                    kernel_size=kernel_size, stride=stride, padding=padding)
        return (swap_layout(gx),)
    N, C, Lo = gy.shape
    gx = np.zeros((N, C, length), dtype=gy.dtype)
    n = np.arange(N)[:, None, None]
    c = np.arange(C)[None, :, None]
    # unbuffered add: a position chosen by several (overlapping) windows gets all their gy,
    # added in increasing t
    np.add.at(gx, (n, c, argmax), gy)
    return (gx,)
