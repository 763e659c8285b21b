"""Softmax and log-softmax along any axis. Math: kernels/softmax/, kernels/log_softmax/.

The kernels work on rows of a 2-D (M, K) array; these ops move ``axis`` last and fold the
other axes into M, then undo that on the way out.
"""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["Softmax", "LogSoftmax", "to_rows", "from_rows"]


def to_rows(xp, x, axis: int, op: str = "softmax"):
    """(…, K at axis, …) -> C-contiguous (M, K) rows, plus what ``from_rows`` needs."""
    if x.ndim == 0:
        raise ValueError(f"{op}: x must have at least one axis, got a 0-d array")
    axis = _checks.axis(op, axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"{op}: axis {axis} of x {x.shape} is empty (no classes to "
                         f"normalise over)")
    moved = xp.moveaxis(x, axis, -1)
    shape = moved.shape
    return xp.ascontiguousarray(moved.reshape(-1, shape[-1])), (axis, shape)


def from_rows(xp, rows, how):
    axis, shape = how
    return xp.moveaxis(rows.reshape(shape), -1, axis)


def _forward(ctx, x, axis: int, op: str):
    (x,) = _checks.floats(op, x=x)
    rows, how = to_rows(ctx.xp, x, axis, op)
    y = ctx.k.fwd(rows)                       # (M, K)
    ctx.save(y)
    ctx.params = {"how": how}
    return from_rows(ctx.xp, y, how)


def _backward(ctx, gy):
    (y,) = ctx.saved
    how = ctx.params["how"]
    g, _ = to_rows(ctx.xp, gy, how[0])
    (gx,) = ctx.k.bwd(g, y)
    return (from_rows(ctx.xp, gx, how),)


class Softmax(Function):
    """y = exp(x − max) / Σ exp(x − max) along ``axis``."""

    kernel = "softmax"

    @staticmethod
    def forward(ctx, x, *, axis=-1):
        return _forward(ctx, x, axis, "softmax")

    @staticmethod
    def backward(ctx, gy):
        return _backward(ctx, gy)


class LogSoftmax(Function):
    """y = x − logsumexp(x) along ``axis``."""

    kernel = "log_softmax"

    @staticmethod
    def forward(ctx, x, *, axis=-1):
        return _forward(ctx, x, axis, "log_softmax")

    @staticmethod
    def backward(ctx, gy):
        return _backward(ctx, gy)
