"""MaxPool1d and AvgPool1d. Math: kernels/maxpool1d/__init__.py, kernels/avgpool1d/__init__.py."""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["MaxPool1d", "AvgPool1d"]


def _check(op, x, kernel_size, stride, padding, channels_last):
    _checks.positive(op, kernel_size=kernel_size, stride=stride)
    _checks.ndim(op, "x", x, 3, "(N, L, C)" if channels_last else "(N, C, L)")
    length = x.shape[1 if channels_last else 2]
    if padding < 0 or padding > kernel_size // 2:
        raise ValueError(f"{op}: padding must lie in [0, kernel_size // 2 = "
                         f"{kernel_size // 2}], got {padding}")
    if length + 2 * padding < kernel_size:
        raise ValueError(f"{op}: window {kernel_size} is longer than the padded input: "
                         f"x {x.shape}, padding {padding}")
    (x,) = _checks.floats(op, x=x)
    return x


class MaxPool1d(Function):
    """y[n,c,t] = max of the window t of x; returns only y (the argmax is kept for backward).
    Channels-last (``channels_last=True``): x (N, L, C) → y (N, Lo, C)."""

    kernel = "maxpool1d"

    @staticmethod
    def forward(ctx, x, *, kernel_size, stride, padding=0, channels_last=False):
        x = _check("max_pool1d", x, kernel_size, stride, padding, channels_last)
        ctx.params = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                          channels_last=bool(channels_last))
        y, argmax = ctx.k.fwd(x, **ctx.params)
        ctx.save(argmax)
        ctx.params["length"] = x.shape[1 if channels_last else 2]
        return y

    @staticmethod
    def backward(ctx, gy):
        (argmax,) = ctx.saved
        return ctx.k.bwd(gy, argmax, **ctx.params)


class AvgPool1d(Function):
    """y[n,c,t] = (1/K)·Σ window t of x (zero padding counted); channels-last as MaxPool1d."""

    kernel = "avgpool1d"

    @staticmethod
    def forward(ctx, x, *, kernel_size, stride, padding=0, channels_last=False):
        x = _check("avg_pool1d", x, kernel_size, stride, padding, channels_last)
        ctx.params = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                          channels_last=bool(channels_last))
        y = ctx.k.fwd(x, **ctx.params)
        ctx.params["length"] = x.shape[1 if channels_last else 2]
        return y

    @staticmethod
    def backward(ctx, gy):
        return ctx.k.bwd(gy, **ctx.params)
