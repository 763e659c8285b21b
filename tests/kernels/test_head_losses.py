"""Kernel-level tests of head_losses (kernels/head_losses): the reference against naive
per-task loops, every backend against the reference (float32 and float64, the total's
gradient alone and every output's), the one- and several-block CUDA forward, run-to-run
determinism, invalid labels, and finite differences."""

from __future__ import annotations

import importlib
import math
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from minimtl.testing import arrays
from tests._util import bound, call, rel_err
from tests.cuda_host import thread_order
from tests.kernels.test_losses import naive_bce_with_logits, naive_cross_entropy, naive_mse

OP = "head_losses"
F64 = np.float64
DTYPES = ("float32", "float64")


def ref():
    return kernels.get(OP, "numpy")


def layout(kinds, widths, N, dtype, rng):
    """(x, labels, targets, spec, weights) of tasks of ``kinds`` (0, 1, 2) and ``widths``,
    random values from ``rng``."""
    W = sum(widths)
    x = (3 * rng.standard_normal((N, W))).astype(dtype)
    spec, labels, blocks, start, floats = [], [], [], 0, 0
    for kind, K in zip(kinds, widths):
        if kind == 0:
            spec.append((0, start, K, len(labels)))
            labels.append(rng.integers(0, K, N))
        else:
            spec.append((kind, start, K, floats))
            y = rng.random((N, K)) if kind == 1 else 2 * rng.standard_normal((N, K))
            blocks.append(y.astype(dtype).reshape(-1))
            floats += K
        start += K
    labels = np.array(labels, dtype=np.int64).reshape(len(labels), N)
    targets = np.concatenate(blocks) if blocks else np.zeros(0, dtype)
    weights = rng.uniform(0.0, 2.0, len(kinds))
    return x, labels, targets.astype(dtype), np.array(spec, dtype=np.int64), weights


def naive(x, labels, targets, spec, weights, g):
    """Per task with the per-family naive loops: the means, the total and gx."""
    N = x.shape[0]
    x = x.astype(F64)
    losses, gx = [], np.zeros_like(x)
    for t, (kind, s, K, j) in enumerate(spec):
        z = x[:, s:s + K]
        if kind == 0:
            loss, _, gz = naive_cross_entropy(z, labels[j])
            gz = gz / N
        else:
            y = targets[N * j:N * (j + K)].astype(F64).reshape(N, K)
            loss, gz = (naive_bce_with_logits if kind == 1 else naive_mse)(z, y)
            gz = gz / z.size
        losses.append(float(np.mean(loss)))
        a = g[0] * weights[t] + (g[1 + t] if len(g) > 1 else 0.0)
        gx[:, s:s + K] = a * gz
    total = sum(w * v for w, v in zip(weights, losses))
    return np.array([total, *losses]), gx


@pytest.mark.parametrize("kinds", [(0,), (1,), (2,), (0, 1, 0), (2, 0, 1, 1)])
@pytest.mark.parametrize("full_g", [False, True])
def test_reference_matches_naive_per_task_loops(kinds, full_g):
    rng = np.random.default_rng(len(kinds))
    widths = [3, 1, 4, 2][:len(kinds)]
    arrays_ = layout(kinds, widths, 5, F64, rng)
    g = rng.standard_normal(len(kinds) + 1 if full_g else 1)
    want_losses, want_gx = naive(*arrays_, g)
    losses, lse = ref().fwd(*arrays_)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12, atol=1e-14)
    gx, *rest = ref().bwd(g, *arrays_, lse)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-12, atol=1e-14)
    assert rest == [None] * 4


def test_reference_rejects_bad_specs_and_labels():
    rng = np.random.default_rng(0)
    x, labels, targets, spec, w = layout((0, 1), (3, 2), 4, F64, rng)
    gap = spec.copy()
    gap[1, 1] = 4                                     # a column left out
    with pytest.raises(ValueError, match="head_losses: spec row 1"):
        ref().fwd(x, labels, targets, gap, w)
    with pytest.raises(ValueError, match="head_losses: the tasks cover 5 of the 6"):
        ref().fwd(np.zeros((4, 6)), labels, targets, spec, w)
    bad = labels.copy()
    bad[0, 2] = 3
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 3\)"):
        ref().fwd(x, bad, targets, spec, w)


@st.composite
def cases(draw, dtype):
    T = draw(st.integers(1, 4), label="T")
    kinds = draw(st.lists(st.integers(0, 2), min_size=T, max_size=T), label="kinds")
    widths = draw(st.lists(st.integers(1, 5), min_size=T, max_size=T), label="widths")
    N = draw(st.integers(0, 4), label="N")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x, labels, targets, spec, w = layout(kinds, widths, N, dtype, rng)
    x = draw(arrays(x.shape, dtype), label="x")
    full = draw(st.booleans(), label="full_g")
    g = rng.standard_normal(T + 1 if full else 1).astype(dtype)
    return (x, labels, targets, spec, w), g


