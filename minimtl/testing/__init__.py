"""Hypothesis strategies for property-testing operators (the ones minimtl's own tests use).

Needs ``hypothesis`` (the ``test`` extra). Every strategy draws finite values without
subnormals (CuPy flushes float32 subnormals to zero, so they would break cross-backend
agreement), from small shapes, so that each example runs in milliseconds.

Example: property-test and gradient-check your own operator::

    from hypothesis import given, strategies as st
    import minimtl as mt
    from minimtl.testing import arrays, conv1d_params, tensors

    @given(st.data())
    def test_conv1d_is_linear_in_x(data):
        x = data.draw(arrays((2, 3, 9), "float64"))
        x2 = data.draw(arrays((2, 3, 9), "float64"))
        w = data.draw(arrays((4, 3, 2), "float64"))
        p = data.draw(conv1d_params(length=9, kernel_size=2))
        f = lambda a: mt.functional.conv1d(mt.tensor(a), mt.tensor(w), **p).numpy()
        assert np.allclose(f(x + x2), f(x) + f(x2))

    @given(tensors((3, 4), "float64", requires_grad=True))
    def test_my_op_gradient(x):
        assert mt.gradcheck(my_op, [x])
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "elements",
    "arrays",
    "shapes",
    "ncl_shapes",
    "conv1d_params",
    "pool1d_params",
    "distinct_arrays",
    "labels",
    "tensors",
]


def elements(dtype="float64", min_value: float = -10.0, max_value: float = 10.0,
             min_magnitude: float = 0.0):
    """Finite floats of ``dtype`` in [min_value, max_value], no NaN, inf or subnormals.

    The bounds are rounded inwards to ``dtype`` (Hypothesis needs representable bounds).
    Values with |v| < ``min_magnitude`` become 0: products of two tiny float32 values are
    subnormal, which CuPy flushes to zero while NumPy keeps them, so cross-backend tests
    of products use e.g. ``min_magnitude=1e-6``.
    """
    width = 32 if np.dtype(dtype) == np.float32 else 64
    if width == 32:
        lo, hi = np.float32(min_value), np.float32(max_value)
        min_value = float(lo if lo >= min_value else np.nextafter(lo, np.float32(np.inf)))
        max_value = float(hi if hi <= max_value else np.nextafter(hi, np.float32(-np.inf)))
    values = st.floats(
        min_value,
        max_value,
        width=width,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )
    if min_magnitude > 0:
        values = values.map(lambda v: 0.0 if abs(v) < min_magnitude else v)
    return values


def arrays(shape, dtype="float64", min_value: float = -10.0, max_value: float = 10.0,
           min_magnitude: float = 0.0):
    """NumPy arrays of ``shape`` (a tuple or a strategy of tuples) with ``elements``."""
    return hnp.arrays(np.dtype(dtype), shape,
                      elements=elements(dtype, min_value, max_value, min_magnitude))


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 5):
    """Small array shapes."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


@st.composite
def ncl_shapes(draw, max_n: int = 3, max_c: int = 4, min_l: int = 1, max_l: int = 16):
    """(N, C, L) shapes for conv/pool inputs: N ≤ 3, C ≤ 4, L ≤ 16 by default."""
    return (
        draw(st.integers(1, max_n)),
        draw(st.integers(1, max_c)),
        draw(st.integers(min_l, max_l)),
    )


@st.composite
def conv1d_params(draw, length: int, kernel_size: int):
    """``dict(stride, padding, dilation)`` valid for a conv1d of window ``kernel_size``
    over ``length`` samples: the dilated window always fits the padded input."""
    padding = draw(st.integers(0, 2))
    span_max = length + 2 * padding  # the dilated window must fit
    max_dilation = max(1, (span_max - 1) // max(kernel_size - 1, 1)) if kernel_size > 1 else 3
    dilation = draw(st.integers(1, max(1, min(3, max_dilation))))
    if dilation * (kernel_size - 1) + 1 > span_max:
        # even dilation 1 does not fit: pad enough for the window
        padding = (kernel_size - length + 1) // 2 + 1
        dilation = 1
    stride = draw(st.integers(1, 3))
    return dict(stride=stride, padding=padding, dilation=dilation)


@st.composite
def pool1d_params(draw, length: int):
    """``dict(kernel_size, stride, padding)`` valid for a pool over ``length`` samples
    (padding ≤ kernel_size // 2 as PyTorch requires, window ≤ padded length)."""
    kernel_size = draw(st.integers(1, min(length, 5)))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel_size // 2))
    return dict(kernel_size=kernel_size, stride=stride, padding=padding)


@st.composite
def distinct_arrays(draw, shape, dtype="float64", gap: float = 0.01):
    """Arrays whose values are pairwise at least ``gap`` apart (a scaled, shifted random
    permutation): max-pool and ReLU have no ties or kinks within a finite-difference eps."""
    shape = tuple(shape)
    size = int(np.prod(shape))
    perm = draw(st.permutations(list(range(size))))
    offset = draw(st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False))
    values = np.asarray(perm, dtype=np.float64) * gap + offset - 0.5 * gap * size
    return values.reshape(shape).astype(dtype)


def labels(n: int, classes: int):
    """Integer class labels, shape (n,), int64 in [0, classes)."""
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))


@st.composite
def tensors(draw, shape, dtype="float64", requires_grad: bool = False, backend: str | None = None):
    """minimtl Tensors drawn with ``arrays``."""
    from minimtl import tensor

    data = draw(arrays(shape, dtype))
    return tensor(data, backend=backend, requires_grad=requires_grad)
