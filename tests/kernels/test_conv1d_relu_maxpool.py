"""Kernel-level tests of conv1d_relu_maxpool (kernels/conv1d_relu_maxpool): on every
backend it equals conv1d_relu followed by maxpool1d (the same backend's kernels; forward
values and argmax bitwise, backward within rounding), in both layouts; every backend
against the float64 reference; need_gx, row chunks, empty batches, bad shapes. Gradient
checks through the op are in tests/ops (minimtl.opcases)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from minimtl.testing import pool1d_params
from tests._util import bound, call, kernel, to_device, to_host
from tests.kernels.test_conv1d import (
    DTYPES,
    abs_or_none,
    conv_cases,
    f64,
    out_len,
    params,
    sum_err,
)
from tests.kernels.test_conv1d import arrays as finite_arrays

OP = "conv1d_relu_maxpool"


def pool_kw(p):
    return dict(pool_size=p["kernel_size"], pool_stride=p["stride"],
                pool_padding=p["padding"])


def swap(a):
    return None if a is None else np.ascontiguousarray(np.swapaxes(a, 1, 2))


def composed(backend, x, w, b, gy, conv_p, pool_p, cl):
    """conv1d_relu then maxpool1d with ``backend``'s own kernels: (y, argmax) and the
    gradients (maxpool1d's backward, then conv1d_relu's)."""
    r = call("conv1d_relu", backend, "fwd", x, w, b, **conv_p, channels_last=cl)
    y, argmax = call("maxpool1d", backend, "fwd", r, **pool_p, channels_last=cl)
    grads = None
    if gy is not None:
        (gr,) = call("maxpool1d", backend, "bwd", gy, argmax, length=r.shape[1 if cl else 2],
                     **pool_p, channels_last=cl)
        grads = call("conv1d_relu", backend, "bwd", gr, x, w, r, **conv_p, channels_last=cl)
    return y, argmax, grads


@st.composite
def block_cases(draw):
    """(x shape, w shape, has bias, conv params, pool params) with a valid pool over the
    convolution's output length."""
    xs, ws, has_bias, conv_p = draw(conv_cases(max_l=14))
    lc = out_len(xs[2], ws[2], conv_p)
    pool_p = draw(pool1d_params(lc))
    return xs, ws, has_bias, conv_p, pool_p


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_equals_conv1d_relu_then_maxpool1d(backend, dtype, cl, data):
    xs, ws, has_bias, conv_p, pool_p = data.draw(block_cases(), label="case")
    x = data.draw(finite_arrays(xs, dtype), label="x")
    w = data.draw(finite_arrays(ws, dtype), label="w")
    b = data.draw(finite_arrays((ws[0],), dtype), label="b") if has_bias else None
    if cl:
        x = swap(x)
    y_c, a_c, _ = composed(backend, x, w, b, None, conv_p, pool_p, cl)
    gy = data.draw(finite_arrays(y_c.shape, dtype), label="gy")
    _, _, g_c = composed(backend, x, w, b, gy, conv_p, pool_p, cl)
    kw = dict(conv_p, **pool_kw(pool_p), channels_last=cl)
    y, argmax = call(OP, backend, "fwd", x, w, b, **kw)
    assert y.dtype == np.dtype(dtype) and argmax.dtype == np.int32
    np.testing.assert_array_equal(y, y_c)
    np.testing.assert_array_equal(argmax, a_c)
    grads = call(OP, backend, "bwd", gy, x, w, y, argmax, **kw)
    # the same masked terms (SPEC); gb is summed over the pooled terms where the composition
    # sums the full-length rows: equal up to the rounding of those sums. Scale: the sums of
    # |terms| with |gz| bounded by (windows per position)·max|gy| ≤ pool_size·max|gy|
    n = x.shape[0]
    lc = out_len(xs[2], ws[2], conv_p)
    O, C, K = w.shape
    gz_bound = np.full((n, O, lc), pool_p["kernel_size"] * np.abs(f64(gy)).max(initial=0))
    xc = swap(x) if cl else x
    scale = kernels.get("conv1d", "numpy").bwd(gz_bound, abs_or_none(xc), abs_or_none(w),
                                               **conv_p)
    terms = (O * K, n * lc, n * lc)
    for name, g, want, sc, m in zip(("gx", "gw", "gb"), grads, g_c, scale, terms):
        assert g.dtype == np.dtype(dtype) and g.shape == want.shape, name
        got, exp = (swap(g), swap(want)) if (cl and name == "gx") else (g, want)
        assert sum_err(got, f64(exp), sc) <= bound(dtype, "sum", m), name


