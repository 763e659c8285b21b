"""``autograd.backward(..., on_leaf=f)``: each leaf announced once, with its complete
gradient, as soon as its last user has been walked (what data-parallel training needs to
start all-reducing a layer's gradients while the layers below are still differentiated)."""

import numpy as np

import minimtl as mt
import minimtl.functional as F
from minimtl import autograd
from minimtl.function import Function


def _leaf(rng, shape, grad=True):
    return mt.tensor(rng.standard_normal(shape), requires_grad=grad)


def test_every_leaf_once_with_the_gradient_backward_leaves_in_grad():
    rng = np.random.default_rng(0)
    x = _leaf(rng, (6, 4), grad=False)
    w1, b1, w2, unused = _leaf(rng, (4, 5)), _leaf(rng, (5,)), _leaf(rng, (5, 3)), \
        _leaf(rng, (2,))
    h = F.relu(x @ w1 + b1)
    # w1 used twice (fan-out): its gradient is complete only after the second user
    loss = ((h @ w2).tanh().sum() + (x @ w1).sum() * 0.5)
    seen = []
    autograd.backward(loss, None, np, on_leaf=lambda t, g: seen.append((t, g.copy())))
    assert [id(t) for t, _ in seen].count(id(w1)) == 1
    assert {id(t) for t, _ in seen} == {id(w1), id(b1), id(w2)}     # not x, not unused
    for t, g in seen:
        np.testing.assert_array_equal(g, t.grad)
    assert unused.grad is None


def test_leaves_near_the_output_are_announced_before_the_walk_reaches_the_input(
        monkeypatch):
    rng = np.random.default_rng(1)
    x = _leaf(rng, (8, 3), grad=False)
    layers = [(_leaf(rng, (3, 3)), _leaf(rng, (3,))) for _ in range(4)]
    h = x
    for w, b in layers:
        h = F.relu(h @ w + b)
    walked = []
    real = autograd.walk_node
    monkeypatch.setattr(autograd, "walk_node", lambda node, *a: (walked.append(
        node.fn.__name__), real(node, *a)))
    order, walked_then = [], {}

    def on_leaf(t, g):
        order.append(id(t))
        walked_then[id(t)] = len(walked)

    autograd.backward(h.sum(), None, np, on_leaf=on_leaf)
    ids = [id(p) for layer in reversed(layers) for p in layer]
    assert sorted(order) == sorted(ids)
    # layer by layer from the output: every parameter of layer k before any of layer k-1
    position = {i: order.index(i) for i in ids}
    for upper, lower in zip(reversed(layers), list(reversed(layers))[1:]):
        assert max(position[id(p)] for p in upper) < min(position[id(p)] for p in lower)
    # during the walk: the last layer's weight with most of the graph still to walk
    assert walked_then[id(layers[-1][0])] < len(walked) // 2
    assert walked_then[id(layers[0][0])] == len(walked)


class _Gate(Function):
    """y = x · w whose backward sends w nothing (a gate that is not trained through)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save(w)
        return x * w

    @staticmethod
    def backward(ctx, gy):
        (w,) = ctx.saved
        return gy * w, None


def test_a_leaf_no_gradient_reaches_is_announced_with_none():
    rng = np.random.default_rng(2)
    x, w = _leaf(rng, (3,)), _leaf(rng, (3,))
    seen = {}
    autograd.backward(_Gate.apply(x, w).sum(), None, np,
                      on_leaf=lambda t, g: seen.setdefault(id(t), g))
    assert seen.keys() == {id(x), id(w)}
    assert seen[id(w)] is None and w.grad is None
    np.testing.assert_array_equal(seen[id(x)], w.data)
