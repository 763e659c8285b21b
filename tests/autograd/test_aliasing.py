"""Aliasing: a ``.grad`` never shares memory with another tensor's ``.grad``, with the
caller's ``gradient`` argument, with any op's input or output data, or with an optimizer's
state; arrays a caller already holds are never written by a later backward, step or clip.

The engine hands out arrays that could alias in several ways: a backward may return one
array for two inputs (``Add`` returns gy twice), a view of its upstream gradient
(``Reshape``, ``Transpose``, ``Concat``), or the upstream gradient itself (``x + c``, a
leaf's own backward), which may be the caller's array. Each test below builds one of those
graphs and asserts with ``np.shares_memory``; the optimizer tests check the state against
hand-computed updates over two steps on one gradient (an aliased buffer shows only at the
second step).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minimtl as mt
from minimtl import functional as F
from minimtl import nn, optim


def T(a, grad=True, backend="numpy", dtype=np.float64):
    return mt.tensor(np.array(a, dtype=dtype), backend=backend, requires_grad=grad)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_owns(grad, *others):
    """``grad`` shares memory with none of ``others`` (arrays or Tensors' data)."""
    for i, o in enumerate(others):
        o = o.data if isinstance(o, mt.Tensor) else o
        assert not np.shares_memory(grad, o), f"the gradient aliases argument {i}"


# --- the caller's gradient --------------------------------------------------------------
def test_leaf_backward_copies_the_callers_gradient():
    x = T(rand(4))
    g = rand(4, 1)
    g_before = g.copy()
    x.backward(g)
    assert_owns(x.grad, g, x)
    np.testing.assert_array_equal(x.grad, g_before)
    g[:] = 0.0                                     # the caller reuses its array
    np.testing.assert_array_equal(x.grad, g_before)


def test_grad_of_a_leaf_used_once_is_not_the_upstream_array():
    """``x + c`` passes gy through unchanged: the leaf must get a copy of the caller's
    array, not the array itself."""
    x = T(rand((2, 3)))
    c = T(rand((2, 3), 1), grad=False)
    y = x + c
    g = rand((2, 3), 2)
    g_before = g.copy()
    y.backward(g)
    assert_owns(x.grad, g, x, c, y)
    np.testing.assert_array_equal(x.grad, g_before)
    np.testing.assert_array_equal(g, g_before)


def test_default_gradient_of_a_scalar_is_not_kept_as_grad_of_two_leaves():
    x, z = T([1.5]), T([-2.0])
    (x + z).backward()
    np.testing.assert_array_equal(x.grad, [1.0])
    np.testing.assert_array_equal(z.grad, [1.0])
    assert_owns(x.grad, z.grad)


# --- one array for two inputs -------------------------------------------------------------
def test_add_of_two_leaves_gives_each_its_own_grad():
    """Add returns the same (fresh) upstream array for both inputs."""
    x, z = T(rand(3)), T(rand(3, 1))
    ((x + z) * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 2.0))
    np.testing.assert_array_equal(z.grad, np.full(3, 2.0))
    assert_owns(x.grad, z.grad, x, z)
    x.grad[0] = 99.0                                # writing one leaves the other alone
    assert z.grad[0] == 2.0


def test_add_of_two_leaves_with_the_callers_gradient():
    x, z = T(rand(3)), T(rand(3, 1))
    g = rand(3, 2)
    (x + z).backward(g)
    assert_owns(x.grad, z.grad, g)
    assert_owns(z.grad, g)


def test_x_plus_x_accumulates_into_a_fresh_array():
    x = T(rand(3))
    g = rand(3, 1)
    g_before = g.copy()
    (x + x).backward(g)
    np.testing.assert_array_equal(x.grad, 2 * g_before)
    np.testing.assert_array_equal(g, g_before)
    assert_owns(x.grad, g, x)


def test_fan_out_of_an_intermediate_does_not_write_into_the_callers_gradient():
    """a = 2x used twice: Add hands a the caller's array twice; the two contributions must
    be summed into a new array, not into the first one."""
    x = T(rand(3))
    a = x * 2.0
    g = rand(3, 1)
    g_before = g.copy()
    (a + a).backward(g)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(x.grad, 4 * g_before)
    assert_owns(x.grad, g, x, a)


def test_fan_out_of_an_intermediate_through_slices_of_the_callers_gradient():
    """Concat hands a two views of the caller's array; summing them in place would write
    into it."""
    x = T(rand((2, 3)))
    a = x * 3.0
    g = rand((2, 6), 1)
    g_before = g.copy()
    F.concatenate([a, a], axis=1).backward(g)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_allclose(x.grad, 3.0 * (g_before[:, :3] + g_before[:, 3:]),
                               rtol=1e-15)
    assert_owns(x.grad, g)


