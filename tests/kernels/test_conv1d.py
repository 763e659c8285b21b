"""Kernel-level tests of conv1d (kernels/conv1d): the reference against naive loops, every
backend against the reference (float32 and float64, forward and backward), finite
differences, the SPEC's properties on every backend, PyTorch as a second oracle, signature
parity and the CUDA source compiling with nvcc."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernels
from minimtl.testing import elements, ncl_shapes
from tests._util import bound, call, kernel, rel_err, to_device, to_host

OP = "conv1d"
DTYPES = ("float32", "float64")


def params(stride=1, padding_left=0, padding_right=0, dilation=1):
    return dict(stride=stride, padding_left=padding_left, padding_right=padding_right,
                dilation=dilation)


def arrays(shape, dtype):
    """minimtl.testing.arrays with magnitudes below 1e-6 flushed to 0: a product of two
    tiny normal floats (1e-5 · 1e-38) is subnormal in float32, and CuPy flushes those."""
    tiny = elements(dtype).map(lambda v: 0.0 if abs(v) < 1e-6 else v)
    return hnp.arrays(np.dtype(dtype), shape, elements=tiny)


def sum_err(out, ref, scale):
    """‖out − ref‖ / ‖scale‖ with scale the same sums over the absolute values: rounding
    errors of a sum are relative to Σ|terms|, which ‖ref‖ underestimates under
    cancellation (x·w = 57.3 − 57.1 leaves float32 an error of 1e-5 · |result|)."""
    out = np.asarray(out, dtype=np.float64)
    assert out.shape == ref.shape, f"shape {out.shape} != reference shape {ref.shape}"
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(scale), 1e-300))


def abs_or_none(a):
    return None if a is None else np.abs(a.astype(np.float64))


def out_len(L, K, p):
    """Count the window positions directly (independent of the SPEC's closed form)."""
    span = p["dilation"] * (K - 1) + 1
    padded = L + p["padding_left"] + p["padding_right"]
    return sum(1 for t in range(padded) if t * p["stride"] + span <= padded)


@st.composite
def conv_cases(draw, max_n=3, max_c=4, max_o=4, max_l=16, max_k=4, bias=None):
    """(x shape, w shape, has bias, params) of a valid conv1d: the dilated window always fits
    the padded input (right padding is grown when it would not)."""
    N, C, L = draw(ncl_shapes(max_n=max_n, max_c=max_c, max_l=max_l))
    O = draw(st.integers(1, max_o))
    K = draw(st.integers(1, max_k))
    d = draw(st.integers(1, 3))
    pl = draw(st.integers(0, 3))
    pr = draw(st.integers(0, 3))
    span = d * (K - 1) + 1
    pr += max(0, span - (L + pl + pr))
    p = params(draw(st.integers(1, 3)), pl, pr, d)
    has_bias = draw(st.booleans()) if bias is None else bias
    return (N, C, L), (O, C, K), has_bias, p


def draw_inputs(data, case, dtype):
    xs, ws, has_bias, p = case
    x = data.draw(arrays(xs, dtype), label="x")
    w = data.draw(arrays(ws, dtype), label="w")
    b = data.draw(arrays((ws[0],), dtype), label="b") if has_bias else None
    Lo = out_len(xs[2], ws[2], p)
    gy = data.draw(arrays((xs[0], ws[0], Lo), dtype), label="gy")
    return x, w, b, gy, p


def rand_inputs(rng, xs, ws, has_bias, p, dtype="float64"):
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if has_bias else None
    gy = rng.standard_normal((xs[0], ws[0], out_len(xs[2], ws[2], p))).astype(dtype)
    return x, w, b, gy


def f64(a):
    return None if a is None else a.astype(np.float64)


# ---------------------------------------------------------------- (a) naive loops

def naive_fwd(x, w, b, p):
    N, C, L = x.shape
    O, _, K = w.shape
    S, pl, d = p["stride"], p["padding_left"], p["dilation"]
    Lo = out_len(L, K, p)
    y = np.zeros((N, O, Lo))
    for n in range(N):
        for o in range(O):
            for t in range(Lo):
                s = 0.0 if b is None else b[o]
                for c in range(C):
                    for k in range(K):
                        j = t * S + k * d - pl
                        if 0 <= j < L:
                            s += w[o, c, k] * x[n, c, j]
                y[n, o, t] = s
    return y


def naive_bwd(gy, x, w, p):
    N, C, L = x.shape
    O, _, K = w.shape
    S, pl, d = p["stride"], p["padding_left"], p["dilation"]
    gx = np.zeros(x.shape)
    gw = np.zeros(w.shape)
    gb = np.zeros(O)
    for n in range(N):
        for o in range(O):
            for t in range(gy.shape[2]):
                gb[o] += gy[n, o, t]
                for c in range(C):
                    for k in range(K):
                        j = t * S + k * d - pl
                        if 0 <= j < L:
                            gw[o, c, k] += gy[n, o, t] * x[n, c, j]
                            gx[n, c, j] += gy[n, o, t] * w[o, c, k]
    return gx, gw, gb


NAIVE_CASES = [
    ((2, 3, 9), (4, 3, 3), True, params()),
    ((2, 3, 9), (4, 3, 3), False, params(2, 1, 2, 2)),
    ((1, 2, 5), (3, 2, 4), True, params(3, 3, 0, 1)),
    ((3, 1, 7), (2, 1, 1), True, params(2, 0, 1, 1)),
    ((2, 2, 3), (2, 2, 3), True, params(1, 2, 2, 3)),     # window wider than L
]


@pytest.mark.parametrize("case", NAIVE_CASES)
def test_reference_matches_naive_loops(case):
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(0), xs, ws, has_bias, p)
    ref = kernels.get(OP, "numpy")
    y = ref.fwd(x, w, b, **p)
    np.testing.assert_allclose(y, naive_fwd(x, w, b, p), rtol=1e-12, atol=1e-12)
    for got, want in zip(ref.bwd(gy, x, w, **p), naive_bwd(gy, x, w, p)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_reference_rejects_inconsistent_shapes():
    ref = kernels.get(OP, "numpy")
    with pytest.raises(ValueError, match="conv1d"):
        ref.fwd(np.zeros((2, 3, 8)), np.zeros((4, 2, 3)), None, **params())
    with pytest.raises(ValueError, match="conv1d"):
        ref.fwd(np.zeros((2, 3, 8)), np.zeros((4, 3, 3)), np.zeros(3), **params())
    with pytest.raises(ValueError, match="conv1d"):
        ref.fwd(np.zeros((2, 3, 2)), np.zeros((4, 3, 3)), None, **params())
    with pytest.raises(ValueError, match="conv1d"):
        ref.bwd(np.zeros((2, 4, 5)), np.zeros((2, 3, 8)), np.zeros((4, 3, 3)), **params())


# ---------------------------------------------------------------- (b) backends vs reference

def check_against_reference(backend, x, w, b, gy, p):
    """Forward and backward of ``backend`` vs the float64 reference on the same values;
    dtypes preserved, inputs untouched."""
    dtype = x.dtype
    N, C, _ = x.shape
    O, _, K = w.shape
    ref = kernels.get(OP, "numpy")
    y_ref = ref.fwd(f64(x), f64(w), f64(b), **p)
    g_ref = ref.bwd(f64(gy), f64(x), f64(w), **p)
    ax, aw, ab, agy = (abs_or_none(a) for a in (x, w, b, gy))
    y_abs = ref.fwd(ax, aw, ab, **p)
    g_abs = ref.bwd(agy, ax, aw, **p)

    mod = kernel(OP, backend)
    dev = [to_device(a, backend) for a in (x, w, b, gy)]
    y = to_host(mod.fwd(dev[0], dev[1], dev[2], **p))
    grads = to_host(mod.bwd(dev[3], dev[0], dev[1], **p))
    for before, after in zip((x, w, b, gy), dev):
        if before is not None:
            np.testing.assert_array_equal(to_host(after), before)   # inputs not mutated

    assert y.dtype == dtype and y.shape == y_ref.shape
    assert sum_err(y, y_ref, y_abs) <= bound(dtype, "sum", C * K + 1)
    assert isinstance(grads, tuple) and len(grads) == 3
    terms = (O * K, N * gy.shape[2], N * gy.shape[2])               # gx, gw, gb
    for name, g, gr, ga, m in zip(("gx", "gw", "gb"), grads, g_ref, g_abs, terms):
        assert g.dtype == dtype and g.shape == gr.shape, name
        assert sum_err(g, gr, ga) <= bound(dtype, "sum", m), name


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backend_matches_reference(backend, dtype, data):
    case = data.draw(conv_cases(), label="case")
    check_against_reference(backend, *draw_inputs(data, case, dtype))


EDGE_CASES = [
    ((2, 3, 5), (4, 3, 5), True, params()),                  # L equal to the window: Lo = 1
    ((2, 3, 5), (4, 3, 1), True, params(1, 0, 0, 1)),        # K = 1 (a 1x1 conv)
    ((1, 2, 16), (3, 2, 3), True, params(1, 0, 0, 7)),       # wide dilation
    ((2, 2, 7), (3, 2, 2), False, params(5, 0, 0, 1)),       # stride wider than the window
    ((2, 1, 2), (2, 1, 3), True, params(1, 4, 3, 1)),        # padding wider than L
    ((2, 3, 8), (2, 3, 3), True, params(1, 0, 2, 1)),        # 'same', unequal padding
    ((2, 3, 8), (2, 3, 4), True, params(1, 2, 1, 1)),
    ((3, 5, 40), (70, 5, 3), True, params(1, 1, 1, 1)),      # several GPU row/column tiles
    ((2, 33, 20), (3, 33, 3), True, params(2, 1, 0, 2)),     # C > 32: reduction chunks
    ((6, 3, 100), (5, 3, 3), True, params(1, 1, 0, 1)),      # several GPU column tiles and
    ((4, 2, 150), (3, 2, 4), True, params(2, 3, 1, 2)),      # ... reduction slices
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", EDGE_CASES)
def test_backend_matches_reference_on_edge_cases(backend, dtype, case):
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(1), xs, ws, has_bias, p, dtype)
    check_against_reference(backend, x, w, b, gy, p)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_gives_empty_output_and_zero_parameter_gradients(backend, dtype):
    p = params(1, 1, 1, 1)
    x = np.zeros((0, 3, 6), dtype)
    w = np.ones((2, 3, 3), dtype)
    b = np.ones(2, dtype)
    y = call(OP, backend, "fwd", x, w, b, **p)
    assert y.shape == (0, 2, 6) and y.dtype == np.dtype(dtype)
    gx, gw, gb = call(OP, backend, "bwd", np.zeros((0, 2, 6), dtype), x, w, **p)
    assert gx.shape == (0, 3, 6) and gx.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(gw, np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(gb, np.zeros(2))


@pytest.mark.parametrize("cols", [1, 20, 64])
@pytest.mark.parametrize("case", EDGE_CASES[:8])
def test_numba_batch_chunks_match_one_chunk(monkeypatch, cols, case):
    """The numba kernels work through the batch a chunk of about _COLS columns at a time."""
    from kernels.conv1d import numba_cpu

    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(6), (5,) + xs[1:], ws, has_bias, p)
    monkeypatch.setattr(numba_cpu, "_COLS", cols)
    ref = kernels.get(OP, "numpy")
    assert rel_err(numba_cpu.fwd(x, w, b, **p), ref.fwd(x, w, b, **p)) <= 1e-12
    for got, want in zip(numba_cpu.bwd(gy, x, w, **p), ref.bwd(gy, x, w, **p)):
        assert rel_err(got, want) <= 1e-12


def test_non_contiguous_inputs_give_the_same_result(backend):
    rng = np.random.default_rng(2)
    p = params(2, 1, 0, 1)
    x = rng.standard_normal((3, 4, 20))[:, ::2, ::2]            # (3, 2, 10), strided
    w = rng.standard_normal((3, 2, 6))[:, :, ::2]               # (3, 2, 3)
    b = rng.standard_normal(6)[::2]
    gy = rng.standard_normal((3, 2 * 3, 5))[:, ::2, :]          # (3, 3, 5)
    want_y = call(OP, "numpy", "fwd", *(np.ascontiguousarray(a) for a in (x, w, b)), **p)
    want_g = call(OP, "numpy", "bwd", *(np.ascontiguousarray(a) for a in (gy, x, w)), **p)
    assert rel_err(call(OP, backend, "fwd", x, w, b, **p), want_y) <= 1e-12
    for got, want in zip(call(OP, backend, "bwd", gy, x, w, **p), want_g):
        assert rel_err(got, want) <= 1e-12


# ---------------------------------------------------------------- (c) finite differences

FD_CASES = [
    ((2, 3, 9), (4, 3, 3), params(1, 1, 1, 1)),
    ((2, 2, 11), (3, 2, 2), params(2, 0, 3, 3)),
    ((1, 3, 6), (2, 3, 4), params(3, 2, 0, 1)),
]


@pytest.mark.parametrize("case", FD_CASES)
def test_bwd_matches_central_differences(backend, case):
    xs, ws, p = case
    rng = np.random.default_rng(3)
    x, w, b, gy = rand_inputs(rng, xs, ws, True, p)
    grads = call(OP, backend, "bwd", gy, x, w, **p)
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


# ---------------------------------------------------------------- (d) properties

@given(data=st.data())
def test_conv1d_is_linear_in_x_and_in_w(backend, data):
    xs, ws, _, p = data.draw(conv_cases(bias=False), label="case")
    x1, x2 = (data.draw(arrays(xs, "float64")) for _ in range(2))
    w1, w2 = (data.draw(arrays(ws, "float64")) for _ in range(2))
    a, c = data.draw(st.floats(-3, 3)), data.draw(st.floats(-3, 3))

    def f(x_, w_):
        return call(OP, backend, "fwd", x_, w_, None, **p)

    def size(x_, w_):   # Σ|w|·|x| per output: the scale of the rounding errors
        return call(OP, "numpy", "fwd", np.abs(x_), np.abs(w_), None, **p).max() + 1e-300

    lhs = f(a * x1 + c * x2, w1)
    rhs = a * f(x1, w1) + c * f(x2, w1)
    assert np.abs(lhs - rhs).max() <= 1e-12 * (abs(a) * size(x1, w1) + abs(c) * size(x2, w1))
    lhs = f(x1, a * w1 + c * w2)
    rhs = a * f(x1, w1) + c * f(x1, w2)
    assert np.abs(lhs - rhs).max() <= 1e-12 * (abs(a) * size(x1, w1) + abs(c) * size(x1, w2))


@given(data=st.data())
def test_bwd_is_the_adjoint_of_fwd(backend, data):
    """⟨conv(x, w), v⟩ = ⟨x, gx(v)⟩ = ⟨w, gw(v)⟩ (no bias)."""
    xs, ws, _, p = data.draw(conv_cases(bias=False), label="case")
    x, w, _, v, p = draw_inputs(data, (xs, ws, False, p), "float64")
    y = call(OP, backend, "fwd", x, w, None, **p)
    gx, gw, _ = call(OP, backend, "bwd", v, x, w, **p)
    lhs = float(np.sum(y * v))
    # every inner product sums the same products w·x·v; scale the tolerance by their size
    scale = float(np.sum(np.abs(call(OP, "numpy", "fwd", np.abs(x), np.abs(w), None, **p))
                         * np.abs(v))) + 1e-300
    assert abs(lhs - float(np.sum(x * gx))) <= 1e-12 * scale
    assert abs(lhs - float(np.sum(w * gw))) <= 1e-12 * scale


@pytest.mark.parametrize("k0", [0, 1, 3])
def test_delta_kernel_is_a_shift(backend, k0):
    rng = np.random.default_rng(4)
    C, K = 3, 4
    x = rng.standard_normal((2, C, 10))
    w = np.zeros((C, C, K))
    for c in range(C):
        w[c, c, k0] = 1.0
    y = call(OP, backend, "fwd", x, w, None, **params())
    np.testing.assert_array_equal(y, x[:, :, k0:k0 + 10 - K + 1])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_one_channel_stride_one_equals_np_correlate(backend, dtype, data):
    L = data.draw(st.integers(1, 16))
    K = data.draw(st.integers(1, L))
    x = data.draw(arrays((L,), dtype))
    w = data.draw(arrays((K,), dtype))
    y = call(OP, backend, "fwd", x[None, None], w[None, None], None, **params())
    want = np.correlate(x.astype(np.float64), w.astype(np.float64), "valid")
    scale = np.correlate(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), "valid")
    assert y.shape == (1, 1, L - K + 1)
    assert sum_err(y[0, 0], want, scale) <= bound(dtype, "sum", K)


