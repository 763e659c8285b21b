"""``need_gx=False`` skips the input gradient (the network's first convolution reads data
that needs none) and leaves gw and gb exactly as the full backward computes them."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
import minimtl.functional as F
from tests._util import call

PARAMS = dict(stride=2, padding_left=1, padding_right=2, dilation=2)


@pytest.mark.parametrize("op", ["conv1d", "conv1d_relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skipping_gx_leaves_gw_and_gb_bitwise_unchanged(op, dtype, backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 17)).astype(dtype)
    w = rng.standard_normal((5, 4, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    y = call(op, backend, "fwd", x, w, b, **PARAMS)
    gy = rng.standard_normal(y.shape).astype(dtype)
    saved = (y,) if op == "conv1d_relu" else ()
    full = call(op, backend, "bwd", gy, x, w, *saved, **PARAMS)
    part = call(op, backend, "bwd", gy, x, w, *saved, **PARAMS, need_gx=False)
    assert part[0] is None and full[0].shape == x.shape
    np.testing.assert_array_equal(part[1], full[1])
    np.testing.assert_array_equal(part[2], full[2])


def test_conv_op_skips_gx_only_when_its_input_needs_no_gradient():
    rng = np.random.default_rng(6)
    data = mt.tensor(rng.standard_normal((2, 3, 9)), backend="numba")   # no grad
    w = mt.tensor(rng.standard_normal((4, 3, 3)), backend="numba", requires_grad=True)
    F.conv1d_relu(data, w).sum().backward()
    assert data.grad is None and w.grad is not None
    x = mt.tensor(data.data, backend="numba", requires_grad=True)
    F.conv1d(x, w).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