def test_fan_out_through_views_of_one_leaf():
    """x used twice, through a reshape and a transpose (both backward as views)."""
    x = T(rand((2, 3)))
    y = x.reshape(3, 2).sum() + (x.T * 3.0).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 4.0))
    assert_owns(x.grad, x)


def test_leaves_used_in_several_ops_share_nothing():
    x, z = T(rand((2, 2))), T(rand((2, 2), 1))
    outs = [x + z, x - z, x * z]
    F.stack(outs).sum().backward()
    assert_owns(x.grad, z.grad, x, z, *outs)


# --- views of the upstream gradient ---------------------------------------------------------
VIEW_OPS = {
    "reshape": (lambda x: x.reshape(6, 2), (3, 4)),
    "reshape_to_size_1_axes": (lambda x: x.reshape(1, 12, 1), (3, 4)),
    "flatten": (lambda x: F.flatten(x), (3, 2, 2)),
    "transpose": (lambda x: x.transpose(1, 0), (3, 4)),
    "transpose_3d": (lambda x: x.transpose(2, 0, 1), (2, 3, 2)),
    "T": (lambda x: x.T, (3, 4)),
    "slice": (lambda x: x[1:], (3, 4)),
    "strided_slice": (lambda x: x[:, ::2], (3, 4)),
    "int_index": (lambda x: x[1], (3, 4)),
    "concatenate_with_itself": (lambda x: F.concatenate([x, x], axis=1), (3, 4)),
    "concatenate_with_constant": (
        lambda x: F.concatenate([x, mt.tensor(np.ones((3, 4)), backend="numpy")], axis=0), (3, 4)),
    "stack": (lambda x: F.stack([x, x * 2.0], axis=1), (3, 4)),
    "sum_axis": (lambda x: x.sum(axis=0), (3, 4)),
    "mean_keepdims": (lambda x: x.mean(axis=1, keepdims=True), (3, 4)),
    "max_axis": (lambda x: x.max(axis=1), (3, 4)),
    "add_constant": (lambda x: x + 1.0, (3, 4)),
    "neg": (lambda x: -x, (3, 4)),
    "relu": (lambda x: x.relu(), (3, 4)),
    "exp": (lambda x: x.exp(), (3, 4)),
    "softmax": (lambda x: F.softmax(x, axis=0), (3, 4)),
    "log_softmax": (lambda x: F.log_softmax(x), (3, 4)),
    "matmul": (lambda x: x @ mt.tensor(np.eye(4), backend="numpy"), (3, 4)),
    "reshape_then_transpose": (lambda x: x.reshape(4, 3).T.reshape(12), (3, 4)),
}


@pytest.mark.parametrize("name", list(VIEW_OPS))
def test_grad_aliases_neither_the_callers_gradient_nor_any_data(name):
    fn, shape = VIEW_OPS[name]
    x = T(rand(shape))
    x_before = x.data.copy()
    y = fn(x)
    g = rand(y.shape, 1)
    g_before = g.copy()
    y.backward(g)
    assert x.grad.shape == x.shape and x.grad.flags.writeable
    assert_owns(x.grad, g, x, y)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(x.data, x_before)
    held = x.grad.copy()
    g[...] = 7.0                                     # the caller reuses its array
    np.testing.assert_array_equal(x.grad, held)


def test_concatenate_of_two_leaves_gives_disjoint_grads():
    """Concat's backward returns two slices of one upstream array."""
    a, b = T(rand((2, 3))), T(rand((2, 1), 1))
    y = F.concatenate([a, b], axis=1)
    g = rand((2, 4), 2)
    y.backward(g)
    np.testing.assert_array_equal(a.grad, g[:, :3])
    np.testing.assert_array_equal(b.grad, g[:, 3:])
    assert_owns(a.grad, b.grad, g)
    assert_owns(b.grad, g)


# --- a second backward ---------------------------------------------------------------------
def test_second_backward_leaves_arrays_the_caller_holds_unchanged():
    x = T(rand(3))
    z = T(rand(3, 1))
    (x * z).sum().backward()
    held_x, held_z = x.grad, z.grad
    before_x, before_z = held_x.copy(), held_z.copy()
    (x * z).sum().backward()                        # accumulates into .grad
    np.testing.assert_array_equal(held_x, before_x)
    np.testing.assert_array_equal(held_z, before_z)
    np.testing.assert_array_equal(x.grad, 2 * before_x)
    np.testing.assert_array_equal(z.grad, 2 * before_z)
    assert_owns(x.grad, held_x, z.grad)


