"""Every operator passes gradcheck in float64: generic ops on the numpy backend, heavy ops
on every backend (each dispatches to that backend's kernels). The cases live in
``minimtl.opcases`` so that ``minimtl gradcheck`` checks exactly the same things."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
from minimtl import ops
from minimtl.opcases import GENERIC, HEAVY
from tests._util import tensor_backend


def _tensors(arrays, backend):
    return [mt.tensor(a, backend=backend, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name", list(GENERIC))
def test_generic_op_passes_gradcheck(name):
    fn, make = GENERIC[name]
    assert mt.gradcheck(fn, _tensors(make(np.random.default_rng(7)), "numpy"))


@pytest.mark.parametrize("name", list(HEAVY))
def test_heavy_op_passes_gradcheck(name, backend, monkeypatch):
    fn, make = HEAVY[name]
    backend = tensor_backend(backend, monkeypatch)
    assert mt.gradcheck(fn, _tensors(make(np.random.default_rng(7)), backend))


def test_lstm_passes_fast_gradcheck_at_moderate_size(backend, monkeypatch):
    backend = tensor_backend(backend, monkeypatch)
    rng = np.random.default_rng(3)
    h = 7
    arrays = [rng.uniform(-1, 1, s) for s in [(3, 6, 5), (3, h), (4 * h, 5), (4 * h, h),
                                               (4 * h,), (4 * h,)]]
    fn = HEAVY["lstm"][0]
    assert mt.gradcheck(fn, _tensors(arrays, backend), mode="fast")


def test_float32_cast_roundtrip_gradient_is_identity():
    x = mt.tensor(np.array([0.5, -1.0, 2.0]), backend="numpy", requires_grad=True)
    (x.astype(np.float32) * 1.0).astype(np.float64).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_ops_module_exports_every_function():
    for name in ops.__all__:
        assert hasattr(ops, name)
