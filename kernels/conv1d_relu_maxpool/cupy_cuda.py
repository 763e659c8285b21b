"""conv1d_relu_maxpool on the GPU: the composition of the hand-written CUDA kernels of
conv1d_relu and maxpool1d (forward), and of maxpool1d's and conv1d's (backward, with the
SPEC's mask gy·[y > 0] as one CuPy elementwise pass). Not fused yet: on the GPU the two
kernels are launch- rather than bandwidth-bound at the article's shapes, and the network
runs channels-first there. The thread -> index maps are those of the two kernels.

math: see SPEC (kernels/conv1d_relu_maxpool/__init__.py).
"""

from __future__ import annotations

from kernels._cuda import cupy
from kernels._shapes import conv_out_length
from kernels.conv1d import cupy_cuda as conv
from kernels.conv1d.cupy_cuda import KERNELS, SOURCE
from kernels.conv1d_relu import cupy_cuda as conv_relu
from kernels.maxpool1d import cupy_cuda as maxpool

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        pool_size: int, pool_stride: int, pool_padding: int, channels_last: bool = False):
    """(y, argmax) = maxpool1d(max(conv1d(x, w, b), 0)), cupy arrays."""
    r = conv_relu.fwd(x, w, b, stride=stride, padding_left=padding_left,
                      padding_right=padding_right, dilation=dilation,
                      channels_last=channels_last)
    return maxpool.fwd(r, kernel_size=pool_size, stride=pool_stride, padding=pool_padding,
                       channels_last=channels_last)


def bwd(gy, x, w, y, argmax, *, stride: int, padding_left: int, padding_right: int,
        dilation: int, pool_size: int, pool_stride: int, pool_padding: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx or None, gw (O, C, K), gb (O,)) for gy, given fwd's y and argmax."""
    cp = cupy()
    masked = cp.where(y > 0, gy, 0).astype(gy.dtype, copy=False)
    length = conv_out_length(x.shape[1 if channels_last else 2], w.shape[2], stride,
                             padding_left, padding_right, dilation)
    (gz,) = maxpool.bwd(masked, argmax, length=length, kernel_size=pool_size,
                        stride=pool_stride, padding=pool_padding, channels_last=channels_last)
    return conv.bwd(gz, x, w, stride=stride, padding_left=padding_left,
                    padding_right=padding_right, dilation=dilation, need_gx=need_gx,
                    channels_last=channels_last)
