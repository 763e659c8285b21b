"""avgpool1d kernels: reference vs naive loops, every backend vs the reference (forward and
backward, TESTING.md's bounds), finite differences, linearity, the adjoint identity,
equality with a depthwise convolution of weight 1/K, PyTorch as a second oracle, signature
parity and an nvcc compile of the CUDA source. Math: kernels/avgpool1d/__init__.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels.avgpool1d import reference
from minimtl.testing import arrays, elements
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

OP = "avgpool1d"


def naive_avgpool(x, kernel_size, stride, padding):
    """Python loops over the zero-padded input, divided by K."""
    N, C, L = x.shape
    Lo = (L + 2 * padding - kernel_size) // stride + 1
    y = np.zeros((N, C, Lo))
    for n in range(N):
        for c in range(C):
            for t in range(Lo):
                for k in range(kernel_size):
                    j = t * stride - padding + k
                    if 0 <= j < L:
                        y[n, c, t] += x[n, c, j]
                y[n, c, t] /= kernel_size
    return y


def naive_avgpool_grad(gy, length, kernel_size, stride, padding):
    """Python loops: every window hands 1/K of its gy to each of its real positions."""
    N, C, Lo = gy.shape
    gx = np.zeros((N, C, length))
    for n in range(N):
        for c in range(C):
            for t in range(Lo):
                for k in range(kernel_size):
                    j = t * stride - padding + k
                    if 0 <= j < length:
                        gx[n, c, j] += gy[n, c, t] / kernel_size
    return gx


def depthwise_conv(x, weight, stride, padding):
    """y[n,c,t] = Σ_k weight[c,k]·x̃[n,c,t·S+k], x̃ zero-padded: a conv1d with groups = C."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, weight.shape[1], axis=2)
    return np.einsum("nctk,ck->nct", windows[:, :, ::stride], weight)


# (a) the reference against naive loops ------------------------------------------------


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_reference_matches_naive_loops(kernel_size, stride, padding):
    rng = np.random.default_rng(kernel_size * 100 + stride * 10 + padding)
    p = params(kernel_size, stride, padding)
    x = rng.standard_normal((2, 3, 11))
    y = reference.fwd(x, **p)
    assert rel_err(y, naive_avgpool(x, **p)) <= 1e-12
    gy = rng.standard_normal(y.shape)
    (gx,) = reference.bwd(gy, length=11, **p)
    assert rel_err(gx, naive_avgpool_grad(gy, 11, **p)) <= 1e-12


def test_reference_rejects_inconsistent_input():
    check_fwd_rejects_inconsistent_input(reference, "avgpool1d")
    with pytest.raises(ValueError, match="avgpool1d"):
        reference.bwd(np.zeros((2, 3, 2)), length=9, **params(2, 2, 0))


# (b) every backend against the reference ----------------------------------------------


def _check_against_reference(backend, x, gy_seed, p, channels_last=False):
    """fwd and bwd against the float64 reference on the same values; dtypes; inputs
    untouched. channels_last: x is (N, L, C) and every call says so."""
    lay = dict(channels_last=True) if channels_last else {}
    length = x.shape[1] if channels_last else x.shape[2]
    x_before = x.copy()
    y = call(OP, backend, "fwd", x, **p, **lay)
    np.testing.assert_array_equal(x, x_before)
    assert y.dtype == x.dtype
    assert rel_err(y, reference.fwd(x.astype(np.float64), **p, **lay)) <= bound(
        x.dtype, "sum", p["kernel_size"]
    )
    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    gy_before = gy.copy()
    (gx,) = call(OP, backend, "bwd", gy, length=length, **p, **lay)
    np.testing.assert_array_equal(gy, gy_before)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    (gx_ref,) = reference.bwd(gy.astype(np.float64), length=length, **p, **lay)
    assert rel_err(gx, gx_ref) <= bound(x.dtype, "sum", overlap(p["kernel_size"], p["stride"]))


