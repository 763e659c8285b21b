"""Initialisers: bounds, empirical moments, orthogonality, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimtl import nn
from minimtl.nn import init


def test_glorot_uniform_bounds_mean_and_variance():
    fan_in, fan_out = 128 * 3, 256 * 3
    w = init.glorot_uniform((256, 128, 3), fan_in, fan_out, np.random.default_rng(0),
                            np.float64)
    a = math.sqrt(6 / (fan_in + fan_out))
    assert w.shape == (256, 128, 3) and w.dtype == np.float64
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.999 * a
    # Var U(−a, a) = a²/3 = 2/(fan_in + fan_out); n ≈ 98k samples: relative s.e. ≈ 0.3 %
    assert w.var() == pytest.approx(2 / (fan_in + fan_out), rel=0.02)
    assert abs(w.mean()) < 4 * a / math.sqrt(3 * w.size)


def test_initialisers_are_reproducible_from_the_generator_and_honour_dtype():
    a = init.glorot_uniform((5, 4), 4, 5, np.random.default_rng(7), np.float32)
    b = init.glorot_uniform((5, 4), 4, 5, np.random.default_rng(7), np.float32)
    c = init.glorot_uniform((5, 4), 4, 5, np.random.default_rng(8), np.float32)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert init.uniform((3,), 0.1, np.random.default_rng(0), np.float64).dtype == np.float64


def test_uniform_bounds_and_variance():
    bound = 1 / math.sqrt(64)
    w = init.uniform((200, 300), bound, np.random.default_rng(1), np.float64)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.02)


def test_zeros():
    z = init.zeros((2, 3), np.float64)
    assert z.dtype == np.float64 and z.shape == (2, 3) and not z.any()


@pytest.mark.parametrize("shape", [(6, 6), (4, 10), (12, 3), (8, 2, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = init.orthogonal(shape, np.random.default_rng(2), gain=2.0, dtype=np.float64)
    assert w.shape == shape
    m = w.reshape(shape[0], -1) / 2.0
    small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(small, np.eye(min(m.shape)), atol=1e-12)


def test_glorot_rejects_empty_fans():
    with pytest.raises(ValueError, match="fans"):
        init.glorot_uniform((1, 0), 0, 1, np.random.default_rng(0))


def test_dense_and_conv1d_use_keras_fans():
    # Dense: fan_in = D, fan_out = O.  Conv1D: fan_in = C·K, fan_out = O·K.
    lin = nn.Linear(300, 200, rng=np.random.default_rng(3), dtype=np.float64,
                    backend="numpy")
    conv = nn.Conv1d(64, 128, 5, rng=np.random.default_rng(4), dtype=np.float64,
                     backend="numpy")
    for w, fan_in, fan_out in ((lin.weight.numpy(), 300, 200),
                               (conv.weight.numpy(), 64 * 5, 128 * 5)):
        a = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
        assert w.var() == pytest.approx(a * a / 3, rel=0.03)
    assert not lin.bias.numpy().any() and not conv.bias.numpy().any()


@pytest.mark.parametrize("layer, gates", [(nn.RNN, 1), (nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_layers_use_pytorch_uniform_init(layer, gates):
    hidden = 50
    m = layer(30, hidden, rng=np.random.default_rng(5), dtype=np.float64, backend="numpy")
    bound = 1 / math.sqrt(hidden)
    values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    assert values.size == gates * hidden * (30 + hidden + 2)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound
    assert values.var() == pytest.approx(bound**2 / 3, rel=0.1)
