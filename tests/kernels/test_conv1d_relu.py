"""Kernel-level tests of conv1d_relu (kernels/conv1d_relu): the reference against naive
loops, every backend against the reference and against conv1d followed by ReLU (forward and
backward), finite differences away from the kink, PyTorch as a second oracle, signature
parity and the CUDA source compiling with nvcc."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from tests._util import bound, call, kernel, rel_err, to_device, to_host
from tests.kernels.test_conv1d import (
    DTYPES,
    abs_or_none,
    conv_cases,
    draw_inputs,
    f64,
    naive_bwd,
    naive_fwd,
    params,
    rand_inputs,
    sum_err,
)

OP = "conv1d_relu"

CASES = [
    ((2, 3, 9), (4, 3, 3), True, params()),
    ((2, 3, 9), (4, 3, 3), False, params(2, 1, 2, 2)),
    ((1, 2, 5), (3, 2, 4), True, params(3, 3, 0, 1)),
    ((2, 2, 3), (2, 2, 3), True, params(1, 2, 2, 3)),
    ((2, 33, 20), (40, 33, 3), True, params(1, 1, 1, 1)),
    ((6, 3, 100), (5, 3, 3), True, params(1, 1, 0, 1)),
]


def test_reference_matches_naive_loops():
    for xs, ws, has_bias, p in CASES[:4]:
        x, w, b, gy = rand_inputs(np.random.default_rng(0), xs, ws, has_bias, p)
        ref = kernels.get(OP, "numpy")
        z = naive_fwd(x, w, b, p)
        y = ref.fwd(x, w, b, **p)
        np.testing.assert_allclose(y, np.maximum(z, 0.0), rtol=1e-12, atol=1e-12)
        want = naive_bwd(gy * (z > 0), x, w, p)
        for got, exp in zip(ref.bwd(gy, x, w, y, **p), want):
            np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)


def check_against_reference(backend, x, w, b, gy, p):
    """Forward and backward of ``backend`` vs the float64 reference on the same values
    (bwd gets the same y, the reference's forward in x's dtype); dtypes preserved, inputs
    untouched."""
    dtype = x.dtype
    N, C, _ = x.shape
    O, _, K = w.shape
    ref = kernels.get(OP, "numpy")
    y_ref = ref.fwd(f64(x), f64(w), f64(b), **p)
    y_in = y_ref.astype(dtype)
    g_ref = ref.bwd(f64(gy), f64(x), f64(w), f64(y_in), **p)
    conv = kernels.get("conv1d", "numpy")     # the same sums over absolute values
    ax, aw, ab, agy = (abs_or_none(a) for a in (x, w, b, gy))
    y_abs = conv.fwd(ax, aw, ab, **p)
    g_abs = conv.bwd(agy, ax, aw, **p)

    mod = kernel(OP, backend)
    dev = [to_device(a, backend) for a in (x, w, b, gy, y_in)]
    y = to_host(mod.fwd(dev[0], dev[1], dev[2], **p))
    grads = to_host(mod.bwd(dev[3], dev[0], dev[1], dev[4], **p))
    for before, after in zip((x, w, b, gy, y_in), dev):
        if before is not None:
            np.testing.assert_array_equal(to_host(after), before)   # inputs not mutated

    assert y.dtype == dtype and y.shape == y_ref.shape
    assert sum_err(y, y_ref, y_abs) <= bound(dtype, "sum", C * K + 1)
    assert isinstance(grads, tuple) and len(grads) == 3
    terms = (O * K, N * gy.shape[2], N * gy.shape[2])
    for name, g, gr, ga, m in zip(("gx", "gw", "gb"), grads, g_ref, g_abs, terms):
        assert g.dtype == dtype and g.shape == gr.shape, name
        assert sum_err(g, gr, ga) <= bound(dtype, "sum", m), name


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backend_matches_reference(backend, dtype, data):
    case = data.draw(conv_cases(), label="case")
    check_against_reference(backend, *draw_inputs(data, case, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_backend_matches_reference_on_fixed_cases(backend, dtype, case):
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(1), xs, ws, has_bias, p, dtype)
    check_against_reference(backend, x, w, b, gy, p)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_equals_conv1d_followed_by_relu(backend, dtype, data):
    """Same backend, same dtype: fwd = max(conv1d.fwd, 0); bwd = conv1d.bwd(gy·[y > 0])."""
    case = data.draw(conv_cases(), label="case")
    x, w, b, gy, p = draw_inputs(data, case, dtype)
    C, K = w.shape[1:]
    conv = kernels.get("conv1d", "numpy")     # the same sums over absolute values
    ax, aw, ab, agy = (abs_or_none(a) for a in (x, w, b, gy))
    y = call(OP, backend, "fwd", x, w, b, **p)
    z = call("conv1d", backend, "fwd", x, w, b, **p)
    assert y.dtype == np.dtype(dtype)
    assert sum_err(y, np.maximum(z, 0), conv.fwd(ax, aw, ab, **p)) <= bound(dtype, "sum",
                                                                            C * K + 1)
    assert (y >= 0).all()
    got = call(OP, backend, "bwd", gy, x, w, y, **p)
    want = call("conv1d", backend, "bwd", np.where(y > 0, gy, 0).astype(dtype), x, w, **p)
    O = w.shape[0]
    terms = (O * K, x.shape[0] * y.shape[2], x.shape[0] * y.shape[2])   # gx, gw, gb
    for g, g_want, scale, m in zip(got, want, conv.bwd(agy, ax, aw, **p), terms):
        assert g.dtype == np.dtype(dtype)
        assert sum_err(g, g_want, scale) <= bound(dtype, "sum", m)


@pytest.mark.parametrize("case", CASES[:4])
def test_numba_batch_chunks_match_one_chunk(monkeypatch, case):
    """The numba kernels work through the batch a chunk of about _COLS columns at a time."""
    from kernels.conv1d import numba_cpu as conv1d_numba

    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(6), (5,) + xs[1:], ws, has_bias, p)
    monkeypatch.setattr(conv1d_numba, "_COLS", 7)
    ref, mod = kernels.get(OP, "numpy"), kernels.get(OP, "numba")
    y = ref.fwd(x, w, b, **p)
    assert rel_err(mod.fwd(x, w, b, **p), y) <= 1e-12
    for got, want in zip(mod.bwd(gy, x, w, y, **p), ref.bwd(gy, x, w, y, **p)):
        assert rel_err(got, want) <= 1e-12


def test_no_gradient_flows_where_the_output_is_clipped(backend):
    rng = np.random.default_rng(2)
    p = params(1, 1, 1, 1)
    x = rng.standard_normal((2, 3, 8))
    w = rng.standard_normal((4, 3, 3))
    b = np.full(4, -1e3)                               # every pre-activation is negative
    y = call(OP, backend, "fwd", x, w, b, **p)
    np.testing.assert_array_equal(y, np.zeros((2, 4, 8)))
    for g in call(OP, backend, "bwd", rng.standard_normal(y.shape), x, w, y, **p):
        np.testing.assert_array_equal(g, np.zeros_like(g))


def test_relu_derivative_at_zero_is_zero(backend):
    x = np.ones((1, 1, 4))
    w = np.array([[[1.0, -1.0]]])                      # z = 0 exactly everywhere
    y = call(OP, backend, "fwd", x, w, None, **params())
    np.testing.assert_array_equal(y, np.zeros((1, 1, 3)))
    gx, gw, gb = call(OP, backend, "bwd", np.ones((1, 1, 3)), x, w, y, **params())
    assert not gx.any() and not gw.any() and not gb.any()


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2]])
def test_bwd_matches_central_differences_away_from_the_kink(backend, case):
    xs, ws, _, p = case
    rng = np.random.default_rng(3)
    x, w, b, gy = rand_inputs(rng, xs, ws, True, p)
    z = call("conv1d", "numpy", "fwd", x, w, b, **p)
    assert np.abs(z).min() > 1e-3      # this seed keeps every z away from ReLU's kink
    y = call(OP, backend, "fwd", x, w, b, **p)
    grads = call(OP, backend, "bwd", gy, x, w, y, **p)
    eps = 1e-6

    def loss(x_, w_, b_):
        return float(np.sum(gy * call(OP, backend, "fwd", x_, w_, b_, **p)))

    for i, g in enumerate(grads):
        u = rng.standard_normal(g.shape)
        plus = [x, w, b]
        minus = [x, w, b]
        plus[i] = plus[i] + eps * u
        minus[i] = minus[i] - eps * u
        numeric = (loss(*plus) - loss(*minus)) / (2 * eps)
        analytic = float(np.sum(g * u))
        assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic)), (i, numeric, analytic)


TORCH_CASES = [
    ((2, 3, 10), (4, 3, 3), True, params()),
    ((2, 3, 10), (4, 3, 3), False, params(2, 1, 1, 1)),
    ((3, 2, 13), (5, 2, 4), True, params(1, 2, 1, 1)),
    ((2, 4, 17), (3, 4, 3), True, params(3, 0, 2, 2)),
    ((2, 64, 31), (128, 64, 3), True, params()),             # the article's second layer
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_pytorch(backend, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(5), xs, ws, has_bias, p)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if has_bias else None
    yt = F.relu(F.conv1d(F.pad(xt, (p["padding_left"], p["padding_right"])), wt, bt,
                         stride=p["stride"], dilation=p["dilation"]))
    yt.backward(torch.tensor(gy))
    y = call(OP, backend, "fwd", x, w, b, **p)
    gx, gw, gb = call(OP, backend, "bwd", gy, x, w, y, **p)
    assert rel_err(y, yt.detach().numpy()) <= 1e-10
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10
    assert rel_err(gw, wt.grad.numpy()) <= 1e-10
    if has_bias:
        assert rel_err(gb, bt.grad.numpy()) <= 1e-10