@given(st.data())
def test_backend_matches_reference(backend, data):
    x, p = draw_case(data)
    _check_against_reference(backend, x, draw_seed(data), p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_backend_matches_reference_fixed_cases(backend, dtype, kernel_size, stride, padding):
    rng = np.random.default_rng(7)
    for L in fixed_lengths(kernel_size, padding):
        x = rng.standard_normal((2, 3, L)).astype(dtype)
        _check_against_reference(backend, x, 1, params(kernel_size, stride, padding))


def test_backend_handles_empty_batch(backend):
    x = np.zeros((0, 3, 8), dtype=np.float32)
    y = call(OP, backend, "fwd", x, **params(3, 2, 1))
    assert y.shape == (0, 3, 4) and y.dtype == np.float32
    (gx,) = call(OP, backend, "bwd", y, length=8, **params(3, 2, 1))
    assert gx.shape == (0, 3, 8) and gx.dtype == np.float32


def test_backend_gives_same_result_on_non_contiguous_input(backend):
    x = np.random.default_rng(3).standard_normal((3, 2, 20))
    strided = x[:, :, ::2]  # (3, 2, 10), not contiguous
    y = call(OP, backend, "fwd", strided, **params(3, 2, 1))
    np.testing.assert_array_equal(y, call(OP, backend, "fwd", np.ascontiguousarray(strided),
                                          **params(3, 2, 1)))


# (c) finite differences ---------------------------------------------------------------


@pytest.mark.parametrize("fd_backend", ["numpy", "numba"])
@given(st.data())
def test_bwd_matches_finite_differences(fd_backend, data):
    shape, p = draw_shape_and_params(data)
    x = data.draw(arrays(shape, "float64"))
    rng = np.random.default_rng(draw_seed(data))
    mod = kernels.get(OP, fd_backend)
    y = mod.fwd(x, **p)
    gy = rng.standard_normal(y.shape)
    u = rng.uniform(-1, 1, x.shape)
    eps = 1e-6
    numeric = np.sum(gy * (mod.fwd(x + eps * u, **p) - mod.fwd(x - eps * u, **p))) / (2 * eps)
    (gx,) = mod.bwd(gy, length=shape[2], **p)
    analytic = np.sum(gx * u)
    assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic))


# (d) properties, on every backend -----------------------------------------------------


