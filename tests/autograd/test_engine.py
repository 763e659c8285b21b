"""The autograd engine: chain rule, accumulation, broadcasting, graph lifetime, errors."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import minimtl as mt
from minimtl import Function, ops


def T(a, grad=True, backend="numpy", dtype=np.float64):
    return mt.tensor(np.asarray(a, dtype=dtype), backend=backend, requires_grad=grad)


def test_chain_rule_of_composed_elementwise_ops():
    x = T([0.3, -1.2, 2.0])
    y = (x * x).tanh().sum()
    y.backward()
    xv = x.data
    expected = (1 - np.tanh(xv**2) ** 2) * 2 * xv
    np.testing.assert_allclose(x.grad, expected, rtol=1e-14)


def test_fan_out_gradients_accumulate_x_times_x():
    x = T([1.5, -2.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_diamond_graph_accumulates_both_paths():
    x = T([0.5, 1.0])
    a = x * 3.0
    b = x.exp()
    (a + b).sum().backward()
    np.testing.assert_allclose(x.grad, 3.0 + np.exp(x.data), rtol=1e-15)


def test_backward_twice_accumulates_into_leaf_grad():
    x = T([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_broadcast_gradients_are_summed_back_to_input_shape():
    a = T(np.ones((3, 4)))
    b = T(np.arange(4.0))          # broadcast over rows
    c = T(np.arange(3.0).reshape(3, 1))  # broadcast over columns
    ((a * b) + c).sum().backward()
    np.testing.assert_array_equal(b.grad, np.full(4, 3.0))
    np.testing.assert_array_equal(c.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(a.grad, np.broadcast_to(np.arange(4.0), (3, 4)))


def test_scalar_python_operands_take_tensor_dtype():
    x = T([1.0, 2.0], dtype=np.float32)
    y = 2 * x + 1 - x / 2
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.5, 1.5])


def test_long_unrolled_recurrence_backpropagates_without_recursion_error():
    x = T([0.5])
    h = x
    for _ in range(2000):
        h = (h * 0.999).tanh() + x * 0.001
    h.sum().backward()
    assert np.isfinite(x.grad).all() and x.grad[0] != 0


def test_no_grad_records_no_graph():
    x = T([1.0])
    with mt.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_detach_stops_gradient():
    x = T([3.0])
    y = (x * x.detach()).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0])


def test_graph_is_freed_after_backward():
    x = T(np.ones(5))
    y = x.exp() * 3.0  # Mul saves the intermediate exp(x), which nothing else holds
    ref = weakref.ref(y._node.ctx.saved[0])
    y.sum().backward()
    gc.collect()
    assert ref() is None, "saved arrays should be released after backward"
    with pytest.raises(RuntimeError, match="already freed|does not require grad"):
        y.sum().backward()


def test_retain_graph_allows_second_backward():
    x = T([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, 4 * x.data)


def test_backend_mismatch_names_both_backends():
    a = T([1.0], backend="numpy")
    b = T([1.0], backend="numba")
    with pytest.raises(ValueError, match=r"numpy.*numba|numba.*numpy"):
        a + b


def test_mixed_dtypes_are_rejected_with_both_dtypes_named():
    a = T([1.0], dtype=np.float32)
    b = T([1.0], dtype=np.float64)
    with pytest.raises(TypeError, match="float32.*float64"):
        a * b


def test_operations_leave_inputs_untouched():
    data = np.array([[1.0, -2.0], [3.0, 0.5]])
    x = T(data.copy())
    y = ((x @ x).relu() + x.sigmoid()).sum()
    y.backward()
    np.testing.assert_array_equal(x.data, data)


def test_failed_backward_leaves_no_partial_gradient():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, gy):
            return (gy[:1],)  # wrong shape: must be caught by the engine

    x = T([1.0, 2.0])
    w = T([5.0, 6.0])
    y = (BadShape.apply(x) + w * 2.0).sum()
    with pytest.raises(RuntimeError, match="BadShape.*gradient"):
        y.backward()
    assert x.grad is None and w.grad is None


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="float32 or float64"):
        mt.tensor(np.arange(3), backend="numpy", requires_grad=True)


def test_non_scalar_backward_needs_gradient():
    x = T([1.0, 2.0])
    with pytest.raises(RuntimeError, match="gradient must be given"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_unknown_and_unavailable_backends_fail_clearly():
    with pytest.raises(ValueError, match="unknown backend"):
        mt.tensor([1.0], backend="tpu")
    if "cupy" not in mt.available_backends():
        with pytest.raises(RuntimeError, match="not available"):
            mt.tensor([1.0], backend="cupy")


def test_to_moves_between_cpu_backends_as_a_leaf_copy():
    x = T([1.0, 2.0], backend="numpy")
    y = x.to("numba")
    assert y.backend == "numba" and y.requires_grad and y.is_leaf
    y.data[0] = 7.0
    assert x.data[0] == 1.0


def test_use_backend_sets_and_restores_default():
    before = mt.default_backend()
    with mt.use_backend("numpy"):
        assert mt.tensor([1.0]).backend == "numpy"
    assert mt.default_backend() == before


def test_indexing_with_repeated_integer_indices_scatter_adds():
    x = T(np.arange(6.0).reshape(3, 2))
    y = x[np.array([0, 2, 0])]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 2], [0, 0], [1, 1]])


def test_slicing_gradient_is_zero_outside_the_slice():
    x = T(np.arange(5.0))
    x[1:3].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 0, 0])


def test_multi_output_function_gets_none_for_unused_output():
    seen = {}

    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, ga, gb):
            seen["gb"] = gb
            return (ga * 2.0,)

    x = T([1.0])
    a, _ = Split.apply(x)
    a.sum().backward()
    assert seen["gb"] is None
    np.testing.assert_array_equal(x.grad, [2.0])


def test_backward_gets_c_contiguous_gradients_even_behind_a_transpose_and_a_slice():
    """The walk makes every incoming gradient C-contiguous once, so no op has to."""
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, gy):
            seen.append((gy.flags.c_contiguous, gy.copy()))
            return (gy,)

    x = T(np.arange(12.0).reshape(3, 4))
    w = np.arange(24.0).reshape(4, 6)
    (Probe.apply(x).T * T(w[:, ::2].copy(), grad=False)).sum().backward()
    assert seen[0][0]
    np.testing.assert_array_equal(seen[0][1], w[:, ::2].T)
    np.testing.assert_array_equal(x.grad, w[:, ::2].T)


def test_gradients_for_inputs_that_need_none_are_never_accumulated():
    """A backward may return anything for an input whose needs_grad is false (here a
    gradient of the wrong shape): the walk neither checks nor keeps it."""
    needs = {}

    class Careless(Function):
        @staticmethod
        def forward(ctx, a, b):
            needs["a"], needs["b"] = ctx.needs_grad
            return a * b

        @staticmethod
        def backward(ctx, gy):
            return gy * 2.0, np.zeros(7)

    a, b = T([1.0, 2.0]), T([3.0, 4.0], grad=False)
    Careless.apply(a, b).sum().backward()
    assert needs == {"a": True, "b": False}
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    assert b.grad is None


def test_matmul_batched_broadcast_gradient():
    a = T(np.random.default_rng(0).standard_normal((2, 3, 4)))
    b = T(np.random.default_rng(1).standard_normal((4, 5)))
    (a @ b).sum().backward()
    np.testing.assert_allclose(b.grad, a.data.sum(axis=(0, 1))[:, None] * np.ones((4, 5)))
    assert a.grad.shape == (2, 3, 4)


def test_reshape_error_names_the_shapes():
    x = T(np.zeros(6))
    with pytest.raises(ValueError, match=r"reshape.*\(6,\).*\(4, 2\)"):
        ops.reshape(x, (4, 2))


def test_importing_minimtl_loads_neither_numba_nor_cupy():
    import subprocess
    import sys

    code = ("import sys, minimtl, minimtl.functional, minimtl.nn, minimtl.models, "
            "minimtl.train, minimtl.optim, kernels; "
            "print('numba' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_python_numbers_become_float32_and_arrays_keep_their_dtype():
    import minimtl as mt

    assert mt.tensor([1.0, 2.0]).dtype == np.float32
    assert mt.tensor(3.0).dtype == np.float32
    assert mt.tensor([[1, 2]]).dtype == np.int64            # ints stay ints, as in PyTorch
    assert mt.tensor(np.array([1.0])).dtype == np.float64   # arrays: as given
    assert mt.tensor(np.float64(1.0)).dtype == np.float64
    assert mt.tensor(np.arange(3, dtype=np.int64)).dtype == np.int64
    # so a layer (float32) takes a tensor of Python numbers without a dtype error
    out = mt.nn.Linear(3, 4)(mt.tensor([[1.0, 2.0, 3.0]]))
    assert out.shape == (1, 4) and out.dtype == np.float32
