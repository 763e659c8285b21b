"""Reductions over axes (sum, mean, max), written once against ``ctx.xp``."""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["Sum", "Mean", "Max"]


def _axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = [_checks.axis(op, a, ndim) for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(axes))


def _expand(g, axes: tuple[int, ...], keepdims: bool):
    """Put back the reduced axes (as size 1) so ``g`` broadcasts against the input."""
    if keepdims:
        return g
    for a in axes:
        g = g.reshape(g.shape[:a] + (1,) + g.shape[a:])
    return g


class Sum(Function):
    """y = Σ_axes x  ⇒  gx = gy broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, *, axis=None, keepdims=False):
        axes = _axes(axis, x.ndim, "sum")
        ctx.params = {"axes": axes, "keepdims": keepdims, "shape": x.shape}
        return ctx.xp.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        p = ctx.params
        g = _expand(gy, p["axes"], p["keepdims"])
        return (ctx.xp.broadcast_to(g, p["shape"]).copy(),)


class Mean(Function):
    """y = (1/n) Σ_axes x, n the number of summed elements  ⇒  gx = gy / n broadcast back."""

    @staticmethod
    def forward(ctx, x, *, axis=None, keepdims=False):
        axes = _axes(axis, x.ndim, "mean")
        n = 1
        for a in axes:
            n *= x.shape[a]
        ctx.params = {"axes": axes, "keepdims": keepdims, "shape": x.shape, "n": n}
        return ctx.xp.mean(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        p = ctx.params
        g = _expand(gy, p["axes"], p["keepdims"]) / gy.dtype.type(max(p["n"], 1))
        return (ctx.xp.broadcast_to(g, p["shape"]).copy(),)


class Max(Function):
    """y = max_axes x  ⇒  gx = gy at the position of the maximum.

    Ties: the gradient is split equally among tied maxima (the subgradient that keeps
    ``max(x, x)`` symmetric); PyTorch's ``amax`` does the same.
    """

    @staticmethod
    def forward(ctx, x, *, axis=None, keepdims=False):
        axes = _axes(axis, x.ndim, "max")
        y = ctx.xp.max(x, axis=axes, keepdims=True)
        ctx.save(x, y)
        ctx.params = {"axes": axes, "keepdims": keepdims}
        return y if keepdims else ctx.xp.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved
        p = ctx.params
        hit = x == y
        count = ctx.xp.sum(hit, axis=p["axes"], keepdims=True)
        g = _expand(gy, p["axes"], p["keepdims"])
        return ((hit * (g / count)).astype(x.dtype, copy=False),)
