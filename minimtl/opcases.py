"""A catalogue of small float64 cases, one or more per operator, for gradient checking.

Used by ``minimtl gradcheck`` and by the test suite. Each case is ``(fn, arrays)``:
``fn(*tensors)`` applies the op; ``arrays(rng)`` draws its float64 inputs. Inputs of
max-like ops (max, max-pool, ReLU) are drawn distinct, at least a gap apart, so that no tie
or kink lies within the finite-difference step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import functional as F

__all__ = ["GENERIC", "HEAVY", "CASES"]

Case = tuple[Callable, Callable[[np.random.Generator], list[np.ndarray]]]


def _u(rng, *shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, shape)


def _distinct(rng, *shape, gap=0.05):
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - gap * n / 2 + 0.013).reshape(shape)


def _rnn(rng, gates, n=2, t=3, d=3, h=4):
    return [_u(rng, n, t, d), _u(rng, n, h), _u(rng, gates * h, d), _u(rng, gates * h, h),
            _u(rng, gates * h), _u(rng, gates * h)]


def _conv(rng):
    return [_distinct(rng, 2, 3, 9, gap=0.01), _u(rng, 4, 3, 3), _u(rng, 4)]


_MASK = np.array([True, False, True])
_BIN = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.3]])

GENERIC: dict[str, Case] = {
    "add": (lambda a, b: a + b, lambda r: [_u(r, 2, 3), _u(r, 3)]),
    "sub": (lambda a, b: a - b, lambda r: [_u(r, 2, 3), _u(r, 2, 1)]),
    "mul": (lambda a, b: a * b, lambda r: [_u(r, 2, 3), _u(r, 1, 3)]),
    "div": (lambda a, b: a / b, lambda r: [_u(r, 2, 3), _u(r, 2, 3, low=0.5, high=2.0)]),
    "neg": (lambda a: -a, lambda r: [_u(r, 4)]),
    "pow": (lambda a: a**3.5, lambda r: [_u(r, 2, 3, low=0.5, high=2.0)]),
    "exp": (lambda a: a.exp(), lambda r: [_u(r, 2, 3)]),
    "log": (lambda a: a.log(), lambda r: [_u(r, 2, 3, low=0.5, high=3.0)]),
    "sqrt": (F.sqrt, lambda r: [_u(r, 2, 3, low=0.5, high=3.0)]),
    "tanh": (lambda a: a.tanh(), lambda r: [_u(r, 2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), lambda r: [_u(r, 2, 3, low=-4, high=4)]),
    "relu": (lambda a: a.relu(), lambda r: [_distinct(r, 2, 3)]),
    "matmul": (lambda a, b: a @ b, lambda r: [_u(r, 3, 4), _u(r, 4, 2)]),
    "matmul_batched": (lambda a, b: a @ b, lambda r: [_u(r, 2, 3, 4), _u(r, 4, 2)]),
    "linear": (F.linear, lambda r: [_u(r, 3, 4), _u(r, 2, 4), _u(r, 2)]),
    "sum": (lambda a: a.sum(axis=1, keepdims=True), lambda r: [_u(r, 2, 3, 2)]),
    "mean": (lambda a: a.mean(axis=(0, 2)), lambda r: [_u(r, 2, 3, 2)]),
    "max": (lambda a: a.max(axis=1), lambda r: [_distinct(r, 3, 4)]),
    "reshape": (lambda a: a.reshape(3, 2) * a.reshape(3, 2), lambda r: [_u(r, 2, 3)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda r: [_u(r, 2, 3, 4)]),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=1),
                    lambda r: [_u(r, 2, 3), _u(r, 2, 2)]),
    "stack": (lambda a, b: F.stack([a, b], axis=1), lambda r: [_u(r, 2, 3), _u(r, 2, 3)]),
    "slice": (lambda a: a[1:, ::2], lambda r: [_u(r, 3, 5)]),
    "index_array": (lambda a: a[np.array([0, 2, 0, 1])], lambda r: [_u(r, 3, 2)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 1], [0, 2]]), w),
                  lambda r: [_u(r, 3, 4)]),
    "flatten": (F.flatten, lambda r: [_u(r, 2, 3, 2)]),
    "dropout": (lambda a: F.dropout(a, 0.5, rng=np.random.default_rng(0)),
                lambda r: [_u(r, 4, 5)]),
    "where": (lambda a, b: F.where(_MASK, a, b), lambda r: [_u(r, 3), _u(r, 3)]),
}

HEAVY: dict[str, Case] = {
    "conv1d": (F.conv1d, _conv),
    "conv1d_stride_pad_dilation": (
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=(2, 1), dilation=2), _conv),
    "conv1d_same_no_bias": (lambda x, w: F.conv1d(x, w, padding="same"),
                            lambda r: _conv(r)[:2]),
    "conv1d_relu": (F.conv1d_relu, _conv),
    "conv1d_channels_last": (
        lambda x, w, b: F.conv1d(x.transpose(0, 2, 1), w, b, stride=2, padding=(2, 1),
                                 dilation=2, channels_last=True), _conv),
    "conv1d_relu_maxpool1d": (F.conv1d_relu_maxpool1d, _conv),
    "conv1d_relu_maxpool1d_channels_last_overlap": (
        lambda x, w, b: F.conv1d_relu_maxpool1d(x.transpose(0, 2, 1), w, b, padding=1,
                                                pool_size=3, pool_stride=2, pool_padding=1,
                                                channels_last=True), _conv),
    "max_pool1d": (lambda x: F.max_pool1d(x, 2), lambda r: [_distinct(r, 2, 3, 8)]),
    "max_pool1d_channels_last": (
        lambda x: F.max_pool1d(x, 3, stride=2, padding=1, channels_last=True),
        lambda r: [_distinct(r, 2, 9, 2)]),
    "max_pool1d_overlap_pad": (lambda x: F.max_pool1d(x, 3, stride=2, padding=1),
                               lambda r: [_distinct(r, 2, 2, 9)]),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, stride=2, padding=1),
                   lambda r: [_u(r, 2, 3, 8)]),
    "avg_pool1d_channels_last": (
        lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, channels_last=True),
        lambda r: [_u(r, 2, 8, 3)]),
    "rnn": (lambda x, h0, a, b, c, d: F.rnn(x, a, b, c, d, h0=h0)[0], lambda r: _rnn(r, 1)),
    "lstm": (lambda x, h0, a, b, c, d: F.lstm(x, a, b, c, d, h0=h0)[0],
             lambda r: _rnn(r, 4)),
    "lstm_final_cell": (
        lambda x, h0, c0, a, b, c, d: F.lstm(x, a, b, c, d, h0=h0, c0=c0)[1][1],
        lambda r: [_u(r, 2, 3, 3), _u(r, 2, 4), _u(r, 2, 4), _u(r, 16, 3), _u(r, 16, 4),
                   _u(r, 16), _u(r, 16)]),
    "gru": (lambda x, h0, a, b, c, d: F.gru(x, a, b, c, d, h0=h0)[0], lambda r: _rnn(r, 3)),
    "softmax": (lambda x: F.softmax(x, axis=1), lambda r: [_u(r, 2, 4, 3, low=-3, high=3)]),
    "log_softmax": (F.log_softmax, lambda r: [_u(r, 3, 5, low=-3, high=3)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([0, 3, 1])),
                      lambda r: [_u(r, 3, 4, low=-3, high=3)]),
    "cross_entropy_probs": (lambda x, p: F.cross_entropy(x, p, reduction="sum"),
                            lambda r: [_u(r, 3, 4, low=-3, high=3),
                                       _u(r, 3, 4, low=0.1, high=1.0)]),
    "bce_with_logits": (lambda z: F.binary_cross_entropy_with_logits(z, _BIN),
                        lambda r: [_u(r, 2, 3, low=-4, high=4)]),
    "bce": (lambda p: F.binary_cross_entropy(p, _BIN),
            lambda r: [_u(r, 2, 3, low=0.05, high=0.95)]),
    "mse": (F.mse_loss, lambda r: [_u(r, 2, 3), _u(r, 2, 3)]),
}

CASES: dict[str, Case] = {**GENERIC, **HEAVY}