FIXED = [
    # (x shape (N, C, L), w shape, bias, conv params, pool params)
    ((3, 5, 40), (7, 5, 3), True, params(), dict(kernel_size=2, stride=2, padding=0)),
    ((2, 3, 21), (4, 3, 3), True, params(1, 1, 1, 1), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 4, 30), (6, 4, 2), False, params(2, 0, 1, 2), dict(kernel_size=2, stride=1, padding=1)),
    ((4, 33, 31), (40, 33, 3), True, params(), dict(kernel_size=2, stride=2, padding=0)),
    ((2, 2, 9), (3, 2, 3), True, params(), dict(kernel_size=7, stride=3, padding=0)),
    # the article's pool shape with padding: must not take the unpadded pairs path
    ((2, 3, 17), (4, 3, 3), True, params(), dict(kernel_size=2, stride=2, padding=1)),
]


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", FIXED)
def test_backend_matches_reference(backend, dtype, cl, case):
    """Against the float64 reference, with TESTING.md's sum bounds (random normal values:
    no near-ties, so the argmax agrees)."""
    xs, ws, has_bias, conv_p, pool_p = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if has_bias else None
    kw = dict(conv_p, **pool_kw(pool_p))
    ref = kernels.get(OP, "numpy")
    y_ref, a_ref = ref.fwd(f64(x), f64(w), f64(b), **kw)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    g_ref = ref.bwd(f64(gy), f64(x), f64(w), y_ref.astype(dtype).astype(np.float64), a_ref,
                    **kw)
    conv = kernels.get("conv1d", "numpy")
    ax, aw, ab = (abs_or_none(a) for a in (x, w, b))
    lc = out_len(xs[2], ws[2], conv_p)
    y_abs = conv.fwd(ax, aw, ab, **conv_p)
    g_abs = conv.bwd(np.full((xs[0], ws[0], lc), np.abs(gy).max()), ax, aw, **conv_p)

    mod = kernel(OP, backend)
    xin, gyin, yin = (swap(x), swap(gy), swap(y_ref.astype(dtype))) if cl else \
        (x, gy, y_ref.astype(dtype))
    ain = swap(a_ref) if cl else a_ref
    dev = [to_device(a, backend) for a in (xin, w, b, gyin, yin, ain)]
    y, argmax = to_host(mod.fwd(dev[0], dev[1], dev[2], **kw, channels_last=cl))
    grads = to_host(mod.bwd(dev[3], dev[0], dev[1], dev[4], dev[5], **kw, channels_last=cl))
    if cl:
        y, argmax = swap(y), swap(argmax)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(argmax, a_ref)
    C, K = ws[1], ws[2]
    # y[p] is the conv sum at argmax[p] (or 0): its scale is that sum's Σ|terms|
    y_scale = np.take_along_axis(y_abs, a_ref.astype(np.int64), axis=2)
    assert sum_err(y, y_ref, y_scale) <= bound(dtype, "sum", C * K + 1)
    gx = swap(grads[0]) if cl else grads[0]
    terms = (ws[0] * K, xs[0] * lc, xs[0] * lc)
    for name, g, gr, ga, m in zip(("gx", "gw", "gb"), (gx, grads[1], grads[2]), g_ref, g_abs,
                                  terms):
        assert g.dtype == np.dtype(dtype) and g.shape == gr.shape, name
        assert sum_err(g, gr, ga) <= bound(dtype, "sum", m), name


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
def test_skipping_gx_leaves_gw_and_gb_bitwise_unchanged(backend, cl):
    xs, ws, _, conv_p, pool_p = FIXED[1]
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs)
    x = swap(x) if cl else x
    w = rng.standard_normal(ws)
    kw = dict(conv_p, **pool_kw(pool_p), channels_last=cl)
    y, argmax = call(OP, backend, "fwd", x, w, None, **kw)
    gy = rng.standard_normal(y.shape)
    full = call(OP, backend, "bwd", gy, x, w, y, argmax, **kw)
    part = call(OP, backend, "bwd", gy, x, w, y, argmax, **kw, need_gx=False)
    assert part[0] is None and full[0].shape == x.shape
    np.testing.assert_array_equal(part[1], full[1])
    np.testing.assert_array_equal(part[2], full[2])


@pytest.mark.parametrize("rows", [1, 30, 100])
def test_numba_row_chunks_match_one_chunk(monkeypatch, rows):
    from kernels import _im2col

    xs, ws, _, conv_p, pool_p = FIXED[0]
    rng = np.random.default_rng(6)
    x = swap(rng.standard_normal(xs))
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    kw = dict(conv_p, **pool_kw(pool_p), channels_last=True)
    mod = kernels.get(OP, "numba")
    y1, a1 = mod.fwd(x, w, b, **kw)
    gy = rng.standard_normal(y1.shape)
    g1 = mod.bwd(gy, x, w, y1, a1, **kw)
    monkeypatch.setattr(_im2col, "ROWS", rows)
    y, a = mod.fwd(x, w, b, **kw)
    np.testing.assert_allclose(y, y1, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(a, a1)
    for got, want in zip(mod.bwd(gy, x, w, y, a, **kw), g1):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
def test_empty_batch(backend, cl):
    x = np.zeros((0, 9, 3) if cl else (0, 3, 9))
    w = np.ones((2, 3, 3))
    kw = dict(params(), pool_size=2, pool_stride=2, pool_padding=0, channels_last=cl)
    y, argmax = call(OP, backend, "fwd", x, w, np.ones(2), **kw)
    assert y.shape == ((0, 3, 2) if cl else (0, 2, 3)) and argmax.shape == y.shape
    gx, gw, gb = call(OP, backend, "bwd", y, x, w, y, argmax, **kw)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(gb, np.zeros(2))


def test_the_op_names_itself_and_the_shapes_for_a_pool_longer_than_the_conv_output():
    import minimtl as mt
    import minimtl.functional as F

    x = mt.tensor(np.zeros((2, 3, 6)), backend="numpy")
    w = mt.tensor(np.zeros((4, 3, 3)), backend="numpy")
    with pytest.raises(ValueError, match=r"conv1d_relu_maxpool: pool window 5 .*\(2, 3, 6\)"):
        F.conv1d_relu_maxpool1d(x, w, pool_size=5)
    with pytest.raises(ValueError, match="conv1d_relu_maxpool: pool_padding"):
        F.conv1d_relu_maxpool1d(x, w, pool_size=2, pool_padding=2)