@given(st.data())
def test_avgpool_is_linear(backend, data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape, p = draw_shape_and_params(data)
    # magnitudes below 2⁻²⁰ drawn as 0: with a tiny a or x (a normal float64 a can even be
    # a subnormal float32) a·x underflows in float32, an error no relative bound covers
    x, z = (data.draw(arrays(shape, dtype, min_magnitude=2.0**-20)) for _ in range(2))
    a, b = (np.dtype(dtype).type(data.draw(elements(dtype, -3, 3, 2.0**-20)))
            for _ in range(2))
    y_x, y_z, y_mix = (call(OP, backend, "fwd", v, **p) for v in (x, z, a * x + b * z))
    expected = a * y_x.astype(np.float64) + b * y_z.astype(np.float64)
    # normwise, relative to the size of the terms (the mix may cancel to nearly 0)
    scale = abs(a) * np.linalg.norm(y_x) + abs(b) * np.linalg.norm(y_z) + 1e-300
    # K window terms plus the roundings of a·x + b·z
    tol = bound(dtype, "sum", p["kernel_size"] + 3)
    assert np.linalg.norm(y_mix - expected) <= tol * scale


@given(st.data())
def test_bwd_is_the_adjoint_of_fwd(backend, data):
    # ⟨fwd(x), g⟩ = ⟨x, bwd(g)⟩: checks the backward with no derivative at all
    x, p = draw_case(data)
    y = call(OP, backend, "fwd", x, **p)
    g = data.draw(arrays(y.shape, x.dtype))
    (gx,) = call(OP, backend, "bwd", g, length=x.shape[2], **p)
    lhs = np.multiply(y, g, dtype=np.float64)
    rhs = np.multiply(x, gx, dtype=np.float64)
    scale = np.abs(lhs).sum() + np.abs(rhs).sum() + 1e-300
    assert abs(lhs.sum() - rhs.sum()) <= bound(x.dtype, "sum", p["kernel_size"]) * scale


@given(st.data())
def test_avgpool_equals_depthwise_conv_with_weight_one_over_k(backend, data):
    x, p = draw_case(data)
    K = p["kernel_size"]
    weight = np.full((x.shape[1], K), 1.0 / K)  # (C, K): one filter per channel
    conv = depthwise_conv(x.astype(np.float64), weight, p["stride"], p["padding"])
    assert rel_err(call(OP, backend, "fwd", x, **p), conv) <= bound(x.dtype, "sum", K)


def test_window_of_one_is_the_identity(backend):
    x = np.random.default_rng(5).standard_normal((2, 3, 7))
    np.testing.assert_array_equal(call(OP, backend, "fwd", x, **params(1, 1, 0)), x)
    np.testing.assert_array_equal(call(OP, backend, "bwd", x, length=7, **params(1, 1, 0))[0], x)


# (e) PyTorch as a second oracle ----------------------------------------------------------


@given(st.data())
def test_matches_torch_avg_pool1d(backend, data):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, p = draw_shape_and_params(data)
    x = data.draw(arrays(shape, "float64"))
    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool1d(xt, p["kernel_size"], p["stride"], p["padding"], count_include_pad=True)
    y = call(OP, backend, "fwd", x, **p)
    assert rel_err(y, yt.detach().numpy()) <= 1e-10
    gy = np.random.default_rng(draw_seed(data)).standard_normal(y.shape)
    yt.backward(torch.tensor(gy))
    (gx,) = call(OP, backend, "bwd", gy, length=shape[2], **p)
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10


# (f) signature parity and (g) the CUDA source compiles ------------------------------------


# (h) the channels-last layout: x (N, L, C) → y (N, Lo, C) --------------------------------


def _check_reference_channels_last(x, gy_seed, p):
    """The reference on x (N, L, C) is its channels-first result on the transposed arrays,
    transposed back, bit for bit."""
    y = reference.fwd(x, channels_last=True, **p)
    assert_bitwise(y, swap(reference.fwd(swap(x), **p)))
    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    (gx,) = reference.bwd(gy, length=x.shape[1], channels_last=True, **p)
    (gx_cf,) = reference.bwd(swap(gy), length=x.shape[1], **p)
    assert_bitwise(gx, swap(gx_cf))


def _check_channels_last(backend, x, gy_seed, p):
    """x (N, L, C): the backend's channels-last run against the channels-last reference
    (within the bounds), and against its own channels-first run on the transposed arrays,
    which must agree exactly (the same sums in the same order)."""
    _check_against_reference(backend, x, gy_seed, p, channels_last=True)
    y = call(OP, backend, "fwd", x, channels_last=True, **p)
    np.testing.assert_array_equal(y, swap(call(OP, backend, "fwd", swap(x), **p)))
    gy = np.random.default_rng(gy_seed).uniform(-1, 1, y.shape).astype(x.dtype)
    (gx,) = call(OP, backend, "bwd", gy, length=x.shape[1], channels_last=True, **p)
    (gx_cf,) = call(OP, backend, "bwd", swap(gy), length=x.shape[1], **p)
    np.testing.assert_array_equal(gx, swap(gx_cf))


@given(st.data())
def test_reference_channels_last_is_the_transposed_channels_first(data):
    x, p = draw_case(data, channels_last=True)
    _check_reference_channels_last(x, draw_seed(data), p)


@pytest.mark.parametrize("kernel_size, stride, padding", PARAMS)
def test_reference_channels_last_fixed_cases(kernel_size, stride, padding):
    rng = np.random.default_rng(11)
    p = params(kernel_size, stride, padding)
    for L in fixed_lengths(kernel_size, padding):
        for dtype in DTYPES:
            _check_reference_channels_last(rng.standard_normal((2, L, 3)).astype(dtype), 1, p)


def test_reference_channels_last_rejects_inconsistent_input():
    x = np.zeros((2, 4, 3))  # (N, L, C)
    with pytest.raises(ValueError, match=r"avgpool1d: x must be \(N, L, C\)"):
        reference.fwd(x[0], channels_last=True, **params(2, 2, 0))
    y = reference.fwd(x, channels_last=True, **params(2, 2, 0))
    assert y.shape == (2, 2, 3)
    with pytest.raises(ValueError, match=r"avgpool1d: gy must be \(N, Lo, C\)"):
        reference.bwd(y[0], length=4, channels_last=True, **params(2, 2, 0))
    with pytest.raises(ValueError, match="avgpool1d"):
        reference.bwd(y, length=9, channels_last=True, **params(2, 2, 0))


@given(st.data())
def test_backend_channels_last_matches_reference(backend, data):
    x, p = draw_case(data, channels_last=True)
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


def test_channels_last_takes_a_transposed_view_and_an_empty_batch(backend):
    x_cf = np.random.default_rng(3).standard_normal((3, 5, 10))
    view = x_cf.transpose(0, 2, 1)  # (3, 10, 5) channels-last, not contiguous
    p = params(3, 2, 1)
    y = call(OP, backend, "fwd", view, channels_last=True, **p)
    np.testing.assert_array_equal(y, call(OP, backend, "fwd", np.ascontiguousarray(view),
                                          channels_last=True, **p))
    gy_view = swap(y).transpose(0, 2, 1)  # the values of y, (N, Lo, C), not contiguous
    (gx,) = call(OP, backend, "bwd", gy_view, length=10, channels_last=True, **p)
    (gx_c,) = call(OP, backend, "bwd", y, length=10, channels_last=True, **p)
    np.testing.assert_array_equal(gx, gx_c)
    empty = np.zeros((0, 8, 3), dtype=np.float32)
    y = call(OP, backend, "fwd", empty, channels_last=True, **p)
    assert y.shape == (0, 4, 3) and y.dtype == np.float32
    (gx,) = call(OP, backend, "bwd", y, length=8, channels_last=True, **p)
    assert gx.shape == (0, 8, 3) and gx.dtype == np.float32
