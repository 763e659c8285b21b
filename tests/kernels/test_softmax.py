"""Kernel-level tests of softmax and log_softmax (kernels/softmax, kernels/log_softmax):
the references against naive loops, every backend against the reference (float32 and
float64, forward and backward), finite differences, the SPEC's properties on every
backend, PyTorch as a second oracle, signature parity and the CUDA sources compiling with
nvcc."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from minimtl.testing import arrays
from tests._util import bound, call, far_below_max_rows, kernel, rel_err, ulps

OPS = ("softmax", "log_softmax")
DTYPES = ("float32", "float64")
F64 = np.float64


def ref(op):
    return kernels.get(op, "numpy")


def scaled_err(out, ref_out, scale) -> float:
    """‖out − ref‖ / max(‖ref‖, ‖scale‖): the normwise error, measured against the size of
    the terms (scale) where the result is their difference and may cancel (a gradient
    near a constant upstream gradient is tiny, but its rounding error is relative to the
    terms, for any floating-point method)."""
    out = np.asarray(out, F64)
    ref_out = np.asarray(ref_out, F64)
    assert out.shape == ref_out.shape
    den = max(np.linalg.norm(ref_out), np.linalg.norm(scale), 1e-300)
    return float(np.linalg.norm(out - ref_out) / den)


def bwd_scale(op, gy, y):
    """Size of the terms whose difference the backward forms (float64)."""
    gy, y = gy.astype(F64), y.astype(F64)
    if op == "softmax":  # y·gy − y·Σ gy·y
        return y * (np.abs(gy) + (np.abs(gy) * y).sum(axis=1, keepdims=True))
    return np.abs(gy) + np.exp(y) * np.abs(gy).sum(axis=1, keepdims=True)  # gy − exp(y)·Σgy


def eps_of(dtype) -> float:
    return float(np.finfo(dtype).eps)


# ---------------------------------------------------------------- (a) naive loops

def naive_softmax(x):
    M, K = x.shape
    y = np.zeros((M, K))
    for i in range(M):
        top = max(x[i])
        total = sum(math.exp(v - top) for v in x[i])
        for k in range(K):
            y[i, k] = math.exp(x[i, k] - top) / total
    return y


def naive_softmax_bwd(gy, y):
    M, K = y.shape
    gx = np.zeros((M, K))
    for i in range(M):
        for j in range(K):  # gx[j] = Σ_k gy[k]·∂y[k]/∂x[j], ∂y[k]/∂x[j] = y[k](δ − y[j])
            gx[i, j] = sum(gy[i, k] * y[i, k] * ((k == j) - y[i, j]) for k in range(K))
    return gx


def naive_log_softmax(x):
    M, K = x.shape
    y = np.zeros((M, K))
    for i in range(M):
        top = max(x[i])
        lse = top + math.log(sum(math.exp(v - top) for v in x[i]))
        for k in range(K):
            y[i, k] = x[i, k] - lse
    return y


def naive_log_softmax_bwd(gy, y):
    M, K = y.shape
    gx = np.zeros((M, K))
    for i in range(M):
        for j in range(K):  # ∂y[k]/∂x[j] = δ[k,j] − softmax[j]
            gx[i, j] = sum(gy[i, k] * ((k == j) - math.exp(y[i, j])) for k in range(K))
    return gx


NAIVE = {
    "softmax": (naive_softmax, naive_softmax_bwd),
    "log_softmax": (naive_log_softmax, naive_log_softmax_bwd),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (3, 4), (4, 7)])
def test_reference_matches_naive_loops(op, shape):
    rng = np.random.default_rng(sum(shape))
    x = 3 * rng.standard_normal(shape)
    gy = rng.standard_normal(shape)
    nf, nb = NAIVE[op]
    y = ref(op).fwd(x)
    assert rel_err(y, nf(x)) <= 1e-12
    (gx,) = ref(op).bwd(gy, y)
    assert rel_err(gx, nb(gy, y)) <= 1e-12


def test_reference_rejects_inconsistent_shapes():
    for op in OPS:
        with pytest.raises(ValueError, match=op):
            ref(op).fwd(np.zeros(3))
        with pytest.raises(ValueError, match=op):
            ref(op).fwd(np.zeros((3, 0)))
        with pytest.raises(ValueError, match=op):
            ref(op).bwd(np.zeros((2, 3)), np.zeros((3, 2)))


# ---------------------------------------------------------------- (b) backends vs reference

def check_agreement(op, backend, x, gy):
    """fwd and bwd of `backend` against the reference in float64 on the same values,
    rounded to the dtype (a float32 result below float32's range can only be 0); bwd gets
    the same saved output (the reference's, rounded to the dtype) on both sides."""
    dtype = x.dtype
    x0, gy0 = x.copy(), gy.copy()
    y = call(op, backend, "fwd", x)
    assert y.dtype == dtype and y.shape == x.shape
    y_ref = ref(op).fwd(x.astype(F64))
    y_in = y_ref.astype(dtype)
    assert rel_err(y, y_in) <= bound(dtype), "forward"
    y_in0 = y_in.copy()
    out = call(op, backend, "bwd", gy, y_in)
    assert isinstance(out, tuple) and len(out) == 1
    (gx,) = out
    assert gx.dtype == dtype and gx.shape == x.shape
    gx_ref = ref(op).bwd(gy.astype(F64), y_in.astype(F64))[0].astype(dtype)
    assert scaled_err(gx, gx_ref, bwd_scale(op, gy, y_in)) <= bound(dtype), "backward"
    for a, a0 in ((x, x0), (gy, gy0), (y_in, y_in0)):
        np.testing.assert_array_equal(a, a0)  # inputs never written


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backends_agree_with_reference(backend, op, dtype, data):
    M = data.draw(st.integers(1, 4), label="M")
    K = data.draw(st.integers(1, 6), label="K")
    x = data.draw(arrays((M, K), dtype), label="x")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    gy = rng.standard_normal((M, K)).astype(dtype)
    check_agreement(op, backend, x, gy)


# Shapes that exercise every CUDA lane grouping (K = 1 -> 1 lane per row, 10 -> 4,
# 37 -> 16, 300 -> 32 with several columns per lane), partial warps and many blocks.
WIDE_AND_TALL = [(0, 5), (1, 1), (7, 1), (33, 10), (300, 10), (65, 37), (9, 300), (4000, 10)]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WIDE_AND_TALL)
def test_backends_agree_on_wide_and_tall_shapes(backend, op, dtype, shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    check_agreement(op, backend, x, gy)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_parallel_path_agrees_with_reference(op, dtype, monkeypatch):
    # the prange path only runs from PARALLEL_MIN elements on; force it on a small input
    monkeypatch.setattr(importlib.import_module(f"kernels.{op}.numba_cpu"), "PARALLEL_MIN", 0)
    rng = np.random.default_rng(5)
    x = (4 * rng.standard_normal((37, 9))).astype(dtype)
    check_agreement(op, "numba", x, rng.standard_normal(x.shape).astype(dtype))


EDGE_ROWS = [
    [[1.0, 1.0, 1.0]],  # ties
    [[10.0, -10.0]],  # one confident logit
    [[-10.0, 10.0, 10.0, -10.0]],  # tied maxima
    [[0.0], [5.0]],  # K = 1
    [[80.0, 0.0, -80.0], [1e-3, -1e-3, 0.0]],
]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", EDGE_ROWS)
def test_backends_agree_on_edge_cases(backend, op, dtype, rows):
    x = np.array(rows, dtype=dtype)
    gy = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    check_agreement(op, backend, x, gy)


# ---------------------------------------------------------------- (c) finite differences

def fd_check(op, backend, seed, shape=(3, 5)):
    rng = np.random.default_rng(seed)
    x = 2 * rng.standard_normal(shape)
    gy = rng.standard_normal(shape)
    u = rng.standard_normal(shape)
    eps = 1e-6
    f = kernel(op, backend).fwd
    numeric = np.sum(gy * (f(x + eps * u) - f(x - eps * u))) / (2 * eps)
    (gx,) = kernel(op, backend).bwd(gy, f(x))
    analytic = np.sum(gx * u)
    assert abs(numeric - analytic) <= 1e-7 * max(abs(numeric), abs(analytic))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bwd_matches_finite_differences(op, backend_name, seed):
    fd_check(op, backend_name, seed)


# ---------------------------------------------------------------- (d) properties

@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_values_in_unit_interval_and_rows_sum_to_one(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 8))
    x = data.draw(arrays((M, K), dtype, -100.0, 100.0), label="x")
    y = call("softmax", backend, "fwd", x)
    assert np.all((y >= 0) & (y <= 1))
    assert np.allclose(y.astype(F64).sum(axis=1), 1.0, rtol=0, atol=2 * K * eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_is_shift_invariant(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    x = data.draw(arrays((M, K), dtype), label="x")
    c = data.draw(arrays((M, 1), dtype, -50.0, 50.0), label="c")
    y = call("softmax", backend, "fwd", x)
    y_shifted = call("softmax", backend, "fwd", (x + c).astype(dtype))
    # x + c is rounded to the dtype: each logit moves by ≤ eps·|x + c|, y by that relatively
    tol = 4 * eps_of(dtype) * (np.abs(x).max() + np.abs(c).max() + 1)
    assert np.allclose(y_shifted, y, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_preserves_argmax(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    x = data.draw(arrays((M, K), dtype, -1e4, 1e4), label="x")
    y = call("softmax", backend, "fwd", x)
    rows = np.arange(M)
    assert np.all(y[rows, np.argmax(x, axis=1)] == y.max(axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_finite_for_logits_up_to_1e4(backend, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    y = call("softmax", backend, "fwd", x)
    assert np.all(np.isfinite(y))
    expected = np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]])
    assert np.allclose(y, expected, rtol=2 * eps_of(dtype), atol=0)


@pytest.mark.parametrize("K", [3, 8, 40])      # one lane per row, two, sixteen (CUDA)
def test_float32_softmax_of_tiny_probabilities_is_within_a_few_ulps(backend, K):
    """The SPEC's precision claim, entry by entry (a normwise check cannot see the error
    of entries near 1e-30): every float32 probability within 4 ulps of the float64 value
    on the same logits, however far below the row maximum its logit is."""
    x = far_below_max_rows(np.random.default_rng(K), 6, K)
    y = call("softmax", backend, "fwd", x)
    want = ref("softmax").fwd(x.astype(F64))
    assert y.dtype == np.float32 and np.all(want >= np.finfo(np.float32).tiny)
    err = ulps(y, want)
    worst = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= 4, f"{err.max():.1f} ulps at {worst}"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [3, 12])          # one lane per row, four (CUDA)
def test_a_masked_logit_of_minus_inf_drops_out_of_its_row(backend, op, dtype, K):
    """A logit of −inf (a mask) has probability 0 (log-probability −inf), and the rest of
    its row is the op of the row without it: finite, never NaN."""
    rng = np.random.default_rng(K)
    x = (3 * rng.standard_normal((4, K))).astype(dtype)
    masked = rng.random((4, K)) < 0.4
    masked[:, 0] = False                          # every row keeps a finite logit
    x[masked] = -np.inf
    with np.errstate(invalid="ignore"):
        y = call(op, backend, "fwd", x)
    for i in range(4):
        keep = ~masked[i]
        want = ref(op).fwd(x[i:i + 1, keep].astype(F64))[0]
        assert rel_err(y[i, keep], want) <= bound(dtype), (i, y[i])
        assert np.all(y[i, masked[i]] == (0.0 if op == "softmax" else -np.inf)), (i, y[i])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_backward_of_a_constant_upstream_gradient_is_zero(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    x = data.draw(arrays((M, K), dtype), label="x")
    c = data.draw(arrays((M, 1), dtype), label="c")
    y = call("softmax", backend, "fwd", x)
    (gx,) = call("softmax", backend, "bwd", np.broadcast_to(c, (M, K)).copy(), y)
    # gx = c·y·(1 − Σy): Σy of the rounded y is 1 within K·eps
    assert np.all(np.abs(gx) <= 2 * K * eps_of(dtype) * np.abs(c) * y + 1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_log_softmax_rows_have_logsumexp_zero_and_are_nonpositive(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 8))
    x = data.draw(arrays((M, K), dtype, -100.0, 100.0), label="x")
    y = call("log_softmax", backend, "fwd", x)
    assert np.all(y <= 0)
    y64 = y.astype(F64)
    top = y64.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(y64 - top).sum(axis=1))
    # each y is rounded by ≤ eps·|y|, which moves logsumexp by ≤ eps·max|y|
    assert np.all(np.abs(lse) <= 4 * eps_of(dtype) * (1 + np.abs(y64).max(axis=1)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_of_minus_1000_and_1_is_finite_and_exact(backend, dtype):
    y = call("log_softmax", backend, "fwd", np.array([[-1000.0, 1.0]], dtype=dtype))
    np.testing.assert_array_equal(y, np.array([[-1001.0, 0.0]], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_log_softmax_equals_log_of_softmax(backend, dtype, data):
    M, K = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    x = data.draw(arrays((M, K), dtype), label="x")  # moderate: softmax ≥ e⁻²⁰ / K
    y = call("log_softmax", backend, "fwd", x).astype(F64)
    log_s = np.log(call("softmax", backend, "fwd", x).astype(F64))
    assert np.allclose(y, log_s, rtol=0, atol=4 * eps_of(dtype) * (1 + np.abs(y)))


# ---------------------------------------------------------------- (e) PyTorch oracle

@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (32, 10), (5, 100)])
def test_matches_pytorch(backend, op, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(shape[1])
    x = 3 * rng.standard_normal(shape)
    gy = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    fn = torch.softmax if op == "softmax" else torch.log_softmax
    yt = fn(xt, dim=1)
    yt.backward(torch.tensor(gy))
    y = call(op, backend, "fwd", x)
    (gx,) = call(op, backend, "bwd", gy, y)
    assert rel_err(y, yt.detach().numpy()) <= 1e-10
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10


# ---------------------------------------------------------------- (f, g) contract




