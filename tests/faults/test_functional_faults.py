"""Bad input to every public function of ``minimtl.functional``: mismatched shapes, dtypes
and backends, axes out of range, empty inputs. Each gets one line that names the op
(``conv1d: x (2, 3, 8) has 3 channels but weight (4, 5, 3) expects 5``), raised before any
work, and the engine is unharmed: a backward right after the failed call gives the same
gradients as one before it. Empty batches are not errors: they run forward and backward
with empty results.

Runs on numpy, numba and (without a GPU) the CUDA kernels on the host.
"""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
from minimtl import functional as F
from tests._util import tensor_backend

H = 3          # hidden size of the recurrent cases


def _maker(backend):
    rng = np.random.default_rng(0)

    def t(*shape, dtype=np.float32, grad=True, on=None):
        data = rng.standard_normal(shape).astype(dtype)
        return mt.tensor(data, requires_grad=grad and data.dtype.kind == "f",
                         backend=on or backend)
    return t


def _other(backend):
    return "numba" if backend == "numpy" else "numpy"


# (id, the op named at the start of the message, the bad call on backend b with maker t)
BAD = [
    # conv1d and its fused forms
    ("conv1d-channels", "conv1d", lambda t, b: F.conv1d(t(2, 3, 8), t(4, 5, 3))),
    ("conv1d-x-2d", "conv1d", lambda t, b: F.conv1d(t(3, 8), t(4, 3, 3))),
    ("conv1d-weight-2d", "conv1d", lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3))),
    ("conv1d-bias", "conv1d", lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), t(5))),
    ("conv1d-dtypes", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3, dtype=np.float64))),
    ("conv1d-int-x", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8, dtype=np.int64), t(4, 3, 3))),
    ("conv1d-too-short", "conv1d", lambda t, b: F.conv1d(t(2, 3, 2), t(4, 3, 3))),
    ("conv1d-stride-0", "conv1d", lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), stride=0)),
    ("conv1d-dilation-0", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), dilation=0)),
    ("conv1d-padding-negative", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), padding=-1)),
    ("conv1d-padding-word", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), padding="full")),
    ("conv1d-padding-triple", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), padding=(1, 2, 3))),
    ("conv1d-padding-fraction", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), padding=1.5)),
    ("conv1d-same-stride-2", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3), padding="same", stride=2)),
    ("conv1d-backends", "conv1d",
     lambda t, b: F.conv1d(t(2, 3, 8), t(4, 3, 3, on=_other(b)))),
    ("conv1d-channels-last", "conv1d",
     lambda t, b: F.conv1d(t(2, 8, 5), t(4, 3, 3), channels_last=True)),
    ("conv1d_relu-channels", "conv1d_relu", lambda t, b: F.conv1d_relu(t(2, 3, 8), t(4, 5, 3))),
    ("conv1d_relu-bias", "conv1d_relu",
     lambda t, b: F.conv1d_relu(t(2, 3, 8), t(4, 3, 3), t(3))),
    ("conv1d_relu_maxpool1d-channels", "conv1d_relu_maxpool",
     lambda t, b: F.conv1d_relu_maxpool1d(t(2, 3, 8), t(4, 5, 3))),
    ("conv1d_relu_maxpool1d-pool-0", "conv1d_relu_maxpool",
     lambda t, b: F.conv1d_relu_maxpool1d(t(2, 3, 8), t(4, 3, 3), pool_size=0)),
    ("conv1d_relu_maxpool1d-pool-too-long", "conv1d_relu_maxpool",
     lambda t, b: F.conv1d_relu_maxpool1d(t(2, 3, 8), t(4, 3, 3), pool_size=9)),
    ("conv1d_relu_maxpool1d-dtypes", "conv1d_relu_maxpool",
     lambda t, b: F.conv1d_relu_maxpool1d(t(2, 3, 8, dtype=np.float64), t(4, 3, 3))),
    # pooling
    ("max_pool1d-2d", "max_pool1d", lambda t, b: F.max_pool1d(t(3, 8), 2)),
    ("max_pool1d-window-0", "max_pool1d", lambda t, b: F.max_pool1d(t(2, 3, 8), 0)),
    ("max_pool1d-window-too-long", "max_pool1d", lambda t, b: F.max_pool1d(t(2, 3, 8), 9)),
    ("max_pool1d-padding-over-half", "max_pool1d",
     lambda t, b: F.max_pool1d(t(2, 3, 8), 2, padding=2)),
    ("max_pool1d-int", "max_pool1d",
     lambda t, b: F.max_pool1d(t(2, 3, 8, dtype=np.int64), 2)),
    ("avg_pool1d-window-0", "avg_pool1d", lambda t, b: F.avg_pool1d(t(2, 3, 8), 0)),
    ("avg_pool1d-4d", "avg_pool1d", lambda t, b: F.avg_pool1d(t(2, 3, 8, 1), 2)),
    ("avg_pool1d-stride-0", "avg_pool1d", lambda t, b: F.avg_pool1d(t(2, 3, 8), 2, 0)),
    # recurrent
    ("rnn-input-size", "rnn", lambda t, b: F.rnn(t(2, 5, 4), t(H, 6), t(H, H), t(H), t(H))),
    ("rnn-w_hh-not-square", "rnn",
     lambda t, b: F.rnn(t(2, 5, 4), t(H, 4), t(H, H + 1), t(H), t(H))),
    ("rnn-w_hh-1d", "rnn", lambda t, b: F.rnn(t(2, 5, 4), t(H, 4), t(H), t(H), t(H))),
    ("rnn-bias", "rnn", lambda t, b: F.rnn(t(2, 5, 4), t(H, 4), t(H, H), t(H + 1), t(H))),
    ("rnn-h0-batch", "rnn",
     lambda t, b: F.rnn(t(2, 5, 4), t(H, 4), t(H, H), t(H), t(H), t(3, H))),
    ("rnn-x-2d", "rnn", lambda t, b: F.rnn(t(5, 4), t(H, 4), t(H, H), t(H), t(H))),
    ("rnn-empty-sequence", "rnn",
     lambda t, b: F.rnn(t(2, 0, 4), t(H, 4), t(H, H), t(H), t(H))),
    ("lstm-gates", "lstm",
     lambda t, b: F.lstm(t(2, 5, 4), t(3 * H, 4), t(3 * H, H), t(3 * H), t(3 * H))),
    ("lstm-w_hh-not-square", "lstm",
     lambda t, b: F.lstm(t(2, 5, 4), t(4 * H, 4), t(4 * H, H + 1), t(4 * H), t(4 * H))),
    ("lstm-c0", "lstm", lambda t, b: F.lstm(t(2, 5, 4), t(4 * H, 4), t(4 * H, H), t(4 * H),
                                            t(4 * H), None, t(2, H + 1))),
    ("lstm-backends", "lstm", lambda t, b: F.lstm(t(2, 5, 4), t(4 * H, 4, on=_other(b)),
                                                  t(4 * H, H), t(4 * H), t(4 * H))),
    ("gru-gates", "gru",
     lambda t, b: F.gru(t(2, 5, 4), t(4 * H, 4), t(4 * H, H), t(4 * H), t(4 * H))),
    ("gru-dtypes", "gru", lambda t, b: F.gru(t(2, 5, 4, dtype=np.float64), t(3 * H, 4),
                                             t(3 * H, H), t(3 * H), t(3 * H))),
    # dense
    ("linear-features", "linear", lambda t, b: F.linear(t(2, 4), t(3, 5))),
    ("linear-bias", "linear", lambda t, b: F.linear(t(2, 4), t(3, 4), t(4))),
    ("linear-1d", "linear", lambda t, b: F.linear(t(4), t(3, 4))),
    ("linear-dtypes", "linear", lambda t, b: F.linear(t(2, 4), t(3, 4, dtype=np.float64))),
    ("linear-backends", "linear", lambda t, b: F.linear(t(2, 4), t(3, 4, on=_other(b)))),
    # softmax family
    ("softmax-axis-past-end", "softmax", lambda t, b: F.softmax(t(2, 4), axis=5)),
    ("softmax-axis-before-start", "softmax", lambda t, b: F.softmax(t(2, 4), axis=-3)),
    ("softmax-axis-not-int", "softmax", lambda t, b: F.softmax(t(2, 4), axis=1.0)),
    ("softmax-no-classes", "softmax", lambda t, b: F.softmax(t(2, 0))),
    ("softmax-0d", "softmax", lambda t, b: F.softmax(t())),
    ("softmax-int", "softmax", lambda t, b: F.softmax(t(2, 3, dtype=np.int64))),
    ("log_softmax-axis", "log_softmax", lambda t, b: F.log_softmax(t(2, 4), axis=2)),
    ("log_softmax-no-classes", "log_softmax", lambda t, b: F.log_softmax(t(3, 0))),
    # losses
    ("cross_entropy-label-count", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.array([0, 1]))),
    ("cross_entropy-label-range", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.array([0, 1, 4]))),
    ("cross_entropy-negative-label", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), [0, -1, 2])),
    ("cross_entropy-float-labels", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.array([0.0, 1.0, 2.0]))),
    ("cross_entropy-rows-shape", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.full((3, 5), 0.2, np.float32))),
    ("cross_entropy-scalar-target", "cross_entropy", lambda t, b: F.cross_entropy(t(3, 4), 1)),
    ("cross_entropy-3d-target", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.zeros((3, 4, 1), np.float32))),
    ("cross_entropy-1d-logits", "cross_entropy",
     lambda t, b: F.cross_entropy(t(4), np.array([1]))),
    ("cross_entropy-reduction", "cross_entropy",
     lambda t, b: F.cross_entropy(t(3, 4), np.array([0, 1, 2]), reduction="avg")),
    ("binary_cross_entropy_with_logits-shape", "bce_with_logits",
     lambda t, b: F.binary_cross_entropy_with_logits(t(3, 4), np.ones((3, 5)))),
    ("binary_cross_entropy_with_logits-reduction", "binary_cross_entropy_with_logits",
     lambda t, b: F.binary_cross_entropy_with_logits(t(3, 4), np.ones((3, 4)), "all")),
    ("binary_cross_entropy-shape", "bce",
     lambda t, b: F.binary_cross_entropy(F.sigmoid(t(3, 4)), np.ones((4, 3)))),
    ("mse_loss-shape", "mse", lambda t, b: F.mse_loss(t(3, 4), np.ones(3))),
    ("mse_loss-backends", "mse", lambda t, b: F.mse_loss(t(3, 4), t(3, 4, on=_other(b)))),
    ("mse_loss-reduction", "mse_loss",
     lambda t, b: F.mse_loss(t(3, 4), np.ones((3, 4)), reduction=None)),
    # elementwise
    ("relu-backends", "add", lambda t, b: F.relu(t(2, 2)) + t(2, 2, on=_other(b))),
    ("sigmoid-broadcast", "mul", lambda t, b: F.sigmoid(t(2, 3)) * t(2, 4)),
    ("tanh-dtypes", "sub", lambda t, b: F.tanh(t(2, 3)) - t(2, 3, dtype=np.float64)),
    ("exp-broadcast", "div", lambda t, b: F.exp(t(2, 3)) / t(3, 3)),
    ("log-broadcast", "add", lambda t, b: F.log(F.exp(t(2, 3))) + t(4)),
    ("sqrt-not-a-tensor", "sqrt", lambda t, b: F.sqrt(np.ones(3))),
    ("where-shapes", "where",
     lambda t, b: F.where(np.array([True, False, True]), t(2, 2), t(2, 2))),
    ("where-cond-not-bool", "where",
     lambda t, b: F.where(np.array([[1.0, 0.0], [0.0, 1.0]]), t(2, 2), t(2, 2))),
    # shape
    ("concatenate-shapes", "concatenate",
     lambda t, b: F.concatenate([t(2, 3), t(3, 4)], axis=0)),
    ("concatenate-axis", "concatenate", lambda t, b: F.concatenate([t(2, 3), t(2, 3)], axis=3)),
    ("concatenate-nothing", "concatenate", lambda t, b: F.concatenate([], axis=0)),
    ("concatenate-ranks", "concatenate", lambda t, b: F.concatenate([t(2, 3), t(2, 3, 1)])),
    ("concatenate-dtypes", "concatenate",
     lambda t, b: F.concatenate([t(2, 3), t(2, 3, dtype=np.float64)])),
    ("stack-shapes", "stack", lambda t, b: F.stack([t(2, 3), t(2, 4)])),
    ("stack-axis", "stack", lambda t, b: F.stack([t(2, 3), t(2, 3)], axis=4)),
    ("stack-dtypes", "stack", lambda t, b: F.stack([t(2, 3), t(2, 3, dtype=np.float64)])),
    ("flatten-axis", "flatten", lambda t, b: F.flatten(t(2, 3), start_axis=5)),
    ("dropout-p-1", "dropout", lambda t, b: F.dropout(t(2, 3), 1.0)),
    ("dropout-p-negative", "dropout", lambda t, b: F.dropout(t(2, 3), -0.1)),
    ("embedding-index-range", "embedding", lambda t, b: F.embedding(np.array([0, 5]), t(4, 3))),
    ("embedding-negative-index", "embedding", lambda t, b: F.embedding([0, -1], t(4, 3))),
    ("embedding-float-index", "embedding",
     lambda t, b: F.embedding(np.array([0.0, 1.0]), t(4, 3))),
    # reductions and shape methods that the functions above build on
    ("sum-axis", "sum", lambda t, b: t(2, 3).sum(axis=5)),
    ("mean-axis", "mean", lambda t, b: t(2, 3).mean(axis=-3)),
    ("max-axis", "max", lambda t, b: t(2, 3).max(axis=2)),
    ("sum-repeated-axis", "sum", lambda t, b: t(2, 3).sum(axis=(1, -1))),
    ("reshape-size", "reshape", lambda t, b: t(2, 3).reshape(4, 2)),
    ("transpose-axis", "transpose", lambda t, b: t(2, 3).transpose(0, 2)),
    ("matmul-shapes", "matmul", lambda t, b: t(2, 3) @ t(4, 3)),
]

