"""Every differentiable op as a ``Function`` (forward + backward, nothing else), and the
thin helpers ``Tensor``'s operators call. User-facing functions live in
``minimtl.functional``."""

from __future__ import annotations

import functools

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from .conv import Conv1d, Conv1dRelu, Conv1dReluMaxPool
from .elementwise import (
    Add,
    Cast,
    Div,
    Exp,
    Log,
    Mul,
    Neg,
    Pow,
    Relu,
    Sigmoid,
    Sqrt,
    Sub,
    Tanh,
    Where,
)
from .head_losses import HeadLosses
from .linalg import Linear, MatMul
from .loss import BCE, MSE, BCEWithLogits, CrossEntropy, SoftCrossEntropy
from .pool import AvgPool1d, MaxPool1d
from .reduce import Max, Mean, Sum
from .rnn import GRU, LSTM, RNN
from .shape import Concat, GetItem, Reshape, Stack, Transpose
from .softmax import LogSoftmax, Softmax

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid",
    "Relu", "Cast", "Where", "Sum", "Mean", "Max", "Reshape", "Transpose", "Concat", "Stack",
    "GetItem", "MatMul", "Linear", "Conv1d", "Conv1dRelu", "Conv1dReluMaxPool",
    "MaxPool1d", "AvgPool1d", "RNN",
    "LSTM", "GRU", "Softmax", "LogSoftmax", "CrossEntropy", "SoftCrossEntropy",
    "BCEWithLogits", "BCE", "MSE", "HeadLosses",
]


def as_tensor(value, like: Tensor) -> Tensor:
    """``value`` as a Tensor on ``like``'s backend; Python numbers take ``like``'s dtype.
    On a GPU a number is uploaded once and kept (``x * 0.5`` in every step would otherwise
    be a host-to-device copy in every step, which a CUDA graph cannot even capture)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float)):
        if like.backend != "cupy":
            return Tensor(np.asarray(value, dtype=like.dtype), backend=like.backend)
        key = (type(value).__name__, repr(value), np.dtype(like.dtype).str)
        return Tensor(_device_constant(key, value), backend=like.backend)
    return Tensor(value, backend=like.backend)


@functools.lru_cache(maxsize=256)
def _device_constant(key: tuple, value):
    """A 0-d cupy array holding ``value`` in the dtype of ``key`` (never written: ops do
    not write their inputs)."""
    return xp_of("cupy").asarray(np.asarray(value, dtype=np.dtype(key[2])))


def _binary(fn, a, b):
    if not isinstance(a, Tensor):
        a = as_tensor(a, b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, a)
    if a.dtype != b.dtype:
        raise TypeError(f"{fn.__name__.lower()}: dtypes differ ({a.dtype} {a.shape} and "
                        f"{b.dtype} {b.shape}); cast with .astype first")
    try:
        return fn.apply(a, b)
    except ValueError:
        if fn is not MatMul and a.shape != b.shape:       # NumPy's message names no op
            try:
                np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                raise ValueError(f"{fn.__name__.lower()}: shapes {a.shape} and {b.shape} "
                                 f"do not broadcast") from None
        raise


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


def matmul(a, b):
    return _binary(MatMul, a, b)


def neg(x):
    return Neg.apply(x)


def pow(x, p):
    if isinstance(p, Tensor):
        raise TypeError("pow: the exponent must be a Python number")
    return Pow.apply(x, p=p)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return Relu.apply(x)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy
    return Max.apply(x, axis=axis, keepdims=keepdims)


def reshape(x, shape):
    return Reshape.apply(x, shape=tuple(shape) if not isinstance(shape, int) else (shape,))


def transpose(x, axes=None):
    return Transpose.apply(x, axes=axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index=index)
