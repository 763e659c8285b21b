"""conv1d_relu in NumPy: conv1d's reference followed by ReLU, and conv1d's backward of the
masked upstream gradient. The definition and the test oracle. Math: see SPEC
(kernels/conv1d_relu/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels.conv1d import reference as conv1d

__all__ = ["fwd", "bwd"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y = max(conv1d(x, w, b), 0).

    Parameters
    ----------
    x : (N, C, L) array, or (N, L, C) when channels_last;  w : (O, C, K) array;
    b : (O,) array or None
    stride, padding_left, padding_right, dilation : int

    Returns
    -------
    y : (N, O, Lo) array of x's dtype, or (N, Lo, O) when channels_last
    """
    z = conv1d.fwd(x, w, b, stride=stride, padding_left=padding_left,
                   padding_right=padding_right, dilation=dilation,
                   channels_last=channels_last)
    return np.maximum(z, 0)


def bwd(gy, x, w, y, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """Gradients of ``fwd`` for gy (N, O, Lo), given the forward output y (N, O, Lo)
    (both (N, Lo, O), and x (N, L, C), when channels_last).

    Returns
    -------
    (gx, gw, gb) : (N, C, L) (or (N, L, C)), (O, C, K), (O,) arrays of x's dtype; gx is
    None when ``need_gx`` is false
    """
    if y.shape != gy.shape:
        raise ValueError(f"conv1d_relu: y {y.shape} and gy {gy.shape} must have one shape")
    gz = np.where(y > 0, gy, 0).astype(gy.dtype, copy=False)  # step 1: ReLU'(0) = 0
    return conv1d.bwd(gz, x, w, stride=stride, padding_left=padding_left,  # step 2
                      padding_right=padding_right, dilation=dilation, need_gx=need_gx,
                      channels_last=channels_last)
