"""``minimtl.grad``: gradients of one output with respect to chosen tensors, without ``.grad``.

Checked against ``backward`` (same walk, different delivery), against central differences
in float64, for intermediate tensors (against the same graph rebuilt with that tensor as
a leaf), for several outputs of one forward (``retain_graph``) and for its errors.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minimtl as mt
import minimtl.functional as F


def _net(rng, backend="numpy"):
    x = mt.tensor(rng.standard_normal((5, 4)), backend=backend)
    w1 = mt.tensor(rng.standard_normal((4, 3)), backend=backend, requires_grad=True)
    w2 = mt.tensor(rng.standard_normal((3, 2)), backend=backend, requires_grad=True)
    return x, w1, w2


def _losses(x, w1, w2):
    h = F.relu(x @ w1)
    out = h @ w2
    return h, (out[:, 0] * out[:, 0]).sum(), out[:, 1].tanh().sum()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_grad_is_what_backward_accumulates_and_leaves_grad_alone(backend):
    rng = np.random.default_rng(0)
    x, w1, w2 = _net(rng, backend)
    _, l1, l2 = _losses(x, w1, w2)
    g1, g2 = mt.grad(l1 + l2, [w1, w2])
    assert w1.grad is None and w2.grad is None
    assert not g1.requires_grad and g1.backend == backend
    _, l1, l2 = _losses(x, w1, w2)
    (l1 + l2).backward()
    np.testing.assert_allclose(g1.data, w1.grad, rtol=1e-12)
    np.testing.assert_allclose(g2.data, w2.grad, rtol=1e-12)


def test_grad_matches_central_differences():
    rng = np.random.default_rng(1)
    x, w1, w2 = _net(rng)
    _, l1, _ = _losses(x, w1, w2)
    (g1,) = mt.grad(l1, w1)
    eps = 1e-6
    numerical = np.zeros_like(w1.data)
    for i in np.ndindex(w1.shape):
        for sign in (1, -1):
            w = w1.data.copy()
            w[i] += sign * eps
            loss = _losses(x, mt.tensor(w, backend="numpy"), w2)[1]
            numerical[i] += sign * float(loss.data) / (2 * eps)
    np.testing.assert_allclose(g1.data, numerical, rtol=1e-6, atol=1e-8)


def test_grad_of_an_intermediate_tensor_is_that_of_the_graph_cut_there():
    rng = np.random.default_rng(2)
    x, w1, w2 = _net(rng)
    h, l1, _ = _losses(x, w1, w2)
    (gh,) = mt.grad(l1, [h])
    leaf = mt.tensor(h.data.copy(), backend="numpy", requires_grad=True)
    out = leaf @ w2
    (out[:, 0] * out[:, 0]).sum().backward()
    np.testing.assert_allclose(gh.data, leaf.grad, rtol=1e-12)


def test_one_forward_gives_each_task_its_gradient_with_retain_graph():
    rng = np.random.default_rng(3)
    x, w1, w2 = _net(rng)
    _, l1, l2 = _losses(x, w1, w2)
    (a,) = mt.grad(l1, [w1], retain_graph=True)
    (b,) = mt.grad(l2, [w1])                  # the last call frees the graph
    _, m1, _ = _losses(x, w1, w2)
    m1.backward()
    np.testing.assert_allclose(a.data, w1.grad, rtol=1e-12)
    w1.grad = None
    _, _, m2 = _losses(x, w1, w2)
    m2.backward()
    np.testing.assert_allclose(b.data, w1.grad, rtol=1e-12)
    with pytest.raises(RuntimeError, match="already freed"):
        mt.grad(l1, [w1])


def test_grad_errors_name_the_tensor():
    rng = np.random.default_rng(4)
    x, w1, w2 = _net(rng)
    other = mt.tensor(np.ones(3), backend="numpy", requires_grad=True)
    _, l1, _ = _losses(x, w1, w2)
    with pytest.raises(ValueError, match=r"tensors\[1\].*not used"):
        mt.grad(l1, [w1, other], retain_graph=True)
    gw, none = mt.grad(l1, [w1, other], retain_graph=True, allow_unused=True)
    assert none is None and gw is not None
    with pytest.raises(ValueError, match=r"tensors\[0\].*does not require grad"):
        mt.grad(l1, [x], retain_graph=True)
    with pytest.raises(TypeError, match=r"tensors\[0\] is a ndarray"):
        mt.grad(l1, [w1.data], retain_graph=True)
    with pytest.raises(RuntimeError, match="non-scalar"):
        mt.grad(x @ w1, [w1])


def test_grad_of_a_leaf_output_is_the_seed():
    w = mt.tensor(np.arange(3.0), backend="numpy", requires_grad=True)
    (g,) = mt.grad(w, [w], gradient=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g.data, [1.0, 2.0, 3.0])
    seed = np.array([1.0, 1.0, 1.0])
    (g,) = mt.grad(w, [w], gradient=seed)
    g.data[0] = 7.0                            # a result never aliases the caller's array
    assert seed[0] == 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(-3, 3), st.floats(-3, 3))
def test_grad_is_linear_in_the_output(seed, a, b):
    """grad(a·l1 + b·l2) = a·grad(l1) + b·grad(l2) on the shared parameters."""
    rng = np.random.default_rng(seed)
    x, w1, w2 = _net(rng)
    _, l1, l2 = _losses(x, w1, w2)
    (g1,) = mt.grad(l1, [w1], retain_graph=True)
    (g2,) = mt.grad(l2, [w1], retain_graph=True)
    (g,) = mt.grad(l1 * a + l2 * b, [w1])
    scale = 1 + abs(a) * np.abs(g1.data).max() + abs(b) * np.abs(g2.data).max()
    np.testing.assert_allclose(g.data, a * g1.data + b * g2.data, atol=1e-12 * scale)


def test_grad_walks_only_what_leads_to_the_tensors_asked_for():
    """A gradient on the top layer never runs the backward of the layers below it."""
    calls = []

    class Spy(mt.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, gy):
            calls.append(1)
            return gy

    rng = np.random.default_rng(5)
    x, w1, w2 = _net(rng)
    h = Spy.apply(x @ w1)
    loss = (h @ w2).sum()
    mt.grad(loss, [w2], retain_graph=True)
    assert calls == []
    (g1,) = mt.grad(loss, [w1])
    assert calls == [1] and g1.shape == w1.shape
