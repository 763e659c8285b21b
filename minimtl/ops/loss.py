"""Losses, per element or per row; the functional layer reduces (mean/sum).

Math: kernels/cross_entropy/, kernels/soft_cross_entropy/, kernels/bce_with_logits/,
kernels/bce/, kernels/mse/.
"""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["CrossEntropy", "SoftCrossEntropy", "BCEWithLogits", "BCE", "MSE"]


def _rows(op, x):
    _checks.ndim(op, "logits", x, 2, "(M, K)")
    (x,) = _checks.floats(op, logits=x)
    return x


def _same_shape(op, a, b, names=("input", "target")):
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names[0]} {a.shape} and {names[1]} {b.shape} must have the "
                         f"same shape")
    return _checks.floats(op, **{names[0]: a, names[1]: b})


class CrossEntropy(Function):
    """loss[m] = logsumexp(x[m]) − x[m, y[m]] for logits x (M, K), integer labels y (M,).
    ``checked=True``: the labels are known to lie in [0, K) (checked on the host before
    their upload), so the range check, a read back from a GPU, is skipped."""

    kernel = "cross_entropy"

    @staticmethod
    def forward(ctx, x, labels, *, checked=False):
        x = _rows("cross_entropy", x)
        xp = ctx.xp
        if checked and labels.dtype.kind in "iu" and labels.shape == (x.shape[0],):
            # in range on the host already (pack_targets): no read back from the device
            labels = xp.ascontiguousarray(xp.asarray(labels), dtype=xp.int64)
        else:
            labels = _checks.labels("cross_entropy", labels, x.shape[0], x.shape[1], ctx.xp)
        loss, lse = ctx.k.fwd(x, labels)
        ctx.save(x, labels, lse)
        return loss

    @staticmethod
    def backward(ctx, gloss):
        return ctx.k.bwd(gloss, *ctx.saved)


class SoftCrossEntropy(Function):
    """loss[m] = Σ_k p[m,k]·(logsumexp(x[m]) − x[m,k]) for probability targets p (M, K)."""

    kernel = "soft_cross_entropy"

    @staticmethod
    def forward(ctx, x, p):
        x = _rows("cross_entropy", x)
        x, p = _same_shape("cross_entropy", x, p, ("logits", "target"))
        loss, lse = ctx.k.fwd(x, p)
        ctx.save(x, p, lse)
        return loss

    @staticmethod
    def backward(ctx, gloss):
        return ctx.k.bwd(gloss, *ctx.saved)       # gx, gp


class BCEWithLogits(Function):
    """loss = max(z, 0) − z·y + log(1 + e^−|z|), elementwise."""

    kernel = "bce_with_logits"

    @staticmethod
    def forward(ctx, z, y):
        z, y = _same_shape("bce_with_logits", z, y, ("logits", "target"))
        ctx.save(z, y)
        return ctx.k.fwd(z, y)

    @staticmethod
    def backward(ctx, gloss):
        return ctx.k.bwd(gloss, *ctx.saved)


class BCE(Function):
    """loss = −(y·log p̂ + (1 − y)·log(1 − p̂)), p̂ = clip(p, 1e-7, 1 − 1e-7), elementwise."""

    kernel = "bce"

    @staticmethod
    def forward(ctx, p, y):
        p, y = _same_shape("bce", p, y, ("probabilities", "target"))
        ctx.save(p, y)
        return ctx.k.fwd(p, y)

    @staticmethod
    def backward(ctx, gloss):
        return ctx.k.bwd(gloss, *ctx.saved)


class MSE(Function):
    """loss = (a − b)², elementwise."""

    kernel = "mse"

    @staticmethod
    def forward(ctx, a, b):
        a, b = _same_shape("mse", a, b)
        ctx.save(a, b)
        return ctx.k.fwd(a, b)

    @staticmethod
    def backward(ctx, gloss):
        return ctx.k.bwd(gloss, *ctx.saved)       # ga, gb
