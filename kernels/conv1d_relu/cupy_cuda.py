"""conv1d_relu on the GPU: conv1d's tiled kernels (kernels/conv1d/cupy_cuda.py) with the
ReLU applied as the forward tile is written and the mask y > 0 applied as gy is read in
both backward kernels; the thread -> index maps are conv1d's.

math: see SPEC (kernels/conv1d_relu/__init__.py).
"""

from __future__ import annotations

from kernels._shapes import swap_layout
from kernels.conv1d.cupy_cuda import KERNELS, SOURCE, backward, forward

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = max(conv1d(x (N, C, L), w (O, C, K), b (O,) | None), 0);
    channels-last (N, L, C) → (N, Lo, O) through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation))
    if channels_last:
        return swap_layout(forward(swap_layout(x), w, b, *p, True))
    return forward(x, w, b, *p, True)


def bwd(gy, x, w, y, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) for the upstream gradient gy (N, O, Lo)
    (masked by y > 0); channels-last through transposes."""
    p = (int(stride), int(padding_left), int(padding_right), int(dilation), bool(need_gx))
    if channels_last:
        gx, gw, gb = backward(swap_layout(gy), swap_layout(x), w, swap_layout(y), *p)
        return (None if gx is None else swap_layout(gx)), gw, gb
    return backward(gy, x, w, y, *p)
