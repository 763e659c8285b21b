"""The HeadLosses op (minimtl/ops/head_losses.py): gradcheck in float64 through every
output, agreement with the per-task losses of the functional layer (values and gradients,
float32 and float64, Hypothesis layouts), a per-task backward through one output, and its
input checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minimtl as mt
from minimtl import functional as F
from minimtl import ops
from tests._util import bound, rel_err, tensor_backend
from tests.kernels.test_head_losses import layout


def per_task(x, labels, targets, spec, weights):
    """The losses as the models computed them before: one functional loss per slice."""
    N = x.shape[0]
    out = []
    for kind, s, K, j in spec.tolist():
        z = x[:, s:s + K]
        if kind == 0:
            out.append(F.cross_entropy(z, labels[j]))
        else:
            y = targets[N * j:N * (j + K)].reshape(N, K)
            out.append((F.binary_cross_entropy_with_logits if kind == 1 else F.mse_loss)(z, y))
    total = None
    for w, v in zip(weights.tolist(), out):
        total = v * float(w) if total is None else total + v * float(w)
    return total, out


@pytest.mark.parametrize("kinds", [(0, 1, 0), (2, 1), (0,), (1, 2, 0, 2)])
def test_head_losses_passes_gradcheck_through_every_output(backend, monkeypatch, kinds):
    backend = tensor_backend(backend, monkeypatch)
    rng = np.random.default_rng(len(kinds))
    x, labels, targets, spec, w = layout(kinds, [3, 2, 4, 1][:len(kinds)], 3, np.float64, rng)
    xt = mt.tensor(x, backend=backend, requires_grad=True)
    assert mt.gradcheck(lambda a: ops.HeadLosses.apply(a, labels, targets, spec, w), [xt])


def _grad(backend, x, fn):
    xt = mt.tensor(x, backend=backend, requires_grad=True)
    fn(xt).backward()
    return xt.grad if isinstance(xt.grad, np.ndarray) else np.asarray(xt.grad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(data=st.data())
def test_head_losses_equal_the_per_task_losses(backend, dtype, data):
    with pytest.MonkeyPatch.context() as mp:
        check_equal_to_per_task(tensor_backend(backend, mp), dtype, data)


def check_equal_to_per_task(backend, dtype, data):
    T = data.draw(st.integers(1, 4), label="T")
    kinds = data.draw(st.lists(st.integers(0, 2), min_size=T, max_size=T), label="kinds")
    widths = data.draw(st.lists(st.integers(1, 5), min_size=T, max_size=T), label="widths")
    N = data.draw(st.integers(1, 4), label="N")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x, labels, targets, spec, w = layout(kinds, widths, N, dtype, rng)
    tol = bound(dtype, "sum", x.size)
    xt = mt.tensor(x, backend=backend)
    fused = ops.HeadLosses.apply(xt, labels, targets, spec, w)
    total, parts = per_task(xt, labels, targets, spec, w)
    assert all(v.shape == () and v.dtype == x.dtype for v in fused)
    got = np.array([v.item() for v in fused])
    want = np.array([total.item()] + [v.item() for v in parts])
    assert rel_err(got, want) <= tol
    g_fused = _grad(backend, x, lambda a: ops.HeadLosses.apply(a, labels, targets, spec, w)[0])
    g_tasks = _grad(backend, x, lambda a: per_task(a, labels, targets, spec, w)[0])
    assert rel_err(g_fused, g_tasks) <= tol


def test_a_per_task_backward_goes_through_its_own_output(backend, monkeypatch):
    """What a balancer does: the gradient of one L_t alone, and of a mix of the total and
    one task, each equal to the per-task path's."""
    backend = tensor_backend(backend, monkeypatch)
    rng = np.random.default_rng(5)
    x, labels, targets, spec, w = layout((0, 1, 2), (4, 3, 2), 6, np.float64, rng)

    def fused(a):
        return ops.HeadLosses.apply(a, labels, targets, spec, w)

    def unfused(a):
        total, parts = per_task(a, labels, targets, spec, w)
        return (total, *parts)

    for pick in (lambda o: o[2], lambda o: o[0] * 0.5 + o[1] * 2.0):
        g = _grad(backend, x, lambda a, pick=pick: pick(fused(a)))
        want = _grad(backend, x, lambda a, pick=pick: pick(unfused(a)))
        assert np.abs(g).max() > 0 and rel_err(g, want) <= 1e-12


def test_head_losses_checks_name_the_op():
    rng = np.random.default_rng(0)
    x, labels, targets, spec, w = layout((0, 1), (3, 2), 4, np.float64, rng)
    xt = mt.tensor(x)
    with pytest.raises(ValueError, match=r"head_losses: labels of task 0 must lie in \[0, 3\)"):
        ops.HeadLosses.apply(xt, labels + 3, targets, spec, w)
    with pytest.raises(ValueError, match="head_losses: the tasks cover 5 of the 6 columns"):
        ops.HeadLosses.apply(mt.tensor(np.zeros((4, 6))), labels, targets, spec, w)
    with pytest.raises(TypeError, match="head_losses: dtypes differ"):
        ops.HeadLosses.apply(xt, labels, targets.astype(np.float32), spec, w)
    with pytest.raises(ValueError, match="head_losses: logits must be 2-D"):
        ops.HeadLosses.apply(mt.tensor(x[0]), labels, targets, spec, w)
