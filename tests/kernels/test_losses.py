"""Kernel-level tests of the five losses (kernels/cross_entropy, soft_cross_entropy,
bce_with_logits, bce, mse): the references against naive loops, every backend against the
reference (float32 and float64, forward and backward), finite differences, the SPECs'
properties on every backend, PyTorch as a second oracle, signature parity and the CUDA
sources compiling with nvcc."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from minimtl.testing import arrays, labels, shapes
from tests._util import bound, call, far_below_max_rows, rel_err, ulps

OPS = ("cross_entropy", "soft_cross_entropy", "bce_with_logits", "bce", "mse")
ROW_OPS = ("cross_entropy", "soft_cross_entropy")
DTYPES = ("float32", "float64")
F64 = np.float64
EPS_BCE = 1e-7


def ref(op):
    return kernels.get(op, "numpy")


def eps_of(dtype) -> float:
    return float(np.finfo(dtype).eps)


def scaled_err(out, ref_out, scale) -> float:
    """‖out − ref‖ / max(‖ref‖, ‖scale‖): the normwise error, measured against the size of
    the terms (scale) where the result is their difference and may cancel (a gradient near
    its optimum is tiny, but its rounding error is relative to the terms)."""
    out = np.asarray(out, F64)
    ref_out = np.asarray(ref_out, F64)
    assert out.shape == ref_out.shape
    den = max(np.linalg.norm(ref_out), np.linalg.norm(scale), 1e-300)
    return float(np.linalg.norm(out - ref_out) / den)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logsumexp(x):
    top = x.max(axis=1)
    return top + np.log(np.exp(x - top[:, None]).sum(axis=1))


# ---------------------------------------------------------------- (a) naive loops

def naive_cross_entropy(x, y):
    M, K = x.shape
    loss, lse, gx = np.zeros(M), np.zeros(M), np.zeros((M, K))
    for i in range(M):
        top = max(x[i])
        lse[i] = top + math.log(sum(math.exp(v - top) for v in x[i]))
        loss[i] = lse[i] - x[i, y[i]]
        for k in range(K):  # d/dx[k] of lse − x[y] = softmax[k] − [k = y]
            gx[i, k] = math.exp(x[i, k] - lse[i]) - (k == y[i])
    return loss, lse, gx


def naive_soft_cross_entropy(x, p):
    M, K = x.shape
    loss, lse, gx, gp = np.zeros(M), np.zeros(M), np.zeros((M, K)), np.zeros((M, K))
    for i in range(M):
        top = max(x[i])
        lse[i] = top + math.log(sum(math.exp(v - top) for v in x[i]))
        loss[i] = -sum(p[i, k] * (x[i, k] - lse[i]) for k in range(K))
        for j in range(K):  # Σ_k p[k]·(softmax[j] − [k = j])
            s_j = math.exp(x[i, j] - lse[i])
            gx[i, j] = sum(p[i, k] * (s_j - (k == j)) for k in range(K))
            gp[i, j] = lse[i] - x[i, j]
    return loss, lse, gx, gp


def naive_bce_with_logits(z, y):
    loss, gz = np.zeros(z.size), np.zeros(z.size)
    for i, (zi, yi) in enumerate(zip(z.ravel(), y.ravel())):
        s = 1 / (1 + math.exp(-zi))
        loss[i] = -(yi * math.log(s) + (1 - yi) * math.log(1 - s))
        gz[i] = s - yi
    return loss.reshape(z.shape), gz.reshape(z.shape)


def naive_bce(p, y):
    loss, gp = np.zeros(p.size), np.zeros(p.size)
    for i, (pi, yi) in enumerate(zip(p.ravel(), y.ravel())):
        q = min(max(pi, EPS_BCE), 1 - EPS_BCE)
        loss[i] = -(yi * math.log(q) + (1 - yi) * math.log(1 - q))
        gp[i] = (-yi / q + (1 - yi) / (1 - q)) if EPS_BCE <= pi <= 1 - EPS_BCE else 0.0
    return loss.reshape(p.shape), gp.reshape(p.shape)


def naive_mse(a, b):
    loss, ga = np.zeros(a.size), np.zeros(a.size)
    for i, (ai, bi) in enumerate(zip(a.ravel(), b.ravel())):
        loss[i] = (ai - bi) ** 2
        ga[i] = 2 * (ai - bi)
    return loss.reshape(a.shape), ga.reshape(a.shape)


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (4, 7)])
def test_row_loss_references_match_naive_loops(shape):
    rng = np.random.default_rng(sum(shape))
    x = 3 * rng.standard_normal(shape)
    y = rng.integers(0, shape[1], shape[0])
    p = rng.random(shape)
    g = rng.standard_normal(shape[0])

    loss, lse, gx = naive_cross_entropy(x, y)
    r_loss, r_lse = ref("cross_entropy").fwd(x, y)
    assert rel_err(r_loss, loss) <= 1e-12 and rel_err(r_lse, lse) <= 1e-12
    r_gx, none = ref("cross_entropy").bwd(g, x, y, r_lse)
    assert none is None and rel_err(r_gx, g[:, None] * gx) <= 1e-12

    loss, lse, gx, gp = naive_soft_cross_entropy(x, p)
    r_loss, r_lse = ref("soft_cross_entropy").fwd(x, p)
    assert rel_err(r_loss, loss) <= 1e-12 and rel_err(r_lse, lse) <= 1e-12
    r_gx, r_gp = ref("soft_cross_entropy").bwd(g, x, p, r_lse)
    assert rel_err(r_gx, g[:, None] * gx) <= 1e-12
    assert rel_err(r_gp, g[:, None] * gp) <= 1e-12


@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3, 4)])
def test_elementwise_loss_references_match_naive_loops(shape):
    rng = np.random.default_rng(len(shape))
    z = 3 * rng.standard_normal(shape)
    y = rng.random(shape)
    g = rng.standard_normal(shape)
    p = rng.uniform(0.02, 0.98, shape)
    p.flat[0] = 0.0  # one clipped probability
    b = rng.standard_normal(shape)

    loss, gz = naive_bce_with_logits(z, y)
    assert rel_err(ref("bce_with_logits").fwd(z, y), loss) <= 1e-12
    r_gz, none = ref("bce_with_logits").bwd(g, z, y)
    assert none is None and rel_err(r_gz, g * gz) <= 1e-12

    loss, gp = naive_bce(p, y)
    assert rel_err(ref("bce").fwd(p, y), loss) <= 1e-12
    r_gp, none = ref("bce").bwd(g, p, y)
    assert none is None and rel_err(r_gp, g * gp) <= 1e-12

    loss, ga = naive_mse(z, b)
    assert rel_err(ref("mse").fwd(z, b), loss) <= 1e-12
    r_ga, r_gb = ref("mse").bwd(g, z, b)
    assert rel_err(r_ga, g * ga) <= 1e-12 and rel_err(r_gb, -g * ga) <= 1e-12


def test_cross_entropy_reference_rejects_labels_out_of_range():
    x = np.zeros((2, 3))
    for bad in ([0, 3], [-1, 0]):
        with pytest.raises(ValueError, match="cross_entropy"):
            ref("cross_entropy").fwd(x, np.array(bad, dtype=np.int64))
    with pytest.raises(ValueError, match="cross_entropy"):
        ref("cross_entropy").fwd(x, np.zeros(3, dtype=np.int64))


def test_references_reject_inconsistent_shapes():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="soft_cross_entropy"):
        ref("soft_cross_entropy").fwd(x, np.zeros((3, 2)))
    for op in ("bce_with_logits", "bce", "mse"):
        with pytest.raises(ValueError, match=op):
            ref(op).fwd(x, np.zeros((3, 2)))
        with pytest.raises(ValueError, match=op):
            ref(op).bwd(np.zeros(2), x, x)


# ---------------------------------------------------------------- (b) backends vs reference

def fwd_outputs(op, out):
    return out if isinstance(out, tuple) else (out,)


def check_agreement(op, backend, inputs, g):
    """fwd and bwd of `backend` against the reference in float64 on the same values,
    rounded to the dtype (a float32 result below float32's range, like (1e-38)², can only
    be 0). bwd gets the same saved arrays on both sides (the reference's lse, rounded to the
    dtype). inputs: the fwd arguments (the first is the differentiable float input)."""
    dtype = inputs[0].dtype
    kind = ("sum", inputs[0].shape[1]) if op in ROW_OPS else ("elementwise", 1)
    tol = bound(dtype, *kind)
    as64 = [a.astype(F64) if a.dtype.kind == "f" else a for a in inputs]
    before = [a.copy() for a in (*inputs, g)]

    out = fwd_outputs(op, call(op, backend, "fwd", *inputs))
    out_ref = tuple(r.astype(dtype) for r in fwd_outputs(op, ref(op).fwd(*as64)))
    assert len(out) == len(out_ref)
    for o, r in zip(out, out_ref):
        assert o.dtype == dtype and o.shape == r.shape
        assert rel_err(o, r) <= tol, "forward"

    saved = (out_ref[1].astype(dtype),) if op in ROW_OPS else ()
    grads = call(op, backend, "bwd", g, *inputs, *saved)
    grads_ref = tuple(
        None if r is None else r.astype(dtype)
        for r in ref(op).bwd(g.astype(F64), *as64, *(s.astype(F64) for s in saved))
    )
    assert isinstance(grads, tuple) and len(grads) == len(grads_ref) == 2
    scales = bwd_scales(op, g, inputs, saved)
    for i, (gr, r) in enumerate(zip(grads, grads_ref)):
        if r is None:
            assert gr is None
            continue
        assert gr.dtype == dtype and gr.shape == r.shape
        err = rel_err(gr, r) if scales[i] is None else scaled_err(gr, r, scales[i])
        assert err <= tol, f"backward, gradient {i}"
    for a, a0 in zip((*inputs, g), before):
        np.testing.assert_array_equal(a, a0)  # inputs never written


def bwd_scales(op, g, inputs, saved):
    """Size of the cancelling terms of each gradient, where the SPEC says it cancels."""
    g = np.abs(g.astype(F64))
    if op == "soft_cross_entropy":  # g·(s·P − p)
        x, p = (a.astype(F64) for a in inputs)
        s = np.exp(x - saved[0].astype(F64)[:, None])
        return g[:, None] * (s * p.sum(axis=1, keepdims=True) + p), None
    if op == "bce_with_logits":  # g·((1 − y) − r) for z ≥ 0, g·(r − y) for z < 0
        z, y = (a.astype(F64) for a in inputs)
        r = sigmoid(-np.abs(z))
        return g * (r + np.where(z >= 0, np.abs(1 - y), np.abs(y))), None
    return None, None


@st.composite
def loss_inputs(draw, op, dtype):
    """fwd arguments of `op`: logits in [-10, 10], targets as the SPEC says."""
    if op in ROW_OPS:
        M, K = draw(st.integers(1, 4), label="M"), draw(st.integers(1, 6), label="K")
        x = draw(arrays((M, K), dtype), label="x")
        if op == "cross_entropy":
            return (x, draw(labels(M, K), label="labels"))
        return (x, draw(arrays((M, K), dtype, 0.0, 1.0), label="p"))
    shape = draw(shapes(1, 3, 1, 4), label="shape")
    first = draw(arrays(shape, dtype, *((0.0, 1.0) if op == "bce" else ())), label="input")
    if op == "mse":
        return (first, draw(arrays(shape, dtype), label="b"))
    return (first, draw(arrays(shape, dtype, 0.0, 1.0), label="y"))


def upstream(rng, op, inputs):
    shape = inputs[0].shape[:1] if op in ROW_OPS else inputs[0].shape
    return rng.standard_normal(shape).astype(inputs[0].dtype)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backends_agree_with_reference(backend, op, dtype, data):
    inputs = data.draw(loss_inputs(op, dtype))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    check_agreement(op, backend, inputs, upstream(rng, op, inputs))


def row_case(op, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    if op == "cross_entropy":
        return (x, rng.integers(0, shape[1], shape[0]))
    return (x, rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype))


# Shapes for every CUDA lane grouping (K = 1, 10, 37, 300), partial warps and many blocks.
WIDE_AND_TALL = [(0, 5), (1, 1), (7, 1), (33, 10), (300, 10), (65, 37), (9, 300), (4000, 10)]


@pytest.mark.parametrize("op", ROW_OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WIDE_AND_TALL)
def test_row_losses_agree_on_wide_and_tall_shapes(backend, op, dtype, shape):
    inputs = row_case(op, shape, dtype, shape[0] * 1000 + shape[1])
    g = np.random.default_rng(1).standard_normal(shape[0]).astype(dtype)
    check_agreement(op, backend, inputs, g)


@pytest.mark.parametrize("op", ROW_OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_parallel_path_agrees_with_reference(op, dtype, monkeypatch):
    # the prange path only runs from PARALLEL_MIN logits on; force it on a small input
    monkeypatch.setattr(importlib.import_module(f"kernels.{op}.numba_cpu"), "PARALLEL_MIN", 0)
    inputs = row_case(op, (37, 9), dtype, 5)
    g = np.random.default_rng(2).standard_normal(37).astype(dtype)
    check_agreement(op, "numba", inputs, g)


# Empty, odd and large flat sizes (the large one spans many CUDA blocks).
ELEMENTWISE_SHAPES = [(0,), (1,), (3, 0, 2), (257,), (5, 7, 9), (1 << 17,)]


@pytest.mark.parametrize("op", ("bce_with_logits", "bce", "mse"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_elementwise_losses_agree_on_many_sizes(backend, op, dtype, shape):
    rng = np.random.default_rng(len(shape))
    first = (rng.random(shape) if op == "bce" else 5 * rng.standard_normal(shape))
    second = rng.standard_normal(shape) if op == "mse" else rng.random(shape)
    inputs = (first.astype(dtype), second.astype(dtype))
    check_agreement(op, backend, inputs, rng.standard_normal(shape).astype(dtype))


EDGE_CASES = {
    "cross_entropy": [
        ([[10.0, -10.0]], [0]),  # confident and right: loss ≈ 2e-9
        ([[10.0, -10.0]], [1]),  # confident and wrong
        ([[1.0, 1.0, 1.0], [2.0, 2.0, -1.0]], [2, 1]),  # ties
        ([[0.0], [3.0]], [0, 0]),  # K = 1
    ],
    "soft_cross_entropy": [
        ([[10.0, -10.0]], [[1.0, 0.0]]),
        ([[0.0, 0.0]], [[0.5, 0.5]]),  # at the optimum: gx = 0
        ([[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]),
        ([[0.0], [3.0]], [[1.0], [0.25]]),
    ],
    "bce_with_logits": [
        ([0.0, 30.0, -30.0, 30.0, -30.0], [0.5, 1.0, 0.0, 0.0, 1.0]),
        ([10.0, -10.0, 1e-3], [1.0, 1.0, 0.999]),
    ],
    "bce": [
        ([0.0, 1.0, 0.5, 1e-3, 0.999], [0.0, 1.0, 1.0, 0.0, 1.0]),
        ([1e-8, 1.0 - 1e-8, 2.0, -1.0], [1.0, 0.0, 1.0, 0.0]),  # clipped
    ],
    "mse": [([0.0, 1.0, -3.5], [0.0, 1.0, 2.5])],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "op,case", [(op, c) for op, cases in EDGE_CASES.items() for c in cases]
)
def test_backends_agree_on_edge_cases(backend, op, case, dtype):
    first = np.array(case[0], dtype=dtype)
    second = np.array(case[1], dtype=np.int64 if op == "cross_entropy" else dtype)
    g = np.random.default_rng(0).standard_normal(
        first.shape[:1] if op in ROW_OPS else first.shape
    ).astype(dtype)
    check_agreement(op, backend, (first, second), g)


# ---------------------------------------------------------------- (c) finite differences

def fd_inputs(op, rng):
    if op in ROW_OPS:
        x = 2 * rng.standard_normal((3, 5))
        if op == "cross_entropy":
            return [x, rng.integers(0, 5, 3)], [0]
        return [x, rng.dirichlet(np.ones(5), 3)], [0, 1]
    if op == "bce":  # away from the clip
        return [rng.uniform(0.05, 0.95, (2, 5)), rng.random((2, 5))], [0]
    if op == "mse":
        return [rng.standard_normal((2, 5)), rng.standard_normal((2, 5))], [0, 1]
    return [3 * rng.standard_normal((2, 5)), rng.random((2, 5))], [0]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("seed", [0, 1])
def test_bwd_matches_finite_differences(op, backend_name, seed):
    rng = np.random.default_rng(seed)
    mod = kernels.get(op, backend_name)
    inputs, differentiable = fd_inputs(op, rng)

    def loss(args):
        out = mod.fwd(*args)
        return out[0] if isinstance(out, tuple) else out

    out = mod.fwd(*inputs)
    saved = (out[1],) if op in ROW_OPS else ()
    g = rng.standard_normal(loss(inputs).shape)
    grads = mod.bwd(g, *inputs, *saved)
    eps = 1e-6
    for j in differentiable:
        u = rng.standard_normal(inputs[j].shape)
        plus, minus = list(inputs), list(inputs)
        plus[j] = inputs[j] + eps * u
        minus[j] = inputs[j] - eps * u
        numeric = np.sum(g * (loss(plus) - loss(minus))) / (2 * eps)
        analytic = np.sum(grads[j] * u)
        assert abs(numeric - analytic) <= 1e-7 * max(abs(numeric), abs(analytic)), j


# ---------------------------------------------------------------- (d) properties

@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_cross_entropy_is_logsumexp_minus_the_labels_logit(backend, dtype, data):
    x, y = data.draw(loss_inputs("cross_entropy", dtype))
    loss, lse = call("cross_entropy", backend, "fwd", x, y)
    x64 = x.astype(F64)
    expect_lse = logsumexp(x64)
    x_y = x64[np.arange(len(y)), y]
    e = eps_of(dtype)
    assert np.all(loss >= 0)
    assert np.allclose(lse, expect_lse, rtol=0, atol=4 * e * (np.abs(expect_lse) + 1))
    # the oracle's lse − x_y rounds at the scale |lse| + |x_y| (the kernel's does not cancel)
    scale = np.abs(expect_lse) + np.abs(x_y) + 1
    assert np.allclose(loss, expect_lse - x_y, rtol=0, atol=4 * e * scale)


@pytest.mark.parametrize("K", [3, 8, 40])      # one lane per row, two, sixteen (CUDA)
def test_float32_cross_entropy_of_far_apart_logits_is_within_a_few_ulps(backend, K):
    """The SPEC's precision claim entry by entry, where a normwise check sees nothing: the
    loss of a confident right answer (≈ Σ of exponentials far below 1) and every entry of
    gx = gloss·(exp(x − lse) − onehot), however small, within 4 float32 ulps of the float64
    values on the same logits (and, for gx, the same float32 lse)."""
    rng = np.random.default_rng(K)
    x = far_below_max_rows(rng, 6, K)
    right = np.argmax(x, axis=1)
    loss, lse = call("cross_entropy", backend, "fwd", x, right)
    want_loss, want_lse = ref("cross_entropy").fwd(x.astype(F64), right)
    assert np.all(want_loss >= np.finfo(np.float32).tiny)
    assert ulps(loss, want_loss).max() <= 4, "loss"
    assert ulps(lse, want_lse).max() <= 4, "lse"
    labels = rng.integers(0, K, 6)
    lse32 = ref("cross_entropy").fwd(x.astype(F64), labels)[1].astype(np.float32)
    g = (rng.choice([-1.0, 1.0], 6) * rng.uniform(0.5, 2, 6)).astype(np.float32)
    gx, _ = call("cross_entropy", backend, "bwd", g, x, labels, lse32)
    want_gx, _ = ref("cross_entropy").bwd(g.astype(F64), x.astype(F64), labels,
                                          lse32.astype(F64))
    assert np.all(np.abs(want_gx) >= np.finfo(np.float32).tiny)
    err = ulps(gx, want_gx)
    worst = np.unravel_index(err.argmax(), err.shape)
    assert err.max() <= 4, f"gx: {err.max():.1f} ulps at {worst}"


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_cross_entropy_gradient_is_softmax_minus_onehot(backend, dtype, data):
    x, y = data.draw(loss_inputs("cross_entropy", dtype))
    M, K = x.shape
    _, lse = call("cross_entropy", backend, "fwd", x, y)
    gx, none = call("cross_entropy", backend, "bwd", np.ones(M, dtype), x, y, lse)
    assert none is None
    onehot = np.eye(K)[y]
    s = call("softmax", backend, "fwd", x).astype(F64)
    assert np.allclose(gx, s - onehot, rtol=0, atol=8 * e_scale(dtype, x))
    assert np.allclose(gx.astype(F64).sum(axis=1), 0.0, rtol=0, atol=2 * K * eps_of(dtype))


def e_scale(dtype, x):
    """Rounding of the saved lse moves exp(x − lse) by ≤ eps·(|lse| + 1), relatively."""
    return eps_of(dtype) * (np.abs(x.astype(F64)).max() + 1)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_soft_cross_entropy_with_onehot_targets_equals_cross_entropy(backend, dtype, data):
    x, y = data.draw(loss_inputs("cross_entropy", dtype))
    M, K = x.shape
    p = np.eye(K, dtype=dtype)[y]
    g = np.random.default_rng(M * K).standard_normal(M).astype(dtype)
    loss_ce, lse_ce = call("cross_entropy", backend, "fwd", x, y)
    loss_p, lse_p = call("soft_cross_entropy", backend, "fwd", x, p)
    np.testing.assert_array_equal(lse_p, lse_ce)
    assert np.allclose(loss_p, loss_ce, rtol=4 * eps_of(dtype), atol=0)
    gx_ce, _ = call("cross_entropy", backend, "bwd", g, x, y, lse_ce)
    gx_p, _ = call("soft_cross_entropy", backend, "bwd", g, x, p, lse_ce)
    # soft CE forms s[y]·1 − 1 where CE sums the others: equal up to rounding of 1, and of
    # s[y] = exp(x[y] − lse) itself: lse is stored rounded, an absolute error of about
    # eps·|lse| that exp turns into a relative one (x = [10, 0, -0.5, -0.5], y = 0 gives
    # 5.9e-16 against 4·eps·|g| = 5.8e-16, in both kernels as first written)
    tol = (4 * eps_of(dtype) * np.abs(g.astype(F64))
           * (1 + np.abs(lse_ce.astype(F64))))[:, None]
    assert np.all(np.abs(gx_p.astype(F64) - gx_ce) <= tol + 4 * np.abs(gx_ce) * eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_soft_cross_entropy_is_the_expected_negative_log_softmax(backend, dtype, data):
    x, p = data.draw(loss_inputs("soft_cross_entropy", dtype))
    loss, lse = call("soft_cross_entropy", backend, "fwd", x, p)
    x64, p64 = x.astype(F64), p.astype(F64)
    lse64 = logsumexp(x64)[:, None]
    expect = (p64 * (lse64 - x64)).sum(axis=1)
    # this lse − x cancels where x is the dominant logit, and log(Σ exp) rounds at the scale
    # of its argument (≥ 1): the expectation is accurate to eps·(|lse| + |x| + 1)
    scale = (p64 * (np.abs(lse64) + np.abs(x64) + 1)).sum(axis=1)
    assert np.all(loss >= 0)
    assert np.all(np.abs(loss - expect) <= 4 * x.shape[1] * eps_of(dtype) * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bce_with_logits_equals_the_formula_and_is_symmetric(backend, dtype, data):
    z, y = data.draw(loss_inputs("bce_with_logits", dtype))
    loss = call("bce_with_logits", backend, "fwd", z, y)
    z64, y64 = z.astype(F64), y.astype(F64)
    formula = np.maximum(z64, 0) - z64 * y64 + np.log1p(np.exp(-np.abs(z64)))
    # max(z,0) − z·y is ≥ 0 but rounds at the scale of |z|
    e = eps_of(dtype)
    assert np.allclose(loss, formula, rtol=4 * e, atol=4 * np.finfo(F64).eps * np.abs(z64).max())
    flipped = call("bce_with_logits", backend, "fwd", -z, (1 - y64).astype(dtype))
    # 1 − y is rounded to the dtype: the loss moves by ≤ eps·|z|
    assert np.allclose(flipped, loss, rtol=4 * e, atol=2 * e * np.abs(z64).max())


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bce_with_logits_gradient_is_sigmoid_minus_target(backend, dtype, data):
    z, y = data.draw(loss_inputs("bce_with_logits", dtype))
    gz, none = call("bce_with_logits", backend, "bwd", np.ones_like(z), z, y)
    assert none is None
    expect = sigmoid(z.astype(F64)) - y.astype(F64)
    assert np.allclose(gz, expect, rtol=0, atol=4 * eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_is_finite_at_large_logits(backend, dtype):
    z = np.array([100.0, -100.0, 1e4, -1e4, 100.0, -1e4], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5], dtype=dtype)
    loss = call("bce_with_logits", backend, "fwd", z, y)
    gz, _ = call("bce_with_logits", backend, "bwd", np.ones_like(z), z, y)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(gz))
    expect = np.array([math.exp(-100), math.exp(-100), 1e4, 1e4, 50.0, 5e3])
    atol = 0 if dtype == "float64" else 1e-37  # e⁻¹⁰⁰ is below float32's normal range
    assert np.allclose(loss, expect, rtol=4 * eps_of(dtype), atol=atol)
    assert np.allclose(gz, [0, 0, 1, -1, 0.5, -0.5], rtol=0, atol=1e-40 + eps_of(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_bce_equals_bce_with_logits_of_the_logit(backend, dtype, data):
    shape = data.draw(shapes(1, 2, 1, 5), label="shape")
    p = data.draw(arrays(shape, dtype, 2.0**-7, 1 - 2.0**-7), label="p")
    y = data.draw(arrays(shape, dtype, 0.0, 1.0), label="y")
    p64 = p.astype(F64)
    z = np.log(p64 / (1 - p64))  # logit in float64: σ(z) = p up to 1e-16
    loss = call("bce", backend, "fwd", p, y).astype(F64)
    loss_z = ref("bce_with_logits").fwd(z, y.astype(F64))
    assert np.allclose(loss, loss_z, rtol=8 * eps_of(dtype), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_is_finite_at_0_and_1_and_flat_where_clipped(backend, dtype):
    p = np.array([0.0, 1.0, 0.0, 1.0, -0.5, 1.5], dtype=dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=dtype)
    loss = call("bce", backend, "fwd", p, y)
    gp, none = call("bce", backend, "bwd", np.ones_like(p), p, y)
    assert none is None and np.all(np.isfinite(loss))
    small_0 = -math.log1p(-EPS_BCE)  # right answer, clipped: ≈ 1e-7, as log(1 − p̂), p̂ = ε
    small_1 = -math.log(1 - EPS_BCE)  # the same, as log p̂ with p̂ = 1 − ε
    big = -math.log(EPS_BCE)  # wrong answer, clipped: ≈ 16.1, the clip's bound
    big_1 = -math.log1p(-(1 - EPS_BCE))  # the same, as log(1 − p̂) with p̂ = 1 − ε
    expect = np.array([small_0, small_1, big, big_1, big, big_1])
    assert np.allclose(loss, expect, rtol=4 * eps_of(dtype), atol=0)
    np.testing.assert_array_equal(gp, np.zeros_like(p))


def around(bound, dtype):
    """The values of ``dtype`` nearest to ``bound`` (a float64) on either side, and the
    bound itself where the dtype holds it."""
    v = dtype(bound)
    return sorted({float(np.nextafter(v, dtype(-1))), float(v), float(np.nextafter(v, dtype(2)))})


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_next_to_both_clip_bounds_matches_the_reference(backend, dtype):
    """At the dtype's values around ε and 1 − ε: the bounds themselves are inside (the
    SPEC: the gradient is 0 only for p < ε or p > 1 − ε), the values beyond are clipped.
    Loss and gradient entry by entry against the float64 reference, for y = 0 and 1."""
    dtype = np.dtype(dtype).type
    p = np.array(around(EPS_BCE, dtype) + around(1.0 - EPS_BCE, dtype), dtype=dtype)
    assert np.any(p.astype(F64) < EPS_BCE) and np.any(p.astype(F64) > 1 - EPS_BCE)
    p = np.repeat(p, 2)
    y = np.tile(np.array([0.0, 1.0], dtype=dtype), p.size // 2)
    g = np.ones_like(p)
    loss = call("bce", backend, "fwd", p, y)
    want = ref("bce").fwd(p.astype(F64), y.astype(F64))
    assert np.allclose(loss, want, rtol=4 * eps_of(dtype), atol=0), (p, loss, want)
    gp, _ = call("bce", backend, "bwd", g, p, y)
    want_gp, _ = ref("bce").bwd(g.astype(F64), p.astype(F64), y.astype(F64))
    inside = (p.astype(F64) >= EPS_BCE) & (p.astype(F64) <= 1 - EPS_BCE)
    assert np.all((want_gp != 0) == inside)       # the reference's clip, checked here too
    assert np.allclose(gp, want_gp, rtol=4 * eps_of(dtype), atol=0), (p, gp, want_gp)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_mse_is_nonnegative_symmetric_and_zero_on_equal_inputs(backend, dtype, data):
    a, b = data.draw(loss_inputs("mse", dtype))
    loss = call("mse", backend, "fwd", a, b)
    assert np.all(loss >= 0)
    np.testing.assert_array_equal(call("mse", backend, "fwd", b, a), loss)
    np.testing.assert_array_equal(call("mse", backend, "fwd", a, a), np.zeros_like(a))
    ga, gb = call("mse", backend, "bwd", np.ones_like(a), a, b)
    np.testing.assert_array_equal(ga, -gb)


# ---------------------------------------------------------------- (e) PyTorch oracle

@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (32, 10), (5, 100)])
def test_cross_entropies_match_pytorch(backend, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(shape[1])
    x = 3 * rng.standard_normal(shape)
    y = rng.integers(0, shape[1], shape[0])
    p = rng.dirichlet(np.ones(shape[1]), shape[0]) * rng.uniform(0.5, 1.5, (shape[0], 1))
    g = rng.standard_normal(shape[0])

    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(y), reduction="none")
    lt.backward(torch.tensor(g))
    loss, lse = call("cross_entropy", backend, "fwd", x, y)
    gx, _ = call("cross_entropy", backend, "bwd", g, x, y, lse)
    assert rel_err(loss, lt.detach().numpy()) <= 1e-10
    assert rel_err(lse, torch.logsumexp(xt, dim=1).detach().numpy()) <= 1e-10
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10

    xt = torch.tensor(x, requires_grad=True)
    pt = torch.tensor(p, requires_grad=True)
    lt = F.cross_entropy(xt, pt, reduction="none")
    lt.backward(torch.tensor(g))
    loss, lse = call("soft_cross_entropy", backend, "fwd", x, p)
    gx, gp = call("soft_cross_entropy", backend, "bwd", g, x, p, lse)
    assert rel_err(loss, lt.detach().numpy()) <= 1e-10
    assert rel_err(gx, xt.grad.numpy()) <= 1e-10
    assert rel_err(gp, pt.grad.numpy()) <= 1e-10


@pytest.mark.parametrize("shape", [(1,), (32,), (4, 3, 5)])
@pytest.mark.parametrize("hard", [False, True])
def test_elementwise_losses_match_pytorch(backend, shape, hard):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(len(shape) + hard)
    z = 4 * rng.standard_normal(shape)
    y = (rng.random(shape) < 0.5).astype(F64) if hard else rng.random(shape)
    g = rng.standard_normal(shape)
    p = rng.uniform(0.01, 0.99, shape)  # away from the clip
    b = rng.standard_normal(shape)
    cases = [
        ("bce_with_logits", z, y, F.binary_cross_entropy_with_logits, False),
        ("bce", p, y, F.binary_cross_entropy, False),
        ("mse", z, b, F.mse_loss, True),
    ]
    for op, first, second, torch_fn, second_has_grad in cases:
        at = torch.tensor(first, requires_grad=True)
        bt = torch.tensor(second, requires_grad=second_has_grad)
        lt = torch_fn(at, bt, reduction="none")
        lt.backward(torch.tensor(g))
        loss = call(op, backend, "fwd", first, second)
        g_first, g_second = call(op, backend, "bwd", g, first, second)
        assert rel_err(loss, lt.detach().numpy()) <= 1e-10, op
        assert rel_err(g_first, at.grad.numpy()) <= 1e-10, op
        if second_has_grad:
            assert rel_err(g_second, bt.grad.numpy()) <= 1e-10, op
        else:
            assert g_second is None


# ---------------------------------------------------------------- (f, g) contract



