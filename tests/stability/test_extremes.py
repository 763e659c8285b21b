"""Fixed extreme inputs for softmax, log_softmax and the losses, on every backend: huge and
masked (−inf) logits, saturated probabilities, confident rows whose loss is ≈ 1e-9. Each
case checks that outputs and gradients are finite and have the value the math says, in
float32 and float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests._util import call

DTYPES = ("float32", "float64")
F64 = np.float64


def eps_of(dtype) -> float:
    return float(np.finfo(dtype).eps)


def huge(dtype) -> float:
    """A logit near the top of the dtype's range."""
    return 3e38 if np.dtype(dtype) == np.float32 else 1e308


# ---------------------------------------------------------------- softmax / log_softmax

@pytest.mark.filterwarnings("ignore:overflow")  # x − max(x) = −2e308 rounds to −inf: exact 0
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_huge_logits_is_one_hot_and_finite(backend, dtype):
    h = huge(dtype)
    x = np.array([[h, -h], [1e4, -1e4], [1000.0, 0.0]], dtype=dtype)
    y = call("softmax", backend, "fwd", x)
    np.testing.assert_array_equal(y, np.array([[1, 0], [1, 0], [1, 0]], dtype=dtype))
    gy = np.array([[0.3, -2.0], [1.0, 5.0], [-1.0, 4.0]], dtype=dtype)
    (gx,) = call("softmax", backend, "bwd", gy, y)
    np.testing.assert_array_equal(gx, np.zeros_like(gx))  # one-hot y: gx = y·(gy − gy[max])


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_of_huge_logits_is_exact(backend, dtype):
    x = np.array([[-1000.0, 1.0], [1e4, -1e4], [-1e4, -1e4]], dtype=dtype)
    y = call("log_softmax", backend, "fwd", x)
    expect = np.array([[-1001.0, 0.0], [0.0, -2e4], [-math.log(2)] * 2])
    assert np.all(np.isfinite(y))
    assert np.allclose(y, expect, rtol=eps_of(dtype), atol=0)
    gy = np.array([[1.0, -1.0], [2.0, 3.0], [1.0, 1.0]], dtype=dtype)
    (gx,) = call("log_softmax", backend, "bwd", gy, y)
    # gx = gy − exp(y)·Σgy
    assert np.allclose(gx, [[1.0, -1.0], [-3.0, 3.0], [0.0, 0.0]], rtol=0, atol=4 * eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_minus_infinity_logits_get_zero_probability(backend, dtype):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=dtype)
    e = math.e
    y = call("softmax", backend, "fwd", x)
    expect = np.array([[1 / (1 + e), 0.0, e / (1 + e)], [0.0, 1.0, 0.0]])
    assert np.allclose(y, expect, rtol=2 * eps_of(dtype), atol=0)
    logy = call("log_softmax", backend, "fwd", x)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(np.isneginf(logy), ~finite)
    assert np.allclose(logy[finite], np.log(expect[finite]), rtol=2 * eps_of(dtype), atol=0)
    gy = np.ones_like(x)
    (gx,) = call("log_softmax", backend, "bwd", gy, logy)
    assert np.all(np.isfinite(gx))
    np.testing.assert_array_equal(gx[~finite], 1.0)  # exp(−inf) = 0: gx = gy there


# ---------------------------------------------------------------- cross-entropies

@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_a_confident_right_row_keeps_its_tiny_loss(backend, dtype):
    x = np.array([[10.0, -10.0], [-10.0, 10.0]], dtype=dtype)
    y = np.array([0, 1])
    loss, lse = call("cross_entropy", backend, "fwd", x, y)
    tiny = math.log1p(math.exp(-20))  # ≈ 2.06e-9: lse − x[y] would round it to 0
    assert np.allclose(loss, [tiny, tiny], rtol=4 * eps_of(dtype), atol=0)
    gx, _ = call("cross_entropy", backend, "bwd", np.ones(2, dtype), x, y, lse)
    s = math.exp(-20) / (1 + math.exp(-20))  # softmax of the other class
    assert np.allclose(gx, [[-s, s], [s, -s]], rtol=8 * eps_of(dtype), atol=0)