PUBLIC = {n for n in F.__all__ if n != "reduce"}


def test_every_public_function_has_a_bad_input_case():
    covered = {case[0].split("-")[0] for case in BAD}
    assert PUBLIC <= covered, sorted(PUBLIC - covered)


def _graph(backend):
    """A small graph through conv, pool, recurrent, dense and loss ops; returns a function
    computing its gradients afresh."""
    rng = np.random.default_rng(1)

    def leaf(*shape):
        return mt.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True,
                         backend=backend)

    x, w, b = leaf(2, 3, 8), leaf(4, 3, 3), leaf(4)
    w_ih, w_hh, b_ih, b_hh = leaf(4 * H, 4), leaf(4 * H, H), leaf(4 * H), leaf(4 * H)
    head = leaf(2, H)
    leaves = (x, w, b, w_ih, w_hh, b_ih, b_hh, head)

    def grads():
        for p in leaves:
            p.grad = None
        h = F.conv1d_relu_maxpool1d(x, w, b)                  # (2, 4, 3)
        hs, (h_t, _) = F.lstm(h.transpose(0, 2, 1), w_ih, w_hh, b_ih, b_hh)
        loss = F.cross_entropy(F.linear(h_t, head), np.array([0, 1]))
        loss.backward()
        return [p.grad.copy() for p in leaves]
    return grads


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_gets_one_line_naming_the_op_and_leaves_the_engine_working(
        case, backend, monkeypatch):
    name, op, call = case
    b = tensor_backend(backend, monkeypatch)
    t = _maker(b)
    grads = _graph(b)
    before = grads()
    with pytest.raises((ValueError, TypeError, IndexError)) as info:
        call(t, b)
    msg = str(info.value)
    assert msg.startswith(f"{op}: "), msg
    assert "\n" not in msg and len(msg) < 300, msg
    assert mt.is_grad_enabled()
    for g0, g1 in zip(before, grads(), strict=True):
        np.testing.assert_array_equal(np.asarray(g1), np.asarray(g0))


