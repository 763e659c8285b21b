"""Every operator passes gradcheck in float64 (generic ops on the numpy backend; heavy ops
on every backend, since they dispatch to that backend's kernels)."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
import minimtl.functional as F
from minimtl import ops

RNG = np.random.default_rng(1234)


def T(a, backend="numpy", grad=True):
    return mt.tensor(np.asarray(a, dtype=np.float64), backend=backend, requires_grad=grad)


def rnd(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape)


def distinct(*shape, gap=0.05):
    """Values pairwise ≥ gap apart: no ties or kinks within eps (max, relu, pool)."""
    n = int(np.prod(shape))
    return (RNG.permutation(n) * gap - gap * n / 2 + 0.013).reshape(shape)


GENERIC = {
    "add": (lambda a, b: a + b, [rnd(2, 3), rnd(3)]),
    "sub": (lambda a, b: a - b, [rnd(2, 3), rnd(2, 1)]),
    "mul": (lambda a, b: a * b, [rnd(2, 3), rnd(1, 3)]),
    "div": (lambda a, b: a / b, [rnd(2, 3), rnd(2, 3, low=0.5, high=2.0)]),
    "neg": (lambda a: -a, [rnd(4)]),
    "pow": (lambda a: a**3.5, [rnd(2, 3, low=0.5, high=2.0)]),
    "exp": (lambda a: a.exp(), [rnd(2, 3)]),
    "log": (lambda a: a.log(), [rnd(2, 3, low=0.5, high=3.0)]),
    "sqrt": (lambda a: F.sqrt(a), [rnd(2, 3, low=0.5, high=3.0)]),
    "tanh": (lambda a: a.tanh(), [rnd(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), [rnd(2, 3, low=-4, high=4)]),
    "relu": (lambda a: a.relu(), [distinct(2, 3)]),
    "matmul_2d": (lambda a, b: a @ b, [rnd(3, 4), rnd(4, 2)]),
    "matmul_batched": (lambda a, b: a @ b, [rnd(2, 3, 4), rnd(4, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [rnd(3, 4), rnd(2, 4), rnd(2)]),
    "sum_axis_keepdims": (lambda a: a.sum(axis=1, keepdims=True), [rnd(2, 3, 2)]),
    "sum_all": (lambda a: a.sum(), [rnd(2, 3)]),
    "mean_axes": (lambda a: a.mean(axis=(0, 2)), [rnd(2, 3, 2)]),
    "max_axis": (lambda a: a.max(axis=1), [distinct(3, 4)]),
    "reshape": (lambda a: a.reshape(3, 2) * a.reshape(3, 2), [rnd(2, 3)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), [rnd(2, 3, 4)]),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=1), [rnd(2, 3), rnd(2, 2)]),
    "stack": (lambda a, b: F.stack([a, b], axis=1), [rnd(2, 3), rnd(2, 3)]),
    "slice": (lambda a: a[1:, ::2], [rnd(3, 5)]),
    "int_array_index": (lambda a: a[np.array([0, 2, 0, 1])], [rnd(3, 2)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 1], [0, 2]]), w), [rnd(3, 4)]),
    "flatten": (lambda a: F.flatten(a), [rnd(2, 3, 2)]),
    "dropout": (lambda a: F.dropout(a, 0.5, rng=np.random.default_rng(0)), [rnd(4, 5)]),
    "where": (lambda a, b: F.where(np.array([True, False, True]), a, b), [rnd(3), rnd(3)]),
    "cast_roundtrip": (lambda a: (a.astype(np.float32) * 1.0).astype(np.float64),
                       [rnd(3)]),
}


@pytest.mark.parametrize("name", [k for k in GENERIC if k != "cast_roundtrip"])
def test_generic_op_passes_gradcheck(name):
    fn, arrays = GENERIC[name]
    assert mt.gradcheck(fn, [T(a) for a in arrays])


def _conv_inputs():
    return [distinct(2, 3, 9, gap=0.01), rnd(4, 3, 3), rnd(4)]


def _rnn_inputs(gates, n=2, t=3, d=3, h=4):
    return [rnd(n, t, d), rnd(n, h), rnd(gates * h, d), rnd(gates * h, h), rnd(gates * h),
            rnd(gates * h)]


HEAVY = {
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b), _conv_inputs()),
    "conv1d_stride_pad_dilation": (
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=(2, 1), dilation=2),
        _conv_inputs()),
    "conv1d_same_no_bias": (lambda x, w: F.conv1d(x, w, padding="same"), _conv_inputs()[:2]),
    "conv1d_relu": (lambda x, w, b: F.conv1d_relu(x, w, b), _conv_inputs()),
    "max_pool1d": (lambda x: F.max_pool1d(x, 2), [distinct(2, 3, 8)]),
    "max_pool1d_overlap_pad": (lambda x: F.max_pool1d(x, 3, stride=2, padding=1),
                               [distinct(2, 2, 9)]),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, stride=2, padding=1), [rnd(2, 3, 8)]),
    "rnn": (lambda x, h0, a, b, c, d: F.rnn(x, a, b, c, d, h0=h0)[0], _rnn_inputs(1)),
    "lstm": (lambda x, h0, a, b, c, d: F.lstm(x, a, b, c, d, h0=h0)[0], _rnn_inputs(4)),
    "lstm_final_cell": (lambda x, h0, c0, a, b, c, d: F.lstm(x, a, b, c, d, h0=h0, c0=c0)[1][1],
                        [rnd(2, 3, 3), rnd(2, 4), rnd(2, 4), rnd(16, 3), rnd(16, 4), rnd(16),
                         rnd(16)]),
    "gru": (lambda x, h0, a, b, c, d: F.gru(x, a, b, c, d, h0=h0)[0], _rnn_inputs(3)),
    "softmax": (lambda x: F.softmax(x, axis=1), [rnd(2, 4, 3, low=-3, high=3)]),
    "log_softmax": (lambda x: F.log_softmax(x), [rnd(3, 5, low=-3, high=3)]),
    "cross_entropy_labels": (lambda x: F.cross_entropy(x, np.array([0, 3, 1])),
                             [rnd(3, 4, low=-3, high=3)]),
    "cross_entropy_probs": (lambda x, p: F.cross_entropy(x, p, reduction="sum"),
                            [rnd(3, 4, low=-3, high=3), rnd(3, 4, low=0.1, high=1.0)]),
    "bce_with_logits": (lambda z: F.binary_cross_entropy_with_logits(
        z, np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])), [rnd(2, 3, low=-4, high=4)]),
    "bce": (lambda p: F.binary_cross_entropy(p, np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])),
            [rnd(2, 3, low=0.05, high=0.95)]),
    "mse": (lambda a, b: F.mse_loss(a, b), [rnd(2, 3), rnd(2, 3)]),
}


@pytest.mark.parametrize("name", list(HEAVY))
def test_heavy_op_passes_gradcheck(name, backend):
    fn, arrays = HEAVY[name]
    assert mt.gradcheck(fn, [T(a, backend=backend) for a in arrays])


def test_float32_cast_roundtrip_gradient_is_identity():
    x = T(rnd(3))
    GENERIC["cast_roundtrip"][0](x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_lstm_passes_fast_gradcheck_at_moderate_size(backend):
    arrays = _rnn_inputs(4, n=3, t=6, d=5, h=7)
    fn = HEAVY["lstm"][0]
    assert mt.gradcheck(fn, [T(a, backend=backend) for a in arrays], mode="fast")


def test_ops_module_exports_every_function():
    for name in ops.__all__:
        assert hasattr(ops, name)
