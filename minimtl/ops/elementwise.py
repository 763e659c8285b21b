"""Elementwise ops, written once against ``ctx.xp`` (NumPy or CuPy); no kernels.

Binary ops broadcast like NumPy; the engine sums each gradient back to its input's shape.
Both operands must have the same float dtype (no silent up-casting); Python scalars take
the tensor's dtype.
"""

from __future__ import annotations

from ..function import Function

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "Pow", "Exp", "Log", "Sqrt", "Tanh",
           "Sigmoid", "Relu", "Cast", "Where"]


class Add(Function):
    """y = a + b."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, gy):
        return gy, gy


class Sub(Function):
    """y = a − b."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, gy):
        return gy, (-gy if ctx.needs_grad[1] else None)


class Mul(Function):
    """y = a·b  ⇒  ga = gy·b, gb = gy·a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save(a, b)
        return a * b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        ga = gy * b if ctx.needs_grad[0] else None
        gb = gy * a if ctx.needs_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b  ⇒  ga = gy / b, gb = −gy·a / b²."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save(a, b)
        return a / b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        ga = gy / b if ctx.needs_grad[0] else None
        gb = -gy * a / (b * b) if ctx.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = −x."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, gy):
        return (-gy,)


class Pow(Function):
    """y = x^p for a constant real p  ⇒  gx = gy·p·x^(p−1)."""

    @staticmethod
    def forward(ctx, x, *, p):
        ctx.save(x)
        ctx.params = {"p": p}
        return x**p

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved
        p = ctx.params["p"]
        return (gy * (p * x ** (p - 1)),)


class Exp(Function):
    """y = eˣ  ⇒  gx = gy·y."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.exp(x)
        ctx.save(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return (gy * y,)


class Log(Function):
    """y = ln x  ⇒  gx = gy / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved
        return (gy / x,)


class Sqrt(Function):
    """y = √x  ⇒  gx = gy / (2y)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.sqrt(x)
        ctx.save(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return (gy / (2 * y),)


class Tanh(Function):
    """y = tanh x  ⇒  gx = gy·(1 − y²)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.tanh(x)
        ctx.save(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return (gy * (1 - y * y),)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed without overflow  ⇒  gx = gy·y·(1 − y)."""

    @staticmethod
    def forward(ctx, x):
        xp = ctx.xp
        e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
        y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return (gy * y * (1 - y),)


class Relu(Function):
    """y = max(x, 0)  ⇒  gx = gy·[x > 0] (the derivative at 0 is taken as 0)."""

    @staticmethod
    def forward(ctx, x):
        y = ctx.xp.maximum(x, 0)
        ctx.save(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return (gy * (y > 0),)


class Cast(Function):
    """y = x converted to ``dtype``  ⇒  gx = gy converted back."""

    @staticmethod
    def forward(ctx, x, *, dtype):
        ctx.params = {"dtype": x.dtype}
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, gy):
        return (gy.astype(ctx.params["dtype"]),)


class Where(Function):
    """y = a where cond else b (cond: a boolean array, not differentiable)."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save(cond)
        return ctx.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, gy):
        (cond,) = ctx.saved
        zero = gy.dtype.type(0)
        ga = ctx.xp.where(cond, gy, zero) if ctx.needs_grad[1] else None
        gb = ctx.xp.where(cond, zero, gy) if ctx.needs_grad[2] else None
        return None, ga, gb