@given(data=st.data())
@example(data=None)
def test_output_length_follows_the_formula(backend, data):
    if data is None:   # the tightest fit: the dilated window spans the padded input exactly
        xs, ws, p = (1, 1, 3), (1, 1, 3), params(4, 1, 1, 2)
    else:
        xs, ws, _, p = data.draw(conv_cases(max_n=1, max_c=1, max_o=1), label="case")
    y = call(OP, backend, "fwd", np.ones(xs), np.ones(ws), None, **p)
    assert y.shape == (xs[0], ws[0], out_len(xs[2], ws[2], p))


# ---------------------------------------------------------------- (e) PyTorch oracle

TORCH_CASES = [
    ((2, 3, 10), (4, 3, 3), True, params()),
    ((2, 3, 10), (4, 3, 3), False, params(2, 1, 1, 1)),
    ((3, 2, 13), (5, 2, 4), True, params(1, 2, 1, 1)),       # unequal ('same', even K)
    ((2, 4, 17), (3, 4, 3), True, params(3, 0, 2, 2)),
    ((1, 1, 9), (1, 1, 2), False, params(1, 3, 0, 4)),
    ((2, 32, 64), (64, 32, 3), True, params()),                # the article's first layer
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_pytorch(backend, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, ws, has_bias, p = case
    x, w, b, gy = rand_inputs(np.random.default_rng(5), xs, ws, has_bias, p)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if has_bias else None
    yt = F.conv1d(F.pad(xt, (p["padding_left"], p["padding_right"])), wt, bt,
                  stride=p["stride"], dilation=p["dilation"])
    yt.backward(torch.tensor(gy))
    y = call(OP, backend, "fwd", x, w, b, **p)
    gx, gw, gb = call(OP, backend, "bwd", gy, x, w, **p)
    assert rel_err(y, yt.detach().numpy()) <= 1e-10
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10
    assert rel_err(gw, wt.grad.numpy()) <= 1e-10
    if has_bias:
        assert rel_err(gb, bt.grad.numpy()) <= 1e-10
    else:
        assert rel_err(gb, gy.sum(axis=(0, 2))) <= 1e-10


# ---------------------------------------------------------------- (f), (g) contract



