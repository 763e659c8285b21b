"""avgpool1d in NumPy, written for clarity: the definition and the test oracle.

The zero-padded input is read K times, once per window offset k, as a strided slice that
holds the k-th element of every window. Channels-last arrays (N, L, C) go through the same
code as transposed views and come back contiguous. math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._shapes import pool_out_length, swap_layout

__all__ = ["fwd", "bwd", "out_length"]


def out_length(length: int, kernel_size: int, stride: int, padding: int) -> int:
    """Lo = ⌊(L + 2·P − K) / S⌋ + 1, checked against the rules in the SPEC."""
    return pool_out_length("avgpool1d", length, kernel_size, stride, padding)


def fwd(x, *, kernel_size: int, stride: int, padding: int, channels_last: bool = False):
    """Average-pool over the length axis, zero padding counted in the divisor.

    Parameters
    ----------
    x : (N, C, L) float32 or float64; (N, L, C) if channels_last

    Returns
    -------
    y : (N, C, Lo), dtype of x; (N, Lo, C) if channels_last
    """
    if x.ndim != 3:
        layout = "(N, L, C)" if channels_last else "(N, C, L)"
        raise ValueError(f"avgpool1d: x must be {layout}, got shape {x.shape}")
    if channels_last:
        return swap_layout(fwd(x.transpose(0, 2, 1), kernel_size=kernel_size, stride=stride,
                         padding=padding))
    N, C, L = x.shape
    K, S, P = kernel_size, stride, padding
    Lo = out_length(L, K, S, P)
    xp = np.pad(x, ((0, 0), (0, 0), (P, P)))  # (N, C, L + 2P), zeros at both ends
    total = np.zeros((N, C, Lo), dtype=x.dtype)
    for k in range(K):
        total += xp[:, :, k : k + S * (Lo - 1) + 1 : S]  # element k of every window
    return total / x.dtype.type(K)


def bwd(gy, *, length: int, kernel_size: int, stride: int, padding: int,
        channels_last: bool = False):
    """Gradient of average-pool: each gy[t] spread evenly over its window.

    Parameters
    ----------
    gy : (N, C, Lo) float32 or float64, upstream gradient; (N, Lo, C) if channels_last
    length : L, the input length

    Returns
    -------
    (gx,) with gx : (N, C, L), dtype of gy; (N, L, C) if channels_last
    """
    if gy.ndim != 3:
        layout = "(N, Lo, C)" if channels_last else "(N, C, Lo)"
        raise ValueError(f"avgpool1d: gy must be {layout}, got shape {gy.shape}")
    K, S, P = kernel_size, stride, padding
    Lo = gy.shape[1] if channels_last else gy.shape[2]
    if Lo != out_length(length, K, S, P):
        raise ValueError(f"avgpool1d: gy {gy.shape} does not fit input length {length}")
    if channels_last:
        (gx,) = bwd(gy.transpose(0, 2, 1), length=length, kernel_size=K, stride=S, padding=P)
        return (swap_layout(gx),)
    N, C, Lo = gy.shape
    gxp = np.zeros((N, C, length + 2 * P), dtype=gy.dtype)  # gradient of the padded input
    for k in range(K):
        gxp[:, :, k : k + S * (Lo - 1) + 1 : S] += gy  # the slices fwd read, transposed
    return (gxp[:, :, P : P + length] / gy.dtype.type(K),)
