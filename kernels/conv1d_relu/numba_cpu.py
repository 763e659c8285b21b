"""conv1d_relu on the CPU: conv1d's im2col + BLAS kernels with ReLU fused into the loop that
reorders the product into (N, O, Lo) (forward) and the mask y > 0 fused into the loop that
reorders gy into rows (backward); channels-last, both are fused into the in-place
bias pass and the masking pass. See kernels/conv1d/numba_cpu.py for the parallel
strategy, memory-access pattern and timings.

math: see SPEC (kernels/conv1d_relu/__init__.py).
"""

from __future__ import annotations

from kernels.conv1d.numba_cpu import backward, backward_nlc, forward, forward_nlc

__all__ = ["fwd", "bwd"]


def fwd(x, w, b, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        channels_last: bool = False):
    """y (N, O, Lo) = max(conv1d(x (N, C, L), w (O, C, K), b (O,) | None), 0); channels-last:
    x (N, L, C) → y (N, Lo, O)."""
    impl = forward_nlc if channels_last else forward
    return impl(x, w, b, int(stride), int(padding_left), int(padding_right), int(dilation),
                True)


def bwd(gy, x, w, y, *, stride: int, padding_left: int, padding_right: int, dilation: int,
        need_gx: bool = True, channels_last: bool = False):
    """(gx (N, C, L) or None, gw (O, C, K), gb (O,)) = conv1d's backward of gy·[y > 0];
    channels-last: gx (N, L, C) for gy and y (N, Lo, O)."""
    impl = backward_nlc if channels_last else backward
    return impl(gy, x, w, y, int(stride), int(padding_left), int(padding_right),
                int(dilation), bool(need_gx))
