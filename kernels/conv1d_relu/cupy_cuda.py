"""conv1d_relu on the GPU: conv1d's tiled kernels (kernels/conv1d/cupy_cuda.py) with the
ReLU applied as the forward tile is written and the mask y > 0 applied as gy is read in
both backward kernels; the thread -> index maps are conv1d's.

math: see SPEC (kernels/conv1d_relu/__init__.py).
"""

from __future__ import annotations

from kernels.conv1d.cupy_cuda import KERNELS, SOURCE, _swap, backward, forward

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = max(conv1d(x (N, C, L), w (O, C, K), b (O,) | None), 0);
    channels-last (N, L, C) → (N, Lo, O) through transposes."""
    if channels_last:
        return _swap(fwd(_swap(x), w, b, stride=stride, padding_left=padding_left,
                         padding_right=padding_right, dilation=dilation))
    return forward(x, w, b, int(stride), int(padding_left), int(padding_right),
                   int(dilation), True)


def bwd(gy, x, w, y, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo)
    (masked by y > 0); channels-last through transposes."""
    if channels_last:
        gx, gw, gb = backward(_swap(gy), _swap(x), w, _swap(y), int(stride),
                              int(padding_left), int(padding_right), int(dilation),
                              bool(need_gx))
        return (None if gx is None else _swap(gx)), gw, gb
    return backward(gy, x, w, y, int(stride), int(padding_left), int(padding_right),
                    int(dilation), bool(need_gx))

