"""conv1d and conv1d_relu with ``channels_last=True``: x (N, L, C) → y (N, Lo, O), the same
math as the channels-first kernels on arrays with the last two axes swapped. Every backend
against the channels-first float64 reference (TESTING.md's bounds, the same ones as
test_conv1d.py), the reference against naive loops, the Numba path's row chunks, need_gx,
empty batches and strided inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from tests._util import bound, call, kernel, to_device, to_host
from tests.kernels.test_conv1d import (
    DTYPES,
    EDGE_CASES,
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

OPS = ("conv1d", "conv1d_relu")


def swap(a):
    """(N, C, L) ↔ (N, L, C); None stays None."""
    return None if a is None else np.ascontiguousarray(np.swapaxes(a, 1, 2))


def check_channels_last(op, backend, x, w, b, gy, p):
    """``backend``'s channels-last fwd/bwd on the swapped arrays vs the channels-first
    float64 reference; x, gy are given channels-first. conv1d_relu's bwd gets the
    reference's y in x's dtype, as in test_conv1d_relu.py."""
    relu = op == "conv1d_relu"
    dtype = x.dtype
    N, C, _ = x.shape
    O, _, K = w.shape
    ref = kernels.get(op, "numpy")
    y_ref = ref.fwd(f64(x), f64(w), f64(b), **p)
    y_in = y_ref.astype(dtype)
    saved_ref = (f64(y_in),) if relu else ()
    g_ref = ref.bwd(f64(gy), f64(x), f64(w), *saved_ref, **p)
    conv = kernels.get("conv1d", "numpy")            # the same sums over absolute values
    ax, aw, ab, agy = (abs_or_none(a) for a in (x, w, b, gy))
    y_abs = conv.fwd(ax, aw, ab, **p)
    g_abs = conv.bwd(agy, ax, aw, **p)

    xl, gyl, yl = swap(x), swap(gy), swap(y_in)
    mod = kernel(op, backend)
    dev = [to_device(a, backend) for a in (xl, w, b, gyl, yl)]
    y = to_host(mod.fwd(dev[0], dev[1], dev[2], **p, channels_last=True))
    saved = (dev[4],) if relu else ()
    grads = to_host(mod.bwd(dev[3], dev[0], dev[1], *saved, **p, channels_last=True))
    for before, after in zip((xl, w, b, gyl, yl), dev):
        if before is not None:
            np.testing.assert_array_equal(to_host(after), before)   # inputs not mutated

    assert y.dtype == dtype and y.shape == (N, y_ref.shape[2], O)
    assert sum_err(swap(y), y_ref, y_abs) <= bound(dtype, "sum", C * K + 1)
    gx, gw, gb = grads
    assert gx.shape == xl.shape
    terms = (O * K, N * gy.shape[2], N * gy.shape[2])               # gx, gw, gb
    for name, g, gr, ga, m in zip(("gx", "gw", "gb"), (swap(gx), gw, gb), g_ref, g_abs,
                                  terms):
        assert g.dtype == dtype and g.shape == gr.shape, name
        assert sum_err(g, gr, ga) <= bound(dtype, "sum", m), name


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backend_matches_reference(op, backend, dtype, data):
    case = data.draw(conv_cases(), label="case")
    check_channels_last(op, backend, *draw_inputs(data, case, dtype))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", EDGE_CASES)
def test_backend_matches_reference_on_edge_cases(op, backend, dtype, case):
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(1), xs, ws, has_bias, p, dtype)
    check_channels_last(op, backend, x, w, b, gy, p)


@pytest.mark.parametrize("case", EDGE_CASES[:6])
def test_reference_matches_naive_loops(case):
    """The reference's channels-last path against the naive loops of test_conv1d.py."""
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(0), xs, ws, has_bias, p)
    ref = kernels.get("conv1d", "numpy")
    y = ref.fwd(swap(x), w, b, **p, channels_last=True)
    np.testing.assert_allclose(swap(y), naive_fwd(x, w, b, p), rtol=1e-12, atol=1e-12)
    gx, gw, gb = ref.bwd(swap(gy), swap(x), w, **p, channels_last=True)
    for got, want in zip((swap(gx), gw, gb), naive_bwd(gy, x, w, p)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rows", [1, 7, 64])
@pytest.mark.parametrize("case", EDGE_CASES[:8])
def test_numba_row_chunks_match_one_chunk(monkeypatch, op, rows, case):
    """The channels-last Numba path works through the batch about ROWS rows at a time."""
    from kernels import _im2col

    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(6), (5,) + xs[1:], ws, has_bias, p)
    mod = kernels.get(op, "numba")
    y_one = mod.fwd(swap(x), w, b, **p, channels_last=True)
    saved = (y_one,) if op == "conv1d_relu" else ()
    g_one = mod.bwd(swap(gy), swap(x), w, *saved, **p, channels_last=True)
    monkeypatch.setattr(_im2col, "ROWS", rows)
    y = mod.fwd(swap(x), w, b, **p, channels_last=True)
    # float64; BLAS may block a product of other sizes differently: rounding only
    np.testing.assert_allclose(y, y_one, rtol=1e-12, atol=1e-12)
    g = mod.bwd(swap(gy), swap(x), w, *saved, **p, channels_last=True)
    for got, want in zip(g, g_one):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_skipping_gx_leaves_gw_and_gb_bitwise_unchanged(op, backend, dtype):
    rng = np.random.default_rng(5)
    p = params(2, 1, 2, 2)
    x = rng.standard_normal((3, 17, 4)).astype(dtype)              # (N, L, C)
    w = rng.standard_normal((5, 4, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    y = call(op, backend, "fwd", x, w, b, **p, channels_last=True)
    gy = rng.standard_normal(y.shape).astype(dtype)
    saved = (y,) if op == "conv1d_relu" else ()
    full = call(op, backend, "bwd", gy, x, w, *saved, **p, channels_last=True)
    part = call(op, backend, "bwd", gy, x, w, *saved, **p, channels_last=True,
                need_gx=False)
    assert part[0] is None and full[0].shape == x.shape
    np.testing.assert_array_equal(part[1], full[1])
    np.testing.assert_array_equal(part[2], full[2])


@pytest.mark.parametrize("op", OPS)
def test_empty_batch_gives_empty_output_and_zero_parameter_gradients(op, backend):
    p = params(1, 1, 1, 1)
    x = np.zeros((0, 6, 3))
    w = np.ones((2, 3, 3))
    y = call(op, backend, "fwd", x, w, np.ones(2), **p, channels_last=True)
    assert y.shape == (0, 6, 2)
    saved = (y,) if op == "conv1d_relu" else ()
    gx, gw, gb = call(op, backend, "bwd", np.zeros((0, 6, 2)), x, w, *saved, **p,
                      channels_last=True)
    assert gx.shape == (0, 6, 3)
    np.testing.assert_array_equal(gw, np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(gb, np.zeros(2))


@pytest.mark.parametrize("op", OPS)
def test_strided_inputs_give_the_contiguous_result(op, backend):
    rng = np.random.default_rng(2)
    p = params(2, 1, 0, 1)
    x = rng.standard_normal((3, 20, 4))[:, ::2, ::2]               # (3, 10, 2), strided
    w = rng.standard_normal((6, 3, 3))[::2, ::2]                   # (3, 2, 3), strided
    y = call(op, backend, "fwd", x, w, None, **p, channels_last=True)
    y_c = call(op, backend, "fwd", np.ascontiguousarray(x), np.ascontiguousarray(w), None,
               **p, channels_last=True)
    np.testing.assert_array_equal(y, y_c)
    gy = rng.standard_normal((3, y.shape[1], 6))[:, :, ::2]        # (3, Lo, 3), strided
    saved = (y,) if op == "conv1d_relu" else ()
    g = call(op, backend, "bwd", gy, x, w, *saved, **p, channels_last=True)
    g_c = call(op, backend, "bwd", np.ascontiguousarray(gy), np.ascontiguousarray(x),
               np.ascontiguousarray(w), *saved, **p, channels_last=True)
    for a, c in zip(g, g_c):
        np.testing.assert_array_equal(a, c)