def test_second_backward_into_a_leaf_directly_leaves_the_first_gradient_alone():
    x = T(rand(3))
    g1, g2 = rand(3, 1), rand(3, 2)
    keep1, keep2 = g1.copy(), g2.copy()
    x.backward(g1)
    held = x.grad
    x.backward(g2)
    np.testing.assert_array_equal(held, keep1)
    np.testing.assert_array_equal(x.grad, keep1 + keep2)
    np.testing.assert_array_equal(g1, keep1)
    np.testing.assert_array_equal(g2, keep2)
    assert_owns(x.grad, g1, g2, held)


def test_second_backward_does_not_write_into_an_array_assigned_as_grad():
    """A caller may set ``.grad`` to its own array; backward must not write into it."""
    x = T(rand(3))
    mine = np.ones(3)
    x.grad = mine
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(mine, np.ones(3))
    np.testing.assert_array_equal(x.grad, np.full(3, 3.0))


def test_second_backward_through_shared_add_keeps_the_other_leaf_unchanged():
    x, z = T(rand(3)), T(rand(3, 1))
    ((x + z) * 2.0).sum().backward()
    z_held = z.grad
    (x * 5.0).sum().backward()                      # only x accumulates
    np.testing.assert_array_equal(x.grad, np.full(3, 7.0))
    np.testing.assert_array_equal(z_held, np.full(3, 2.0))
    np.testing.assert_array_equal(z.grad, np.full(3, 2.0))


# --- heavy ops on every CPU backend --------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_heavy_op_grads_alias_nothing(backend):
    rng = np.random.default_rng(3)
    x = T(rng.standard_normal((2, 3, 8)), backend=backend)
    w = T(rng.standard_normal((4, 3, 3)), backend=backend)
    b = T(rng.standard_normal(4), backend=backend)
    y = F.max_pool1d(F.conv1d_relu(x, w, b, padding="same"), 2)
    g = rng.standard_normal(y.shape)
    g_before = g.copy()
    y.backward(g)
    grads = (x.grad, w.grad, b.grad)
    for i, gr in enumerate(grads):
        assert_owns(gr, g, x, w, b, y, *grads[i + 1:])
    np.testing.assert_array_equal(g, g_before)


# --- optimizer state ------------------------------------------------------------------------
def _param(values, backend="numpy"):
    return nn.Parameter(np.array(values, dtype=np.float64), backend=backend)


def _state_arrays(opt):
    return [v for state in opt.state for v in state.values() if isinstance(v, np.ndarray)]


def _assert_state_owns_nothing(opt):
    arrays = _state_arrays(opt)
    for p in opt.params:
        for a in arrays:
            assert not np.shares_memory(a, p.data), "optimizer state aliases a parameter"
            assert p.grad is None or not np.shares_memory(a, p.grad), \
                "optimizer state aliases a gradient"
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b), "two optimizer buffers alias each other"


P0 = [0.5, -1.0, 2.0]
G = [0.3, -0.2, 0.7]


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_two_steps_on_one_gradient(nesterov):
    lr, mu = 0.1, 0.9
    p = _param(P0)
    p.grad = np.array(G)
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=nesterov)
    opt.step()
    _assert_state_owns_nothing(opt)
    opt.step()                                      # same gradient again
    _assert_state_owns_nothing(opt)
    p0, g = np.array(P0), np.array(G)
    b1 = g                                          # b ← g at the first step
    p1 = p0 - lr * (g + mu * b1 if nesterov else b1)
    b2 = mu * b1 + g
    p2 = p1 - lr * (g + mu * b2 if nesterov else b2)
    np.testing.assert_allclose(p.data, p2, rtol=1e-14)
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], b2, rtol=1e-14)
    np.testing.assert_array_equal(p.grad, G)        # the gradient is never written


def test_sgd_weight_decay_momentum_two_steps():
    lr, mu, wd = 0.1, 0.5, 0.2
    p = _param(P0)
    p.grad = np.array(G)
    opt = optim.SGD([p], lr=lr, momentum=mu, weight_decay=wd)
    opt.step()
    opt.step()
    _assert_state_owns_nothing(opt)
    p0, g = np.array(P0), np.array(G)
    d1 = g + wd * p0
    p1 = p0 - lr * d1
    d2 = g + wd * p1
    b2 = mu * d1 + d2
    p2 = p1 - lr * b2
    np.testing.assert_allclose(p.data, p2, rtol=1e-14)
    np.testing.assert_array_equal(p.grad, G)


def _adam_by_hand(p0, g, lr, b1, b2, eps, wd, steps, decoupled):
    p, m, v = np.array(p0, dtype=np.float64), 0.0, 0.0
    g = np.array(g, dtype=np.float64)
    for t in range(1, steps + 1):
        if decoupled:
            p = p * (1 - lr * wd)
            d = g
        else:
            d = g + wd * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