EMPTY = [
    ("conv1d", lambda t: F.conv1d(t(0, 3, 8), t(4, 3, 3), t(4), padding="same"), (0, 4, 8)),
    ("conv1d-channels-last",
     lambda t: F.conv1d(t(0, 8, 3), t(4, 3, 3), t(4), channels_last=True), (0, 6, 4)),
    ("conv1d_relu", lambda t: F.conv1d_relu(t(0, 3, 8), t(4, 3, 3), t(4)), (0, 4, 6)),
    ("conv1d_relu_maxpool1d",
     lambda t: F.conv1d_relu_maxpool1d(t(0, 3, 8), t(4, 3, 3), t(4)), (0, 4, 3)),
    ("conv1d_relu_maxpool1d-channels-last",
     lambda t: F.conv1d_relu_maxpool1d(t(0, 8, 3), t(4, 3, 3), t(4), channels_last=True),
     (0, 3, 4)),
    ("max_pool1d", lambda t: F.max_pool1d(t(0, 3, 8), 2), (0, 3, 4)),
    ("avg_pool1d", lambda t: F.avg_pool1d(t(0, 3, 8), 2, padding=1), (0, 3, 5)),
    ("rnn", lambda t: F.rnn(t(0, 5, 4), t(H, 4), t(H, H), t(H), t(H))[0], (0, 5, H)),
    ("lstm", lambda t: F.lstm(t(0, 5, 4), t(4 * H, 4), t(4 * H, H), t(4 * H),
                              t(4 * H))[0], (0, 5, H)),
    ("gru", lambda t: F.gru(t(0, 5, 4), t(3 * H, 4), t(3 * H, H), t(3 * H), t(3 * H))[1],
     (0, H)),
    ("linear", lambda t: F.linear(t(0, 4), t(3, 4), t(3)), (0, 3)),
    ("softmax", lambda t: F.softmax(t(0, 4)), (0, 4)),
    ("log_softmax", lambda t: F.log_softmax(t(0, 4)), (0, 4)),
    ("cross_entropy", lambda t: F.cross_entropy(t(0, 4), np.zeros(0, np.int64), "none"), (0,)),
    ("cross_entropy-rows",
     lambda t: F.cross_entropy(t(0, 4), np.zeros((0, 4), np.float32), "sum"), ()),
    ("binary_cross_entropy_with_logits",
     lambda t: F.binary_cross_entropy_with_logits(t(0, 4), np.zeros((0, 4)), "sum"), ()),
    ("binary_cross_entropy",
     lambda t: F.binary_cross_entropy(F.sigmoid(t(0, 4)), np.zeros((0, 4)), "none"), (0, 4)),
    ("mse_loss", lambda t: F.mse_loss(t(0, 4), np.zeros((0, 4)), "sum"), ()),
    ("relu", lambda t: F.relu(t(0, 4)), (0, 4)),
    ("sigmoid", lambda t: F.sigmoid(t(0, 4)), (0, 4)),
    ("tanh", lambda t: F.tanh(t(0, 4)), (0, 4)),
    ("exp", lambda t: F.exp(t(0, 4)), (0, 4)),
    ("log", lambda t: F.log(F.exp(t(0, 4))), (0, 4)),
    ("sqrt", lambda t: F.sqrt(F.exp(t(0, 4))), (0, 4)),
    ("concatenate", lambda t: F.concatenate([t(0, 4), t(0, 2)], axis=1), (0, 6)),
    ("stack", lambda t: F.stack([t(0, 4), t(0, 4)], axis=1), (0, 2, 4)),
    ("flatten", lambda t: F.flatten(t(0, 3, 4)), (0, 12)),
    ("dropout", lambda t: F.dropout(t(0, 4), 0.5, rng=np.random.default_rng(0)), (0, 4)),
    ("embedding", lambda t: F.embedding(np.zeros((0, 2), np.int64), t(5, 3)), (0, 2, 3)),
    ("where", lambda t: F.where(np.zeros((0, 4), bool), t(0, 4), t(0, 4)), (0, 4)),
]


def test_every_public_function_has_an_empty_batch_case():
    assert PUBLIC <= {case[0].split("-")[0] for case in EMPTY}


@pytest.mark.parametrize("case", EMPTY, ids=[c[0] for c in EMPTY])
def test_an_empty_batch_runs_forward_and_backward(case, backend, monkeypatch):
    _, call, shape = case
    b = tensor_backend(backend, monkeypatch)
    made = []
    base = _maker(b)

    def t(*s, **kw):
        made.append(base(*s, **kw))
        return made[-1]

    out = call(t)
    assert out.shape == shape
    out.sum().backward()
    for leaf in made:
        assert leaf.grad.shape == leaf.shape
        assert np.all(np.asarray(leaf.grad) == 0)      # nothing flowed back from no rows
