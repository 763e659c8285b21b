"""maxpool1d kernels: reference vs naive loops, every backend vs the reference (values and
argmax bitwise, gradients within TESTING.md's bounds), finite differences, the max-pool
properties, PyTorch as a second oracle, signature parity and an nvcc compile of the CUDA
source. Math: kernels/maxpool1d/__init__.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels.maxpool1d import reference
from minimtl.testing import arrays, distinct_arrays, ncl_shapes
from tests._util import bound, call, rel_err
from tests.kernels._pool_util import (
    DTYPES,
    PARAMS,
    assert_bitwise,
    check_fwd_rejects_inconsistent_input,
    draw_case,
    draw_seed,
    draw_shape_and_params,
    fixed_lengths,
    overlap,
    params,
    swap,
)

OP = "maxpool1d"


def naive_maxpool(x, kernel_size, stride, padding):
    """Python loops over the −∞-padded input: y and the position of the first maximum."""
    N, C, L = x.shape
    Lo = (L + 2 * padding - kernel_size) // stride + 1
    y = np.empty((N, C, Lo), dtype=x.dtype)
    argmax = np.empty((N, C, Lo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for t in range(Lo):
                best, arg = -math.inf, -1
                for k in range(kernel_size):
                    j = t * stride - padding + k  # position in x; outside it is padding
                    value = x[n, c, j] if 0 <= j < L else -math.inf
                    if value > best:  # strictly: the first maximum stays
                        best, arg = value, j
                y[n, c, t] = best
                argmax[n, c, t] = arg
    return y, argmax


def naive_maxpool_grad(gy, argmax, length):
    N, C, Lo = gy.shape
    gx = np.zeros((N, C, length), dtype=gy.dtype)
    for n in range(N):
        for c in range(C):
            for t in range(Lo):
                gx[n, c, argmax[n, c, t]] += gy[n, c, t]
    return gx


# (a) the reference against naive loops ------------------------------------------------


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_reference_matches_naive_loops(kernel_size, stride, padding):
    rng = np.random.default_rng(kernel_size * 100 + stride * 10 + padding)
    p = params(kernel_size, stride, padding)
    for x in (rng.standard_normal((2, 3, 11)), rng.integers(0, 3, (2, 3, 11)).astype(float)):
        y, argmax = reference.fwd(x, **p)
        y_naive, argmax_naive = naive_maxpool(x, **p)
        assert argmax.dtype == np.int32
        np.testing.assert_array_equal(argmax, argmax_naive)
        assert rel_err(y, y_naive) <= 1e-12
        gy = rng.standard_normal(y.shape)
        (gx,) = reference.bwd(gy, argmax, length=11, **p)
        assert rel_err(gx, naive_maxpool_grad(gy, argmax_naive, 11)) <= 1e-12


def test_reference_rejects_inconsistent_input():
    check_fwd_rejects_inconsistent_input(reference, "maxpool1d")
    y, argmax = reference.fwd(np.zeros((2, 3, 4)), **params(2, 2, 0))
    with pytest.raises(ValueError, match="maxpool1d"):
        reference.bwd(y, argmax[:, :1], length=4, **params(2, 2, 0))
    with pytest.raises(ValueError, match="maxpool1d"):
        reference.bwd(y, argmax, length=9, **params(2, 2, 0))


# (b) every backend against the reference ----------------------------------------------


def _check_against_reference(backend, x, gy_seed, p, channels_last=False):
    """fwd: values and argmax bitwise equal to the reference on the same dtype; bwd within
    the bound of a sum over the windows that share a position; dtypes; inputs untouched.
    channels_last: x is (N, L, C) and every call says so."""
    lay = dict(channels_last=True) if channels_last else {}
    length = x.shape[1] if channels_last else x.shape[2]
    x_before = x.copy()
    y, argmax = call(OP, backend, "fwd", x, **p, **lay)
    np.testing.assert_array_equal(x, x_before)
    y_ref, argmax_ref = reference.fwd(x.astype(np.float64), **p, **lay)
    assert y.dtype == x.dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(y, y_ref.astype(x.dtype))  # a max is exact: bitwise

    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    gy_before, argmax_before = gy.copy(), argmax.copy()
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=length, **p, **lay)
    np.testing.assert_array_equal(gy, gy_before)
    np.testing.assert_array_equal(argmax, argmax_before)
    (gx_ref,) = reference.bwd(gy.astype(np.float64), argmax_ref, length=length, **p, **lay)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    terms = overlap(p["kernel_size"], p["stride"])
    assert rel_err(gx, gx_ref) <= bound(x.dtype, "sum", terms)


@given(st.data())
def test_backend_matches_reference(backend, data):
    x, p = draw_case(data)
    _check_against_reference(backend, x, draw_seed(data), p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_backend_matches_reference_fixed_cases(backend, dtype, kernel_size, stride, padding):
    rng = np.random.default_rng(7)
    p = params(kernel_size, stride, padding)
    for L in fixed_lengths(kernel_size, padding):
        x = rng.standard_normal((2, 3, L)).astype(dtype)
        _check_against_reference(backend, x, 1, p)
        ties = rng.integers(-1, 2, (2, 3, L)).astype(dtype)  # many ties
        _check_against_reference(backend, ties, 2, p)


def test_backend_handles_empty_batch(backend):
    x = np.zeros((0, 3, 8), dtype=np.float32)
    y, argmax = call(OP, backend, "fwd", x, **params(2, 2, 0))
    assert y.shape == (0, 3, 4) and argmax.shape == (0, 3, 4)
    (gx,) = call(OP, backend, "bwd", y, argmax, length=8, **params(2, 2, 0))
    assert gx.shape == (0, 3, 8) and gx.dtype == np.float32


def test_backend_gives_same_result_on_non_contiguous_input(backend):
    x = np.random.default_rng(3).standard_normal((3, 2, 20))
    strided = x[:, :, ::2]  # (3, 2, 10), not contiguous
    y, argmax = call(OP, backend, "fwd", strided, **params(3, 2, 1))
    y_c, argmax_c = call(OP, backend, "fwd", np.ascontiguousarray(strided), **params(3, 2, 1))
    np.testing.assert_array_equal(y, y_c)
    np.testing.assert_array_equal(argmax, argmax_c)


# (c) finite differences ---------------------------------------------------------------


@pytest.mark.parametrize("fd_backend", ["numpy", "numba"])
@given(st.data())
def test_bwd_matches_finite_differences(fd_backend, data):
    shape, p = draw_shape_and_params(data)
    x = data.draw(distinct_arrays(shape, "float64"))  # no ties within eps
    rng = np.random.default_rng(draw_seed(data))
    mod = kernels.get(OP, fd_backend)
    y, argmax = mod.fwd(x, **p)
    gy = rng.standard_normal(y.shape)
    u = rng.uniform(-1, 1, x.shape)
    eps = 1e-6
    numeric = np.sum(gy * (mod.fwd(x + eps * u, **p)[0] - mod.fwd(x - eps * u, **p)[0]))
    numeric /= 2 * eps
    (gx,) = mod.bwd(gy, argmax, length=shape[2], **p)
    analytic = np.sum(gx * u)
    assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic))


# (d) properties, on every backend -----------------------------------------------------


@given(st.data())
def test_output_is_the_window_max(backend, data):
    shape, p = draw_shape_and_params(data)
    x = data.draw(arrays(shape, "float64"))
    y, argmax = call(OP, backend, "fwd", x, **p)
    K, S, P = p["kernel_size"], p["stride"], p["padding"]
    for t in range(y.shape[2]):
        lo, hi = max(t * S - P, 0), min(t * S - P + K, shape[2])
        np.testing.assert_array_equal(y[:, :, t], x[:, :, lo:hi].max(axis=2))
        assert np.all((lo <= argmax[:, :, t]) & (argmax[:, :, t] < hi))


@given(st.data())
def test_shift_and_positive_scale_commute_with_pool(backend, data):
    # x ↦ fl(x + c) and x ↦ fl(a·x), a > 0, are monotone, so they commute with max exactly
    x, p = draw_case(data)
    c = x.dtype.type(data.draw(st.floats(-100, 100, allow_subnormal=False)))
    a = x.dtype.type(data.draw(st.floats(0.01, 100, allow_subnormal=False)))
    (y, _), (y_shift, _), (y_scale, _) = (call(OP, backend, "fwd", v, **p)
                                         for v in (x, x + c, a * x))
    np.testing.assert_array_equal(y_shift, y + c)
    np.testing.assert_array_equal(y_scale, a * y)


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_ties_go_to_the_first_maximum(backend, kernel_size, stride, padding):
    p = params(kernel_size, stride, padding)
    L = 12
    # constant input: every window ties everywhere, so its first real position wins
    const = np.full((1, 2, L), 0.5)
    _, argmax = call(OP, backend, "fwd", const, **p)
    Lo = argmax.shape[2]
    first = np.maximum(np.arange(Lo) * stride - padding, 0)
    np.testing.assert_array_equal(argmax, np.broadcast_to(first, argmax.shape))
    # crafted plateaus with ties inside windows; the gradient follows the first maximum
    crafted = np.array([[[1, 3, 3, 2, 3, 3, 3, 0, 5, 5, 1, 5],
                         [2, 2, 1, 1, 4, 4, 4, 4, 0, 0, 0, 0]]], dtype=np.float64)
    _, argmax = call(OP, backend, "fwd", crafted, **p)
    _, argmax_naive = naive_maxpool(crafted, **p)
    np.testing.assert_array_equal(argmax, argmax_naive)
    gy = np.arange(1.0, 1.0 + argmax.size).reshape(argmax.shape)
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=L, **p)
    np.testing.assert_array_equal(gx, naive_maxpool_grad(gy, argmax_naive, L))


@given(st.data())
def test_gradient_goes_only_to_the_argmax(backend, data):
    shape, p = draw_shape_and_params(data)
    x = data.draw(arrays(shape, "float64", min_value=-2, max_value=2).map(np.round))  # ties
    _, argmax = call(OP, backend, "fwd", x, **p)
    gy = np.ones(argmax.shape)
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=shape[2], **p)
    chosen = np.zeros(shape, dtype=bool)
    n, c, _ = np.indices(argmax.shape)
    chosen[n, c, argmax] = True
    assert np.all(gx[~chosen] == 0) and np.all(gx[chosen] >= 1)
    assert gx.sum() == argmax.size  # each window's gradient landed somewhere, once


@given(st.data())
def test_window_gradient_sums_equal_upstream_gradient(backend, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = data.draw(ncl_shapes(min_l=2))
    K = data.draw(st.integers(1, min(shape[2], 4)))
    p = params(K, data.draw(st.integers(K, K + 2)), data.draw(st.integers(0, K // 2)))  # S ≥ K
    x = data.draw(arrays(shape, dtype))
    gy = data.draw(arrays((shape[0], shape[1], reference.out_length(shape[2], **p)), dtype))
    _, argmax = call(OP, backend, "fwd", x, **p)
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=shape[2], **p)
    for t in range(gy.shape[2]):
        lo = max(t * p["stride"] - p["padding"], 0)
        hi = min(t * p["stride"] - p["padding"] + K, shape[2])
        np.testing.assert_array_equal(gx[:, :, lo:hi].sum(axis=2), gy[:, :, t])


def test_nan_wins_its_window_once(backend):
    nan = np.nan
    x = np.array([[[1.0, nan, 3.0, nan, 2.0, 5.0, -1.0, 0.0]]])
    y, argmax = call(OP, backend, "fwd", x, **params(3, 1, 1))
    # windows over positions: [-1..1], [0..2], [1..3], [2..4], [3..5], [4..6], [5..7], [6..8]
    np.testing.assert_array_equal(argmax[0, 0], [1, 1, 1, 3, 3, 5, 5, 7])
    np.testing.assert_array_equal(np.isnan(y[0, 0]), [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(y[0, 0, 5:], [5.0, 5.0, 0.0])


# (e) PyTorch as a second oracle ----------------------------------------------------------


@given(st.data())
def test_matches_torch_max_pool1d(backend, data):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, p = draw_shape_and_params(data)
    x = data.draw(distinct_arrays(shape, "float64"))
    y, argmax = call(OP, backend, "fwd", x, **p)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool1d(xt, p["kernel_size"], p["stride"], p["padding"], return_indices=True)
    assert rel_err(y, yt.detach().numpy()) <= 1e-10
    np.testing.assert_array_equal(argmax, it.numpy())
    gy = np.random.default_rng(draw_seed(data)).standard_normal(y.shape)
    yt.backward(torch.tensor(gy))
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=shape[2], **p)
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10


# (f) signature parity and (g) the CUDA source compiles ------------------------------------


# (h) the channels-last layout: x (N, L, C) → y, argmax (N, Lo, C) ------------------------


def _check_reference_channels_last(x, gy_seed, p):
    """The reference on x (N, L, C) is its channels-first result on the transposed arrays,
    transposed back, bit for bit (NaN included)."""
    y, argmax = reference.fwd(x, channels_last=True, **p)
    y_cf, argmax_cf = reference.fwd(swap(x), **p)
    assert_bitwise(y, swap(y_cf))
    assert_bitwise(argmax, swap(argmax_cf))
    assert argmax.dtype == np.int32
    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    (gx,) = reference.bwd(gy, argmax, length=x.shape[1], channels_last=True, **p)
    (gx_cf,) = reference.bwd(swap(gy), argmax_cf, length=x.shape[1], **p)
    assert_bitwise(gx, swap(gx_cf))


def _check_channels_last(backend, x, gy_seed, p):
    """x (N, L, C): the backend's channels-last run against the channels-last reference, and
    against its own channels-first run on the transposed arrays, which must agree exactly
    (the same comparisons and the same sums in the same order)."""
    _check_against_reference(backend, x, gy_seed, p, channels_last=True)
    y, argmax = call(OP, backend, "fwd", x, channels_last=True, **p)
    y_cf, argmax_cf = call(OP, backend, "fwd", swap(x), **p)
    np.testing.assert_array_equal(argmax, swap(argmax_cf))
    np.testing.assert_array_equal(y, swap(y_cf))
    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=x.shape[1], channels_last=True, **p)
    (gx_cf,) = call(OP, backend, "bwd", swap(gy), argmax_cf, length=x.shape[1], **p)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gx, swap(gx_cf))


def _draw_nlc_case(data):
    """An (N, L, C) input (dtype from DTYPES) with ties or a NaN now and then, and pool
    parameters."""
    x, p = draw_case(data, channels_last=True)
    x = x.copy()
    if data.draw(st.booleans()):
        x = np.round(x)  # many ties
    if data.draw(st.booleans()):
        x.flat[data.draw(st.integers(0, x.size - 1))] = np.nan
    return x, p


@given(st.data())
def test_reference_channels_last_is_the_transposed_channels_first(data):
    x, p = _draw_nlc_case(data)
    _check_reference_channels_last(x, draw_seed(data), p)


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_reference_channels_last_fixed_cases(kernel_size, stride, padding):
    rng = np.random.default_rng(11)
    p = params(kernel_size, stride, padding)
    for L in fixed_lengths(kernel_size, padding):
        for dtype in DTYPES:
            _check_reference_channels_last(rng.standard_normal((2, L, 3)).astype(dtype), 1, p)
            ties = rng.integers(-1, 2, (2, L, 3)).astype(dtype)
            _check_reference_channels_last(ties, 2, p)


def test_reference_channels_last_rejects_inconsistent_input():
    x = np.zeros((2, 4, 3))  # (N, L, C)
    with pytest.raises(ValueError, match=r"maxpool1d: x must be \(N, L, C\)"):
        reference.fwd(x[0], channels_last=True, **params(2, 2, 0))
    y, argmax = reference.fwd(x, channels_last=True, **params(2, 2, 0))
    assert y.shape == argmax.shape == (2, 2, 3)
    with pytest.raises(ValueError, match="maxpool1d"):
        reference.bwd(y, argmax[:, :1], length=4, channels_last=True, **params(2, 2, 0))
    with pytest.raises(ValueError, match="maxpool1d"):
        reference.bwd(y, argmax, length=9, channels_last=True, **params(2, 2, 0))


@given(st.data())
def test_backend_channels_last_matches_reference(backend, data):
    x, p = _draw_nlc_case(data)
    _check_channels_last(backend, x, draw_seed(data), p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_backend_channels_last_fixed_cases(backend, dtype, kernel_size, stride, padding):
    rng = np.random.default_rng(11)
    p = params(kernel_size, stride, padding)
    # L as in the channels-first cases (13: odd); C = 19: a vector body and a remainder
    for L in fixed_lengths(kernel_size, padding):
        for C in (1, 19):
            _check_channels_last(backend, rng.standard_normal((2, L, C)).astype(dtype), 1, p)
            ties = rng.integers(-1, 2, (2, L, C)).astype(dtype)  # many ties
            _check_channels_last(backend, ties, 2, p)


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_channels_last_ties_go_to_the_first_maximum(backend, kernel_size, stride, padding):
    p = params(kernel_size, stride, padding)
    crafted = np.array([[[1, 3, 3, 2, 3, 3, 3, 0, 5, 5, 1, 5],
                         [2, 2, 1, 1, 4, 4, 4, 4, 0, 0, 0, 0],
                         [0.5] * 12]])  # (1, C, L); the constant row ties everywhere
    x = swap(crafted)  # (1, L, C)
    _, argmax = call(OP, backend, "fwd", x, channels_last=True, **p)
    _, argmax_naive = naive_maxpool(crafted, **p)
    np.testing.assert_array_equal(argmax, swap(argmax_naive))
    gy = np.arange(1.0, 1.0 + argmax.size).reshape(argmax.shape)
    (gx,) = call(OP, backend, "bwd", gy, argmax, length=12, channels_last=True, **p)
    np.testing.assert_array_equal(gx, swap(naive_maxpool_grad(swap(gy), argmax_naive, 12)))


@pytest.mark.parametrize("kernel_size, stride, padding, argmax0, isnan0, tail0", [
    (3, 1, 1, [1, 1, 1, 3, 3, 5, 5, 7], [1, 1, 1, 1, 1, 0, 0, 0], [5.0, 5.0, 0.0]),
    (2, 2, 0, [1, 3, 5, 7], [1, 1, 0, 0], [5.0, 0.0]),  # the fast path
])
def test_channels_last_nan_wins_its_window_once(backend, kernel_size, stride, padding,
                                                argmax0, isnan0, tail0):
    nan = np.nan
    row = np.array([1.0, nan, 3.0, nan, 2.0, 5.0, -1.0, 0.0])
    x = np.stack([row, row[::-1], np.zeros(8)], axis=1)[None]  # (1, 8, 3): channels last
    p = params(kernel_size, stride, padding)
    y, argmax = call(OP, backend, "fwd", x, channels_last=True, **p)
    np.testing.assert_array_equal(argmax[0, :, 0], argmax0)
    np.testing.assert_array_equal(np.isnan(y[0, :, 0]), isnan0)
    np.testing.assert_array_equal(y[0, -len(tail0):, 0], tail0)
    y_ref, argmax_ref = reference.fwd(x, channels_last=True, **p)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_channels_last_takes_a_transposed_view_and_an_empty_batch(backend):
    x_cf = np.random.default_rng(3).standard_normal((3, 5, 10))
    view = x_cf.transpose(0, 2, 1)  # (3, 10, 5) channels-last, not contiguous
    p = params(3, 2, 1)
    y, argmax = call(OP, backend, "fwd", view, channels_last=True, **p)
    y_c, argmax_c = call(OP, backend, "fwd", np.ascontiguousarray(view), channels_last=True, **p)
    np.testing.assert_array_equal(y, y_c)
    np.testing.assert_array_equal(argmax, argmax_c)
    gy_view = swap(y).transpose(0, 2, 1)  # the values of y, (N, Lo, C), not contiguous
    (gx,) = call(OP, backend, "bwd", gy_view, argmax, length=10, channels_last=True, **p)
    (gx_c,) = call(OP, backend, "bwd", y, argmax, length=10, channels_last=True, **p)
    np.testing.assert_array_equal(gx, gx_c)
    empty = np.zeros((0, 8, 3), dtype=np.float32)
    y, argmax = call(OP, backend, "fwd", empty, channels_last=True, **params(2, 2, 0))
    assert y.shape == (0, 4, 3) and argmax.shape == (0, 4, 3) and y.dtype == np.float32
    (gx,) = call(OP, backend, "bwd", y, argmax, length=8, channels_last=True, **params(2, 2, 0))
    assert gx.shape == (0, 8, 3) and gx.dtype == np.float32