@pytest.mark.filterwarnings("ignore:overflow")  # x − max(x) = −2e308 rounds to −inf: exact 0
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropies_are_finite_for_huge_logits(backend, dtype):
    h = huge(dtype)
    x = np.array([[h, -h, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([2, 0, 2])  # (label 1 of row 0 would be a loss of 2h: an honest overflow)
    loss, lse = call("cross_entropy", backend, "fwd", x, y)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(lse))
    assert np.allclose(loss, [h, 0.0, math.log(3)], rtol=4 * eps_of(dtype), atol=0)
    gx, _ = call("cross_entropy", backend, "bwd", np.ones(3, dtype), x, y, lse)
    expect = np.array([[1, 0, -1], [0, 0, 0], [1 / 3, 1 / 3, -2 / 3]])
    # the saved lse ≈ ±1e4 is rounded by eps·1e4, which moves exp(x − lse) relatively by that
    tol = 4 * eps_of(dtype) * np.array([[1.0], [1e4], [1e4]])
    assert np.all(np.abs(gx - expect) <= tol)

    p = np.eye(3, dtype=dtype)[y]
    p[2] = [0.25, 0.25, 0.5]
    sloss, slse = call("soft_cross_entropy", backend, "fwd", x[1:], p[1:])
    assert np.allclose(sloss, [0.0, math.log(3)], rtol=4 * eps_of(dtype), atol=0)
    gx, gp = call("soft_cross_entropy", backend, "bwd", np.ones(2, dtype), x[1:], p[1:], slse)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gp))
    assert np.allclose(gx, [[0, 0, 0], [1 / 12, 1 / 12, -1 / 6]], rtol=0, atol=tol[1:].max())
    expect_gp = [[0, 2e4, 1e4], [math.log(3)] * 3]  # lse − x, with lse rounded at 1e4's scale
    assert np.allclose(gp, expect_gp, rtol=4 * eps_of(dtype), atol=tol[1:].max())


# ---------------------------------------------------------------- binary cross-entropies

@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_finite_for_huge_logits(backend, dtype):
    h = huge(dtype)
    z = np.array([h, -h, h, 1e4, -1e4, 100.0, -100.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.5, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    loss = call("bce_with_logits", backend, "fwd", z, y)
    expect = np.array([0.0, 0.0, h / 2, 1e4, 0.0, math.exp(-100), 100.0])
    assert np.all(np.isfinite(loss))
    assert np.allclose(loss, expect, rtol=4 * eps_of(dtype), atol=1e-37)
    gz, none = call("bce_with_logits", backend, "bwd", np.ones_like(z), z, y)
    assert none is None and np.all(np.isfinite(gz))
    assert np.allclose(gz, [0, 0, 0.5, 1, 0, 0, -1], rtol=0, atol=4 * eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_is_finite_for_saturated_probabilities(backend, dtype):
    tiny = float(np.finfo(dtype).smallest_subnormal)
    p = np.array([0.0, 1.0, tiny, 1.0 - eps_of(dtype) / 2, 0.0, 1.0], dtype=dtype)
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype=dtype)
    loss = call("bce", backend, "fwd", p, y)
    bound = -math.log(1e-7) + 1e-6  # the clip caps the loss at −log ε
    assert np.all(np.isfinite(loss)) and np.all(loss <= bound) and np.all(loss >= 0)
    gp, none = call("bce", backend, "bwd", np.ones_like(p), p, y)
    assert none is None
    np.testing.assert_array_equal(gp, np.zeros_like(p))  # every p here is clipped


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_of_equal_huge_values_is_zero(backend, dtype):
    h = huge(dtype)
    a = np.array([h, -h, 0.0], dtype=dtype)
    loss = call("mse", backend, "fwd", a, a.copy())
    np.testing.assert_array_equal(loss, np.zeros_like(a))
    ga, gb = call("mse", backend, "bwd", np.ones_like(a), a, a.copy())
    np.testing.assert_array_equal(ga, np.zeros_like(a))
    np.testing.assert_array_equal(gb, np.zeros_like(a))
