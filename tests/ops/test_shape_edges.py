"""Size-1 axes and 'same' padding: the edges where a squeeze too many, an unsorted axis
tuple or an extra zero on the wrong side still give plausible numbers.

Reductions (sum, mean, max) and shape ops (reshape, transpose, concatenate, stack,
indexing, flatten, softmax's axis handling) at N = 1 and other size-1 axes, with
keepdims True/False and axis None / int / negative / tuple (in any order): forward against
NumPy (shape and values), backward against a hand-computed gradient and ``mt.gradcheck``
(float64). 'same' padding for K = 1..6 and dilation 1..2 against Keras's rule (total
padding d·(K−1), left = total // 2, right = total − left: the odd extra zero goes RIGHT),
checked with an independent naive convolution over an explicitly zero-padded input, for
every entry point that takes ``padding='same'``.
"""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
from minimtl import functional as F
from minimtl import nn


def T(a, grad=True, backend="numpy"):
    return mt.tensor(np.array(a, dtype=np.float64), backend=backend, requires_grad=grad)


def distinct(shape, seed=0):
    """Values with no ties and gaps of 0.25 (max and its gradient are well defined)."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.25 - n / 8).reshape(shape)


def _axes_tuple(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


# --- reductions ---------------------------------------------------------------------------
REDUCE_CASES = [
    ((1,), None), ((1,), 0), ((1,), -1), ((1,), (0,)),
    ((1, 3), None), ((1, 3), 0), ((1, 3), 1), ((1, 3), -1), ((1, 3), (0, 1)),
    ((1, 3), (-1, 0)),
    ((3, 1), 0), ((3, 1), 1), ((3, 1), -2), ((3, 1), (1, 0)),
    ((1, 1), None), ((1, 1), 0), ((1, 1), -1), ((1, 1), (1, 0)),
    ((1, 4, 1), 1), ((1, 4, 1), -2), ((1, 4, 1), (0, 2)), ((1, 4, 1), (2, 0)),
    ((1, 4, 1), (1, 0)), ((1, 4, 1), None),
    ((2, 1, 3), 1), ((2, 1, 3), 0), ((2, 1, 3), (0, 2)), ((2, 1, 3), (-1, -3)),
    ((2, 1, 3), (1, 0)), ((2, 1, 3), (2, 1)),
    ((2, 3, 4), (1, 0)), ((2, 3, 4), (2, 0, 1)),
]
REDUCERS = {
    "sum": (lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), np.sum),
    "mean": (lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), np.mean),
    "max": (lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), np.max),
}


def _hand_gradient(name, x, axis, keepdims, v):
    """d⟨v, reduce(x)⟩/dx with NumPy: v put back on the reduced axes and broadcast; mean
    divides by the count, max keeps only the (unique) maximum's position."""
    axes = _axes_tuple(axis, x.ndim)
    vk = v if keepdims else np.expand_dims(v, axes)
    g = np.broadcast_to(vk, x.shape).astype(np.float64)
    if name == "mean":
        g = g / np.prod([x.shape[a] for a in axes])
    if name == "max":
        g = g * (x == np.max(x, axis=axes, keepdims=True))
    return g


@pytest.mark.parametrize("keepdims", [False, True], ids=["squeezed", "keepdims"])
@pytest.mark.parametrize("shape, axis", REDUCE_CASES, ids=[f"{s}-{a}" for s, a in
                                                            REDUCE_CASES])
