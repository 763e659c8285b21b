"""maxpool1d in NumPy, written for clarity: the definition and the test oracle.

One output position t at a time, vectorised over (N, C): the window's real positions are a
slice of x, np.argmax gives its first maximum (and the first NaN, if any). math: see SPEC.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd", "out_length"]


def out_length(length: int, kernel_size: int, stride: int, padding: int) -> int:
    """Lo = ⌊(L + 2·P − K) / S⌋ + 1, checked against the rules in the SPEC."""
    if kernel_size < 1 or stride < 1 or not 0 <= padding <= kernel_size // 2:
        raise ValueError(
            f"maxpool1d: need kernel_size ≥ 1, stride ≥ 1, 0 ≤ padding ≤ kernel_size // 2; "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}"
        )
    if length + 2 * padding < kernel_size:
        raise ValueError(
            f"maxpool1d: window {kernel_size} is longer than the padded input "
            f"(length {length} + 2·padding {padding})"
        )
    return (length + 2 * padding - kernel_size) // stride + 1


def fwd(x, *, kernel_size: int, stride: int, padding: int):
    """Max-pool over the last axis.

    Parameters
    ----------
    x : (N, C, L) float32 or float64

    Returns
    -------
    y : (N, C, Lo), the window maxima, dtype of x
    argmax : (N, C, Lo) int32, the position in [0, L) of each window's first maximum
    """
    if x.ndim != 3:
        raise ValueError(f"maxpool1d: x must be (N, C, L), got shape {x.shape}")
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
        padding: int):
    """Gradient of max-pool: gy scatter-added into gx at argmax.

    Parameters
    ----------
    gy : (N, C, Lo) float32 or float64, upstream gradient
    argmax : (N, C, Lo) int32, from fwd
    length : L, the input length

    Returns
    -------
    (gx,) with gx : (N, C, L), dtype of gy
    """
    if gy.shape != argmax.shape or gy.ndim != 3:
        raise ValueError(
            f"maxpool1d: gy {gy.shape} and argmax {argmax.shape} must be the same (N, C, Lo)"
        )
    N, C, Lo = gy.shape
    if Lo != out_length(length, kernel_size, stride, padding):
        raise ValueError(f"maxpool1d: gy {gy.shape} does not fit input length {length}")
    gx = np.zeros((N, C, length), dtype=gy.dtype)
    n = np.arange(N)[:, None, None]
    c = np.arange(C)[None, :, None]
    # unbuffered add: a position chosen by several (overlapping) windows gets all their gy,
    # added in increasing t
    np.add.at(gx, (n, c, argmax), gy)
    return (gx,)