ADAM_CASES = [
    ("Adam", dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8)),
    # eps of the size of √v̂ and unequal betas, so eps and each β count in the result
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=0.1, weight_decay=0.3)),
    ("AdamW", dict(lr=0.05, betas=(0.7, 0.95), eps=0.05, weight_decay=0.5)),
]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name, kwargs", ADAM_CASES, ids=[c[0] + str(i) for i, c in
                                                         enumerate(ADAM_CASES)])
def test_adam_two_steps_on_one_gradient(backend, name, kwargs):
    p = _param(P0, backend)
    p.grad = np.array(G)
    opt = getattr(optim, name)([p], **kwargs)
    opt.step()
    _assert_state_owns_nothing(opt)
    m1 = opt.state[0]["m"].copy()
    opt.step()
    _assert_state_owns_nothing(opt)
    b1, b2 = kwargs["betas"]
    want_p, want_m, want_v = _adam_by_hand(
        P0, G, kwargs["lr"], b1, b2, kwargs["eps"], kwargs.get("weight_decay",
                                                               0.01 if name == "AdamW" else 0.0),
        2, name == "AdamW")
    np.testing.assert_allclose(p.data, want_p, rtol=1e-13)
    np.testing.assert_allclose(opt.state[0]["m"], want_m, rtol=1e-13)
    np.testing.assert_allclose(opt.state[0]["v"], want_v, rtol=1e-13)
    assert opt.state[0]["step"] == 2
    np.testing.assert_array_equal(p.grad, G)
    assert not np.array_equal(m1, opt.state[0]["m"])  # the first m was a separate array


def test_optimizer_steps_leave_arrays_the_caller_holds_alone():
    """A gradient the caller keeps a reference to, and the data array a Parameter was
    built from and is documented to use as is, are the only arrays a step may write: the
    data in place, the gradient never."""
    g = np.array(G)
    p = _param(P0)
    p.grad = g
    data = p.data
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p], lr=0.1)):
        opt.step()
        opt.step()
        np.testing.assert_array_equal(g, G)
        assert p.grad is g and p.data is data
        _assert_state_owns_nothing(opt)


def test_clip_grad_norm_leaves_arrays_the_caller_holds_alone():
    p, q = _param(P0), _param([1.0, 1.0])
    gp, gq = np.array([3.0, 0.0, 4.0]), np.array([0.0, 0.0])
    p.grad, q.grad = gp, gq
    total = optim.clip_grad_norm_([p, q], 1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_array_equal(gp, [3.0, 0.0, 4.0])
    np.testing.assert_allclose(p.grad, np.array([3.0, 0.0, 4.0]) / (5.0 + 1e-6),
                               rtol=1e-14)
    assert math.isclose(float(np.linalg.norm(p.grad)), 1.0, rel_tol=1e-6)


# --- what is kept without a copy ----------------------------------------------------------
def test_disjoint_views_of_one_fresh_gradient_are_kept_without_a_copy():
    """Concat's backward hands each input a slice of one fresh array: the pieces do not
    overlap, so each leaf keeps its slice (no copy launch per leaf on a GPU); the grads
    still share memory with no other grad, input or the caller's array."""
    a, b = T(rand((2, 3))), T(rand((4, 3), 1))
    y = F.concatenate([a, b], axis=0) * 1.0      # the product makes gy fresh
    y.backward(rand((6, 3), 2))
    assert a.grad.base is not None and a.grad.base is b.grad.base
    assert_owns(a.grad, b.grad, a, b)
    assert a.grad.flags.c_contiguous and a.grad.flags.writeable


def test_a_strided_view_that_reaches_a_leaf_becomes_a_contiguous_grad():
    """Transpose's backward hands the leaf a transposed view of a fresh array: it aliases
    nothing, but a .grad is always C-contiguous (the fused optimizers write through flat
    views), so it is copied."""
    x = T(rand((2, 3)))
    (x.T * 2.0).sum().backward()
    assert x.grad.flags.c_contiguous and x.grad.flags.writeable
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_the_bytes_an_array_spans_whatever_its_strides():
    """The overlap test's spans: a reversed or strided view spans what its base spans."""
    from minimtl.autograd import _span

    a = np.arange(12.0)
    lo, hi = _span(a)
    assert hi - lo == a.nbytes
    assert _span(a[::-1]) == (lo, hi) == _span(a.reshape(3, 4)[:, ::-1])
    assert _span(a[::2]) == (lo, hi - a.itemsize)
    assert _span(a[:0]) == (lo, lo)
