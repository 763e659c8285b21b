"""Tests of gradcheck itself: it must catch wrong backwards and say where."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
from minimtl import Function
from minimtl.gradcheck import GradcheckError


def T(a, grad=True, dtype=np.float64):
    return mt.tensor(np.asarray(a, dtype=dtype), backend="numpy", requires_grad=grad)


def _square_with_scaled_grad(scale):
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save(x)
            return x * x

        @staticmethod
        def backward(ctx, gy):
            (x,) = ctx.saved
            return (scale * 2 * x * gy,)

    return Square


X = np.array([[0.7, -1.3, 2.1], [0.4, 1.9, -0.6]])


def test_correct_backward_passes_in_both_modes():
    sq = _square_with_scaled_grad(1.0)
    assert mt.gradcheck(sq.apply, [T(X)], mode="full")
    assert mt.gradcheck(sq.apply, [T(X)], mode="fast")


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_planted_wrong_backward_fails_and_names_entries(mode):
    sq = _square_with_scaled_grad(1.01)
    with pytest.raises(GradcheckError) as err:
        mt.gradcheck(sq.apply, [T(X)], mode=mode)
    msg = str(err.value)
    assert "Jacobian mismatch for output 0 w.r.t. input 0" in msg
    assert "numerical" in msg and "analytical" in msg


def test_wrong_backward_returns_false_without_raising():
    sq = _square_with_scaled_grad(1.5)
    assert mt.gradcheck(sq.apply, [T(X)], raise_exception=False) is False


def test_wrong_gradient_for_second_input_is_attributed_to_it():
    class MulBadB(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save(a, b)
            return a * b

        @staticmethod
        def backward(ctx, gy):
            a, b = ctx.saved
            return gy * b, gy * a * 0.5

    with pytest.raises(GradcheckError, match="w.r.t. input 1"):
        mt.gradcheck(MulBadB.apply, [T(X), T(X + 1)])


def test_float32_inputs_are_refused():
    with pytest.raises(TypeError, match="float64"):
        mt.gradcheck(lambda x: x * x, [T(X, dtype=np.float32)])


def test_in_place_mutation_of_an_input_is_reported():
    def mutating(x):
        x.data[0, 0] += 1.0
        return x * 2.0

    with pytest.raises(GradcheckError, match="modified input 0"):
        mt.gradcheck(mutating, [T(X)])


def test_nondeterministic_backward_is_reported():
    rng = np.random.default_rng(0)

    class Noisy(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, gy):
            return (gy * (1.0 + 1e-9 * rng.standard_normal()),)

    with pytest.raises(GradcheckError, match="not deterministic"):
        mt.gradcheck(Noisy.apply, [T(X)])


def test_gradient_through_an_ignored_input_is_checked_as_zero():
    class ForgetsB(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, gy):
            return gy, None  # b's gradient silently dropped: must be caught

    with pytest.raises(GradcheckError, match="input 1"):
        mt.gradcheck(ForgetsB.apply, [T(X), T(X)])


def test_multiple_outputs_are_each_checked():
    class TwoOut(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save(x)
            return x * 2.0, x * x

        @staticmethod
        def backward(ctx, ga, gb):
            (x,) = ctx.saved
            g = 0
            if ga is not None:
                g = g + 2.0 * ga
            if gb is not None:
                g = g + 3.0 * x * gb  # wrong: should be 2x
            return (g,)

    with pytest.raises(GradcheckError, match="output 1"):
        mt.gradcheck(TwoOut.apply, [T(X)])


def test_non_tensor_arguments_pass_through():
    assert mt.gradcheck(lambda x, k: x * float(k), [T(X), 3])


def test_grads_of_inputs_are_restored_afterwards():
    x = T(X)
    x.grad = np.full_like(X, 7.0)
    mt.gradcheck(lambda a: a * a, [x])
    np.testing.assert_array_equal(x.grad, np.full_like(X, 7.0))
