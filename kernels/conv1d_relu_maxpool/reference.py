"""conv1d_relu_maxpool in NumPy: conv1d_relu's reference, then maxpool1d's; backward as the
SPEC derives it (the masked gy scattered by maxpool1d's backward, then conv1d's backward).
The definition and the test oracle. Math: see SPEC (kernels/conv1d_relu_maxpool/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._shapes import conv_out_length
from kernels.conv1d import reference as conv1d
from kernels.conv1d_relu import reference as conv1d_relu
from kernels.maxpool1d import reference as maxpool1d

__all__ = ["fwd", "bwd"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        pool_size: int, pool_stride: int, pool_padding: int, channels_last: bool = False):
    """y, argmax = maxpool1d(max(conv1d(x, w, b), 0)).

    Parameters
    ----------
    x : (N, C, L) array, or (N, L, C) when channels_last;  w : (O, C, K) array;
    b : (O,) array or None
    stride, padding_left, padding_right, dilation : int     the convolution's
    pool_size, pool_stride, pool_padding : int              the pool's

    Returns
    -------
    y : (N, O, Lp) array of x's dtype, argmax : (N, O, Lp) int32 (positions along the
    convolution's output); (N, Lp, O) each when channels_last
    """
    r = conv1d_relu.fwd(x, w, b, stride=stride, padding_left=padding_left,
                        padding_right=padding_right, dilation=dilation,
                        channels_last=channels_last)
    return maxpool1d.fwd(r, kernel_size=pool_size, stride=pool_stride, padding=pool_padding,
                         channels_last=channels_last)


def bwd(gy, x, w, y, argmax, *, stride: int, padding_left: int, padding_right: int,
        dilation: int, pool_size: int, pool_stride: int, pool_padding: int,
        need_gx: bool = True, channels_last: bool = False):
    """Gradients of ``fwd`` for gy, given its outputs y and argmax (all (N, O, Lp), or
    (N, Lp, O) when channels_last).

    Returns
    -------
    (gx, gw, gb) : (N, C, L) (or (N, L, C)), (O, C, K), (O,) arrays of x's dtype; gx is
    None when ``need_gx`` is false
    """
    if gy.shape != y.shape or y.shape != argmax.shape:
        raise ValueError(f"conv1d_relu_maxpool: gy {gy.shape}, y {y.shape} and argmax "
                         f"{argmax.shape} must have one shape")
    length_axis = 1 if channels_last else 2
    lc = conv_out_length(x.shape[length_axis], w.shape[2], stride, padding_left,
                         padding_right, dilation)
    masked = np.where(y > 0, gy, 0).astype(gy.dtype, copy=False)        # steps 1-2
    (gz,) = maxpool1d.bwd(masked, argmax, length=lc, kernel_size=pool_size,
                          stride=pool_stride, padding=pool_padding,
                          channels_last=channels_last)
    return conv1d.bwd(gz, x, w, stride=stride, padding_left=padding_left,  # step 3
                      padding_right=padding_right, dilation=dilation, need_gx=need_gx,
                      channels_last=channels_last)