@pytest.mark.parametrize("name", list(REDUCERS))
def test_reduction_at_size_one_axes_matches_numpy_and_its_gradient(name, shape, axis,
                                                                   keepdims):
    ours, theirs = REDUCERS[name]
    a = distinct(shape)
    x = T(a)
    y = ours(x, axis, keepdims)
    want = theirs(a, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(want)
    np.testing.assert_allclose(y.data, want, rtol=1e-15, atol=0)
    v = distinct(y.shape, 1) + 0.1
    y.backward(v)
    assert x.grad.shape == shape
    np.testing.assert_allclose(x.grad, _hand_gradient(name, a, axis, keepdims, v),
                               rtol=1e-15, atol=0)
    assert mt.gradcheck(lambda t: ours(t, axis, keepdims), [T(a)])


def test_reduction_of_batch_one_into_a_linear_head_keeps_the_batch_axis():
    """N = 1 through a model-like pipeline: max over time of (1, C, L), then Linear; a
    squeeze of every size-1 axis would drop the batch and break the shapes."""
    x = T(distinct((1, 3, 5)))
    pooled = x.max(axis=2)                                     # (1, 3)
    assert pooled.shape == (1, 3)
    lin = nn.Linear(3, 2, dtype=np.float64, backend="numpy",
                    rng=np.random.default_rng(0))
    out = lin(pooled)
    assert out.shape == (1, 2)
    out.sum().backward()
    assert x.grad.shape == (1, 3, 5)
    want = np.zeros((1, 3, 5))
    arg = x.data.argmax(axis=2)
    want[0, np.arange(3), arg[0]] = lin.weight.data.sum(axis=0)
    np.testing.assert_allclose(x.grad, want, rtol=1e-15)


@pytest.mark.parametrize("a, axis, keepdims, want", [
    ([[1.0, 3.0, 3.0]], 1, False, [[0.0, 0.5, 0.5]]),
    ([[2.0], [2.0]], 0, True, [[0.5], [0.5]]),
    ([[4.0]], None, False, [[1.0]]),
    ([[5.0, 5.0], [5.0, 1.0]], (1, 0), False, [[1 / 3, 1 / 3], [1 / 3, 0.0]]),
])
def test_max_splits_the_gradient_equally_between_tied_maxima(a, axis, keepdims, want):
    x = T(a)
    x.max(axis=axis, keepdims=keepdims).sum().backward()
    np.testing.assert_allclose(x.grad, want, rtol=1e-15)


# --- shape ops ----------------------------------------------------------------------------
SHAPE_CASES = {
    # name: (function of the tensors, NumPy function of the arrays, input shapes)
    "reshape_1x3_to_3": (lambda x: x.reshape(3), lambda x: x.reshape(3), [(1, 3)]),
    "reshape_3_to_1x3x1": (lambda x: x.reshape(1, 3, 1), lambda x: x.reshape(1, 3, 1),
                           [(3,)]),
    "reshape_1x1_to_1": (lambda x: x.reshape(1), lambda x: x.reshape(1), [(1, 1)]),
    "reshape_1_to_scalar": (lambda x: x.reshape(()), lambda x: x.reshape(()), [(1,)]),
    "reshape_minus_one": (lambda x: x.reshape(-1), lambda x: x.reshape(-1), [(1, 4, 1)]),
    "reshape_2x1x3_to_1x6": (lambda x: x.reshape(1, 6), lambda x: x.reshape(1, 6),
                             [(2, 1, 3)]),
    "flatten_batch_one": (lambda x: F.flatten(x), lambda x: x.reshape(1, -1), [(1, 3, 1)]),
    "transpose_1x3x1_cycle": (lambda x: x.transpose(2, 0, 1),
                              lambda x: x.transpose(2, 0, 1), [(1, 3, 1)]),
    "transpose_3_cycle": (lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(1, 2, 0),
                          [(1, 2, 3)]),
    "transpose_negative_axes": (lambda x: x.transpose(-1, 0, -2),
                                lambda x: x.transpose(-1, 0, -2), [(2, 1, 3)]),
    "transpose_reversed": (lambda x: x.transpose(), lambda x: x.transpose(), [(1, 2, 3)]),
    "T_of_batch_one": (lambda x: x.T, lambda x: x.T, [(1, 3)]),
    "concatenate_batch_one_last_axis": (
        lambda a, b: F.concatenate([a, b], axis=-1),
        lambda a, b: np.concatenate([a, b], axis=-1), [(1, 2), (1, 3)]),
    "concatenate_onto_batch_one": (
        lambda a, b: F.concatenate([a, b], axis=0),
        lambda a, b: np.concatenate([a, b], axis=0), [(1, 2), (2, 2)]),
    "concatenate_three_sizes": (
        lambda a, b, c: F.concatenate([a, b, c], axis=1),
        lambda a, b, c: np.concatenate([a, b, c], axis=1), [(1, 2, 2), (1, 1, 2), (1, 3, 2)]),
    "stack_axis_0": (lambda a, b, c: F.stack([a, b, c], axis=0),
                     lambda a, b, c: np.stack([a, b, c], axis=0), [(1, 2)] * 3),
    "stack_axis_1": (lambda a, b, c: F.stack([a, b, c], axis=1),
                     lambda a, b, c: np.stack([a, b, c], axis=1), [(1, 2)] * 3),
    "stack_axis_minus_1": (lambda a, b: F.stack([a, b], axis=-1),
                           lambda a, b: np.stack([a, b], axis=-1), [(1, 1)] * 2),
    "index_batch_one": (lambda x: x[0], lambda x: x[0], [(1, 3)]),
    "index_size_one_column": (lambda x: x[:, 0], lambda x: x[:, 0], [(2, 1)]),
    "index_newaxis": (lambda x: x[None, :, None], lambda x: x[None, :, None], [(3,)]),
    "index_negative_slice": (lambda x: x[-1:, ::-1], lambda x: x[-1:, ::-1], [(1, 3)]),
    "index_repeated_rows": (lambda x: x[np.array([0, 0, 0])],
                            lambda x: x[np.array([0, 0, 0])], [(1, 3)]),
    "index_repeated_columns": (lambda x: x[:, np.array([1, 0, 1])],
                               lambda x: x[:, np.array([1, 0, 1])], [(1, 2)]),
    "index_boolean": (lambda x: x[np.array([[True, False, True]])],
                      lambda x: x[np.array([[True, False, True]])], [(1, 3)]),
    "softmax_size_one_class_axis": (lambda x: F.softmax(x, axis=1),
                                    lambda x: np.ones_like(x), [(3, 1)]),
    "log_softmax_size_one_class_axis": (lambda x: F.log_softmax(x, axis=-1),
                                        lambda x: np.zeros_like(x), [(1, 1)]),
    "softmax_batch_one_middle_axis": (
        lambda x: F.softmax(x, axis=1),
        lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), [(1, 4, 1)]),
    "log_softmax_batch_one_first_axis": (
        lambda x: F.log_softmax(x, axis=0),
        lambda x: x - np.log(np.exp(x).sum(axis=0, keepdims=True)), [(3, 1)]),
}