def check_agreement(backend, inputs, g):
    x = inputs[0]
    dtype = x.dtype
    tol = bound(dtype, "sum", max(x.size, 1))
    before = [a.copy() for a in (*inputs, g)]
    as64 = [a.astype(F64) if a.dtype.kind == "f" else a for a in inputs]
    losses, lse = call(OP, backend, "fwd", *inputs)
    want, want_lse = ref().fwd(*as64)
    assert losses.dtype == dtype and losses.shape == (len(inputs[3]) + 1,)
    assert lse.dtype == dtype and lse.shape == inputs[1].shape
    if x.shape[0] == 0:
        assert np.isnan(losses).all()                 # the mean of no rows
    else:
        assert rel_err(losses, want) <= tol, "losses"
        assert rel_err(lse, want_lse) <= tol, "lse"
    saved = want_lse.astype(dtype)
    gx, *rest = call(OP, backend, "bwd", g, *inputs, saved)
    want_gx = ref().bwd(g.astype(F64), *as64, saved.astype(F64))[0]
    assert rest == [None] * 4
    assert gx.dtype == dtype and gx.shape == x.shape
    assert rel_err(gx, want_gx) <= tol, "gx"
    for a, a0 in zip((*inputs, g), before):
        np.testing.assert_array_equal(a, a0)          # inputs never written


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_backends_agree_with_reference(backend, dtype, data):
    inputs, g = data.draw(cases(dtype))
    check_agreement(backend, inputs, g)


# the article's three heads at its batches, many rows, many narrow tasks, one wide one
SHAPES = [((0, 1, 0), (10, 10, 10), 32), ((0, 1, 0), (10, 10, 10), 257),
          ((1, 2, 0, 0, 1, 2, 0), (1, 3, 2, 7, 1, 1, 5), 100), ((0,), (300,), 9),
          ((0, 2), (10, 1), 5000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kinds, widths, N", SHAPES)
def test_backends_agree_on_article_and_tall_shapes(backend, dtype, kinds, widths, N):
    rng = np.random.default_rng(N)
    inputs = layout(kinds, widths, N, dtype, rng)
    check_agreement(backend, inputs, rng.standard_normal(len(kinds) + 1).astype(dtype))
    check_agreement(backend, inputs, rng.standard_normal(1).astype(dtype))


@pytest.mark.cuda_host
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize("rows", [1, 3, 64])
def test_cuda_forward_over_several_blocks_agrees_and_is_deterministic(monkeypatch, rows):
    from tests.cuda_host import patch_kernels

    patch_kernels(monkeypatch)
    mod = importlib.import_module("kernels.head_losses.cupy_cuda")
    monkeypatch.setattr(mod, "ROWS_PER_BLOCK", rows)   # 1, 3 or 64 rows a block: 200..4
    rng = np.random.default_rng(rows)
    inputs = layout((0, 1, 2), (4, 3, 2), 200, np.float32, rng)
    check_agreement("cuda_host", inputs, rng.standard_normal(4).astype(np.float32))
    first = mod.fwd(*inputs)[0]
    again = mod.fwd(*inputs)[0]
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("dtype", DTYPES)
def test_runs_are_bitwise_identical(backend, dtype):
    rng = np.random.default_rng(7)
    inputs = layout((0, 1, 0), (10, 10, 10), 64, dtype, rng)
    g = rng.standard_normal(4).astype(dtype)
    a = call(OP, backend, "fwd", *inputs)
    b = call(OP, backend, "fwd", *inputs)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(call(OP, backend, "bwd", g, *inputs, a[1])[0],
                                  call(OP, backend, "bwd", g, *inputs, a[1])[0])


@pytest.mark.parametrize("bad", [-1, 3, 7])       # K = 3: the first label past the end, too
def test_invalid_labels_give_nan_not_a_bad_read(backend, bad):
    if backend == "numpy":
        pytest.skip("the reference raises (test_reference_rejects_bad_specs_and_labels)")
    rng = np.random.default_rng(3)
    x, labels, targets, spec, w = layout((0, 1), (3, 2), 4, F64, rng)
    labels[0, 1] = bad
    # on the host emulator the threads also run reversed: a stray write into the next
    # task's columns is otherwise overwritten by that task's own (later) thread
    for order in ("forward", "reverse") if backend == "cuda_host" else ("forward",):
        with thread_order(order):
            losses, lse = call(OP, backend, "fwd", x, labels, targets, spec, w)
            gx = call(OP, backend, "bwd", np.ones(1), x, labels, targets, spec, w, lse)[0]
        assert np.isnan(losses[[0, 1]]).all() and np.isfinite(losses[2]), order
        assert np.isnan(gx[1, :3]).all() and np.isfinite(np.delete(gx, 1, axis=0)).all()
        assert np.isfinite(gx[:, 3:]).all(), order


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_bwd_matches_finite_differences(backend_name):
    rng = np.random.default_rng(11)
    x, labels, targets, spec, w = layout((0, 1, 2), (3, 2, 2), 3, F64, rng)
    k = kernels.get(OP, backend_name)
    g = rng.standard_normal(4)
    losses, lse = k.fwd(x, labels, targets, spec, w)
    gx = k.bwd(g, x, labels, targets, spec, w, lse)[0]
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        d = k.fwd(hi, labels, targets, spec, w)[0] - k.fwd(lo, labels, targets, spec, w)[0]
        num[idx] = g @ d / (2 * eps)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)
    assert math.isclose(losses[0], w @ losses[1:], rel_tol=1e-14)
