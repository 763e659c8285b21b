"""Tensor's Python operators, method shortcuts and printing: each operator or shortcut is
one call of an op in ``minimtl.ops`` (which records the graph like any other op), so
``a + b`` is ``ops.add(a, b)`` and ``x.sum()`` is ``ops.sum(x)``. ``Tensor`` inherits them
(minimtl/tensor.py); nothing here touches the graph itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TensorMethods"]


class TensorMethods:
    """The operators and shortcuts of ``Tensor`` (no state of its own)."""

    __slots__ = ()

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (f"Tensor({self.numpy()!r}, backend={self.backend!r}{grad})"
                if self.size <= 20 else
                f"Tensor(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r}{grad})")

    def astype(self, dtype):
        from .ops.elementwise import Cast

        return Cast.apply(self, dtype=np.dtype(dtype))

    # --- operators ---------------------------------------------------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __pow__(self, exponent):
        return _ops().pow(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    # readable shortcuts for the most used generic ops
    def sum(self, axis=None, keepdims: bool = False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return _ops().max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return _ops().transpose(self, axes if axes else None)

    @property
    def T(self):
        return _ops().transpose(self, None)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)


def _ops():
    from . import ops

    return ops