@pytest.mark.parametrize("name", list(SHAPE_CASES))
def test_shape_op_at_size_one_axes_matches_numpy_and_passes_gradcheck(name):
    ours, theirs, shapes = SHAPE_CASES[name]
    arrays = [distinct(s, i) for i, s in enumerate(shapes)]
    y = ours(*[T(a) for a in arrays])
    want = theirs(*arrays)
    assert y.shape == want.shape
    np.testing.assert_allclose(y.data, want, rtol=1e-14, atol=1e-15)
    assert mt.gradcheck(ours, [T(a) for a in arrays])


@pytest.mark.parametrize("name", [n for n in SHAPE_CASES if not n.startswith(("soft",
                                                                               "log_soft"))])
def test_shape_op_gradient_is_the_upstream_put_back(name):
    """For pure data movement the gradient of ⟨v, op(x)⟩ is v scattered back (summed
    where an element was used more than once): compare with the same movement applied by
    NumPy to the positions of x."""
    ours, theirs, shapes = SHAPE_CASES[name]
    arrays = [distinct(s, i) for i, s in enumerate(shapes)]
    xs = [T(a) for a in arrays]
    y = ours(*xs)
    v = distinct(y.shape, 9) + 0.5
    y.backward(v)
    # label every input element by a unique integer, move the labels with NumPy
    offsets = np.cumsum([0] + [a.size for a in arrays])
    labels = [np.arange(o, o + a.size).reshape(a.shape) for o, a in zip(offsets, arrays)]
    moved = np.asarray(theirs(*labels)).reshape(-1)
    flat = np.zeros(offsets[-1])
    np.add.at(flat, moved, v.reshape(-1))
    for x, o, a in zip(xs, offsets, arrays):
        np.testing.assert_array_equal(x.grad, flat[o:o + a.size].reshape(a.shape))


# --- 'same' padding -----------------------------------------------------------------------
def keras_same(k, dilation):
    total = dilation * (k - 1)
    return total // 2, total - total // 2


def naive_conv1d(x, w, b, left, right, dilation):
    """y[n,o,t] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t + k·d], xp zero-padded explicitly."""
    xp = np.pad(x, ((0, 0), (0, 0), (left, right)))
    N, C, Lp = xp.shape
    O, _, K = w.shape
    lo = Lp - dilation * (K - 1)
    y = np.zeros((N, O, lo))
    for n in range(N):
        for o in range(O):
            for t in range(lo):
                s = b[o]
                for c in range(C):
                    for k in range(K):
                        s += w[o, c, k] * xp[n, c, t + k * dilation]
                y[n, o, t] = s
    return y


SAME_CASES = [(k, d, length) for k in range(1, 7) for d in (1, 2) for length in (3, 7)]


