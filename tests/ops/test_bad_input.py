"""Bad input fails early with ValueError/TypeError naming the operator and the shapes, and
leaves no gradient behind."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
import minimtl.functional as F


def T(shape, dtype=np.float64, grad=True, backend="numpy"):
    data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    return mt.tensor(data, backend=backend, requires_grad=grad)


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: F.conv1d(T((2, 3, 8)), T((4, 5, 3))), ValueError,
     r"conv1d: x \(2, 3, 8\) has 3 channels but weight \(4, 5, 3\)"),
    (lambda: F.conv1d(T((2, 3, 8)), T((4, 3, 3), np.float32)), TypeError,
     r"conv1d: dtypes differ.*float64.*float32"),
    (lambda: F.conv1d(T((2, 3, 2)), T((4, 3, 3))), ValueError,
     r"conv1d: window 3 .* longer than the padded input: x \(2, 3, 2\)"),
    (lambda: F.conv1d(T((2, 3, 8)), T((4, 3, 3)), stride=-1), ValueError,
     r"conv1d: stride must be a positive integer, got -1"),
    (lambda: F.conv1d(T((2, 3, 8)), T((4, 3, 3)), T((5,))), ValueError,
     r"conv1d: bias \(5,\) does not match weight \(4, 3, 3\)"),
    (lambda: F.conv1d(T((3, 8)), T((4, 3, 3))), ValueError,
     r"conv1d: x must be 3-D \(N, C, L\), got shape \(3, 8\)"),
    (lambda: F.conv1d(T((2, 8, 3)), T((4, 5, 3)), channels_last=True), ValueError,
     r"conv1d: x \(2, 8, 3\) has 3 channels but weight \(4, 5, 3\) expects 5 "
     r"\(channels-last: x is \(N, L, C\)\)"),
    (lambda: F.conv1d_relu(T((2, 2, 3)), T((4, 3, 3)), channels_last=True), ValueError,
     r"conv1d_relu: window 3 .* longer than the padded input: x \(2, 2, 3\)"),
    (lambda: F.conv1d_relu_maxpool1d(T((2, 3, 8)), T((4, 3, 3)), pool_size=7), ValueError,
     r"conv1d_relu_maxpool: pool window 7 is longer than the padded convolution output "
     r"\(6 \+ 2·0\)"),
    (lambda: F.max_pool1d(T((2, 2, 8)), 3, channels_last=True), ValueError,
     r"max_pool1d: window 3 is longer than the padded input: x \(2, 2, 8\)"),
    (lambda: F.max_pool1d(T((2, 3, 2)), 3, padding=0), ValueError,
     r"max_pool1d: window 3 is longer than the padded input: x \(2, 3, 2\)"),
    (lambda: F.max_pool1d(T((2, 3, 8)), 2, stride=0), ValueError,
     r"max_pool1d: stride must be a positive integer"),
    (lambda: F.avg_pool1d(T((2, 3, 8)), 2, padding=2), ValueError,
     r"avg_pool1d: padding must lie in \[0, kernel_size // 2 = 1\], got 2"),
    (lambda: F.max_pool1d(T((2, 3, 8), np.int64, grad=False), 2), TypeError,
     r"max_pool1d: x must be float32 or float64, got int64"),
    (lambda: F.lstm(T((2, 5, 3)), T((16, 4)), T((16, 4)), T((16,)), T((16,))), ValueError,
     r"lstm: w_ih has shape \(16, 4\), expected \(16, 3\) for x \(2, 5, 3\)"),
    (lambda: F.gru(T((2, 0, 3)), T((12, 3)), T((12, 4)), T((12,)), T((12,))), ValueError,
     r"gru: the sequence is empty: x \(2, 0, 3\)"),
    (lambda: F.cross_entropy(T((3, 4)), np.array([0, 4, 1])), ValueError,
     r"cross_entropy: labels must lie in \[0, 4\), got range \[0, 4\]"),
    (lambda: F.cross_entropy(T((3, 4)), np.array([0, 1])), ValueError,
     r"cross_entropy: labels shape \(2,\) does not match 3 rows"),
    (lambda: F.binary_cross_entropy_with_logits(T((3, 4)), np.zeros((3, 5))), ValueError,
     r"bce_with_logits: logits \(3, 4\) and target \(3, 5\) must have the same shape"),
    (lambda: F.linear(T((3, 4)), T((2, 5))), ValueError,
     r"linear: x \(3, 4\) and weight \(2, 5\) do not fit"),
    (lambda: F.conv1d(T((2, 3, 8)), T((4, 3, 3), backend="numba")), ValueError,
     r"conv1d: inputs live on different backends \(numpy\(2, 3, 8\), numba\(4, 3, 3\)"),
])
def test_bad_input_names_the_operator_and_the_shapes(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_error_during_forward_leaves_earlier_gradients_untouched():
    x, w = T((2, 3, 8)), T((4, 3, 3))
    F.conv1d(x, w).sum().backward()
    gx, gw = x.grad.copy(), w.grad.copy()
    with pytest.raises(ValueError):
        (F.conv1d(x, w) + F.conv1d(x, T((4, 3, 9)))).sum().backward()
    np.testing.assert_array_equal(x.grad, gx)
    np.testing.assert_array_equal(w.grad, gw)
