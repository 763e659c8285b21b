"""Matrix products, written once against ``ctx.xp`` (BLAS / cuBLAS through ``@``).

Linear's three products on the numba backend go through ``kernels._threads.matmul``: the
same products in row or column blocks, which run on minimtl's CPU threads when
``set_num_threads`` holds BLAS to one thread (the heads' product was 10 % of a batch-256
step on one BLAS thread; benchmarks/NOTES.md, item 37)."""

from __future__ import annotations

from kernels import _threads

from ..function import Function
from . import _checks

__all__ = ["MatMul", "Linear"]


def _mm(ctx, a, b):
    """a @ b; on numba, in blocks on minimtl's CPU threads (module doc)."""
    return _threads.matmul(a, b) if ctx.backend == "numba" else a @ b


class MatMul(Function):
    """y = a @ b for 2-D or batched (…, n, k) @ (…, k, m) operands.

    ⇒ ga = gy @ bᵀ, gb = aᵀ @ gy (transposing the last two axes); batch axes that were
    broadcast are summed back by the engine.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not chain")
        ctx.save(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, gy):
        a, b = ctx.saved
        ga = gy @ b.swapaxes(-1, -2) if ctx.needs_grad[0] else None
        gb = a.swapaxes(-1, -2) @ gy if ctx.needs_grad[1] else None
        return ga, gb


class Linear(Function):
    """y = x @ wᵀ + b with x (N, D), w (O, D), b (O,) or None — one fused node for Dense.

    ⇒ gx = gy @ w, gw = gyᵀ @ x, gb = Σ_n gy.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
            raise ValueError(f"linear: x {x.shape} and weight {w.shape} do not fit "
                             f"(expected x (N, D), weight (O, D))")
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"linear: bias {b.shape} does not fit weight {w.shape}")
        x, w, b = _checks.floats("linear", x=x, weight=w, bias=b)
        ctx.save(x, w)
        y = _mm(ctx, x, w.T)
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved
        gx = _mm(ctx, gy, w) if ctx.needs_grad[0] else None
        gw = _mm(ctx, gy.T, x) if ctx.needs_grad[1] else None
        gb = gy.sum(axis=0) if ctx.needs_grad[2] else None
        return gx, gw, gb