def _conv_arrays(k, length, seed=0):
    rng = np.random.default_rng([seed, k, length])
    return (rng.standard_normal((1, 2, length)), rng.standard_normal((3, 2, k)),
            rng.standard_normal(3))


def test_keras_rule_puts_the_odd_zero_on_the_right():
    assert keras_same(2, 1) == (0, 1)
    assert keras_same(4, 1) == (1, 2)
    assert keras_same(3, 1) == (1, 1)
    assert keras_same(4, 2) == (3, 3)
    assert keras_same(6, 1) == (2, 3)


@pytest.mark.parametrize("k, dilation, length", SAME_CASES)
@pytest.mark.parametrize("channels_last", [False, True], ids=["first", "last"])
def test_same_padding_conv1d_equals_naive_conv_with_keras_padding(k, dilation, length,
                                                                   channels_last):
    x, w, b = _conv_arrays(k, length)
    left, right = keras_same(k, dilation)
    want = naive_conv1d(x, w, b, left, right, dilation)
    assert want.shape[2] == length                              # 'same': Lo = L
    xin = np.ascontiguousarray(x.transpose(0, 2, 1)) if channels_last else x
    y = F.conv1d(T(xin), T(w), T(b), padding="same", dilation=dilation,
                 channels_last=channels_last)
    got = y.data.transpose(0, 2, 1) if channels_last else y.data
    assert got.shape == (1, 3, length)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if left != right:
        # the test can tell the sides apart: the mirrored padding gives other numbers
        mirrored = naive_conv1d(x, w, b, right, left, dilation)
        assert not np.allclose(mirrored, want)


@pytest.mark.parametrize("k, dilation", [(2, 1), (4, 1), (6, 1), (3, 2), (2, 2), (5, 2)])
def test_same_padding_of_every_entry_point(k, dilation):
    """conv1d_relu, the fused conv1d_relu_maxpool1d and the nn.Conv1d layer (plain and
    with activation='relu') resolve 'same' by the same rule."""
    length = 8
    x, w, b = _conv_arrays(k, length, seed=1)
    left, right = keras_same(k, dilation)
    z = naive_conv1d(x, w, b, left, right, dilation)
    r = np.maximum(z, 0)
    y = F.conv1d_relu(T(x), T(w), T(b), padding="same", dilation=dilation)
    np.testing.assert_allclose(y.data, r, rtol=1e-12, atol=1e-12)
    y = F.conv1d_relu_maxpool1d(T(x), T(w), T(b), padding="same", dilation=dilation,
                                pool_size=2)
    np.testing.assert_allclose(y.data, r.reshape(1, 3, length // 2, 2).max(axis=3),
                               rtol=1e-12, atol=1e-12)
    for activation, want in ((None, z), ("relu", r)):
        layer = nn.Conv1d(2, 3, k, padding="same", dilation=dilation, activation=activation,
                          dtype=np.float64, backend="numpy")
        layer.weight.data[...] = w
        layer.bias.data[...] = b
        out = layer(T(x, grad=False))
        assert out.shape == (1, 3, length)
        np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("k, dilation", [(2, 1), (4, 2)])
def test_same_padding_gradient_passes_gradcheck(backend, k, dilation):
    x, w, b = _conv_arrays(k, 6, seed=2)
    assert mt.gradcheck(lambda a, c, e: F.conv1d(a, c, e, padding="same", dilation=dilation),
                        [T(x, backend=backend), T(w, backend=backend),
                         T(b, backend=backend)])


@pytest.mark.parametrize("backend", ["numba"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["first", "last"])
def test_same_padding_on_numba_equals_naive_conv(backend, channels_last):
    for k, dilation in ((2, 1), (4, 1), (3, 2), (6, 2)):
        x, w, b = _conv_arrays(k, 7, seed=3)
        left, right = keras_same(k, dilation)
        want = naive_conv1d(x, w, b, left, right, dilation)
        xin = np.ascontiguousarray(x.transpose(0, 2, 1)) if channels_last else x
        y = F.conv1d(T(xin, backend=backend), T(w, backend=backend), T(b, backend=backend),
                     padding="same", dilation=dilation, channels_last=channels_last)
        got = y.data.transpose(0, 2, 1) if channels_last else y.data
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_same_padding_with_stride_is_refused():
    x, w, b = _conv_arrays(3, 7)
    with pytest.raises(ValueError, match="same"):
        F.conv1d(T(x), T(w), T(b), stride=2, padding="same")
