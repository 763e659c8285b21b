"""conv1d_relu on the GPU: conv1d's tiled kernels (kernels/conv1d/cupy_cuda.py) with the
ReLU applied as the forward tile is written and the mask y > 0 applied as gy is read in
both backward kernels; the thread -> index maps are conv1d's.

math: see SPEC (kernels/conv1d_relu/__init__.py).
"""

from __future__ import annotations

from kernels.conv1d.cupy_cuda import KERNELS, SOURCE, backward, forward

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int):
    """y (N, O, Lo) = max(conv1d(x (N, C, L), w (O, C, K), b (O,) | None), 0)."""
    return forward(x, w, b, int(stride), int(padding_left), int(padding_right),
                   int(dilation), True)


def bwd(gy, x, w, y, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) = conv1d's backward of gy·[y > 0]."""
    return backward(gy, x, w, y, int(stride), int(padding_left), int(padding_right),
                    int(dilation), bool(need_gx))
