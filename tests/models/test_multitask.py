"""The seed multi-task network: shapes, parameter counts (Keras's), options."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import minimtl as mt
from minimtl.data import TASKS
from minimtl.models import MultiTaskNet
from tests._util import tensor_backend


def keras_param_count(seq_len: int, features: int, towers: int = 3, outputs: int = 10) -> int:
    """Keras's count for the article's listing, from the layer formulas:
    Conv1D: (C·K + 1)·O; Dense: (in + 1)·out; pooling/flatten/concat: 0."""
    conv1 = (features * 3 + 1) * 64
    conv2 = (64 * 3 + 1) * 128
    lo = ((seq_len - 2) // 2 - 2) // 2
    flat = 128 * lo
    return towers * (conv1 + conv2) + 3 * (3 * flat + 1) * outputs


def test_default_network_has_the_keras_models_254046_parameters():
    model = MultiTaskNet(backend="numpy")
    assert model.num_parameters() == 254_046 == keras_param_count(64, 32)


@pytest.mark.parametrize("seq_len,features", [(16, 4), (40, 7), (100, 16)])
def test_parameter_count_matches_keras_formula(seq_len, features):
    model = MultiTaskNet(seq_len, features, backend="numpy")
    assert model.num_parameters() == keras_param_count(seq_len, features)


def test_shared_tower_counts_one_extractor():
    shared = MultiTaskNet(32, 8, sharing="shared", backend="numpy")
    conv = (8 * 3 + 1) * 64 + (64 * 3 + 1) * 128
    lo = ((32 - 2) // 2 - 2) // 2
    assert shared.num_parameters() == conv + 3 * (3 * 128 * lo + 1) * 10


def test_summary_table_totals_match_the_model():
    model = MultiTaskNet(backend="numpy")
    text = model.summary()
    assert "Total params: 254,046" in text
    rows = model.summary_rows()
    assert sum(r[2] for r in rows) == model.num_parameters()
    assert any("Concatenate" in r[0] for r in rows)
    assert [r[1] for r in rows if r[0].startswith("user_conv2")] == ["(None, 14, 128)"]


def test_summary_counts_match_for_every_option():
    for kw in (dict(extractor="cnn+rnn", rnn="gru"), dict(fusion="weighted"),
               dict(sharing="shared", extractor="cnn+rnn")):
        model = MultiTaskNet(32, 8, backend="numpy", **kw)
        assert sum(r[2] for r in model.summary_rows()) == model.num_parameters(), kw


def _inputs(n, seq_len, features, backend="numpy", seed=0):
    rng = np.random.default_rng(seed)
    return {t: mt.tensor(rng.standard_normal((n, seq_len, features)).astype(np.float32),
                         backend=backend) for t in TASKS}


@pytest.mark.parametrize("kw", [
    {},
    {"extractor": "cnn+rnn", "rnn": "lstm"},
    {"extractor": "cnn+rnn", "rnn": "gru", "sharing": "shared"},
    {"extractor": "cnn+rnn", "rnn": "rnn", "fusion": "weighted"},
    {"fusion": "weighted", "heads": {"goods": "linear"}},
])
def test_forward_gives_one_logit_block_per_head(kw):
    model = MultiTaskNet(24, 5, backend="numpy", **kw)
    out = model(_inputs(3, 24, 5))
    assert set(out) == set(TASKS)
    for t in TASKS:
        assert out[t].shape == (3, 10) and out[t].dtype == np.float32


def test_weighted_fusion_starts_equal_and_reports_weights_per_task():
    model = MultiTaskNet(24, 5, fusion="weighted", backend="numpy")
    w = model.fusion_weights()
    assert set(w) == set(TASKS)
    for row in w.values():
        assert abs(sum(row.values()) - 1) < 1e-12
        assert all(abs(v - 1 / 3) < 1e-7 for v in row.values())
    assert MultiTaskNet(24, 5, backend="numpy").fusion_weights() is None


def test_every_parameter_gets_a_gradient_from_the_total_loss():
    for kw in ({}, {"fusion": "weighted", "extractor": "cnn+rnn", "rnn": "gru"}):
        model = MultiTaskNet(24, 5, backend="numpy", **kw)
        logits = model(_inputs(4, 24, 5))
        targets = {"user": np.array([0, 1, 2, 3]), "goods": np.ones((4, 10), np.float32),
                   "ads": np.array([3, 2, 1, 0])}
        model.total_loss(model.losses(logits, targets)).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and np.any(p.grad != 0), name


def test_bad_options_are_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match="fusion"):
        MultiTaskNet(fusion="sum", backend="numpy")
    with pytest.raises(ValueError, match="seq_len 8 is too short"):
        MultiTaskNet(8, 4, backend="numpy")
    with pytest.raises(ValueError, match="head"):
        MultiTaskNet(heads={"goods": "tanh"}, backend="numpy")


@pytest.mark.parametrize("kw", [{}, {"extractor": "cnn+rnn", "rnn": "gru"}])
def test_both_layouts_give_the_same_losses_and_gradients(kw, backend, monkeypatch):
    """channels_last changes only the activations' memory layout: with the same parameters
    (one seed) the two layouts give the same losses and gradients, up to float64 rounding."""
    backend = tensor_backend(backend, monkeypatch)
    rng = np.random.default_rng(3)
    inputs = {t: mt.tensor(rng.standard_normal((4, 24, 5)), backend=backend) for t in TASKS}
    targets = {"user": np.array([0, 1, 2, 3]), "goods": (rng.random((4, 10)) > 0.5) * 1.0,
               "ads": np.array([3, 2, 1, 0])}
    results = []
    for cl in (True, False):
        model = MultiTaskNet(24, 5, backend=backend, dtype=np.float64, channels_last=cl, **kw)
        losses = model.losses(model(inputs), targets)
        model.total_loss(losses).backward()
        results.append(({t: float(v.item()) for t, v in losses.items()},
                        {n: p.grad.copy() for n, p in model.named_parameters()}))
    (loss_cl, grad_cl), (loss_cf, grad_cf) = results
    for t in TASKS:
        assert loss_cl[t] == pytest.approx(loss_cf[t], rel=1e-12)
    assert grad_cl.keys() == grad_cf.keys()
    for name in grad_cl:
        np.testing.assert_allclose(grad_cl[name], grad_cf[name], rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_default_layout_is_channels_last_on_the_cpu():
    model = MultiTaskNet(24, 5, backend="numpy")
    x = mt.tensor(np.zeros((2, 24, 5), np.float32), backend="numpy")
    assert x.backend == "numpy"
    assert model.towers[0].channels_last is True
    assert MultiTaskNet(24, 5, backend="numpy", channels_last=False).towers[0].channels_last \
        is False


# --- the printed model is the model that runs --------------------------------------------
#: ops that a summary row stands for; the rest (transposes, slices, the fusion's
#: arithmetic, the heads' weight stacking) is plumbing inside a layer
LAYER_OPS = {"conv1d", "conv1d_relu", "conv1d_relu_maxpool", "maxpool1d", "avgpool1d",
             "rnn", "lstm", "gru", "linear", "concat", "stack", "reshape"}


def _data_path_ops(inputs, outputs) -> list[str]:
    """Op names of the recorded nodes between ``inputs`` and ``outputs`` that read data
    (an input, or what another such node made), not only parameters."""
    order, seen = [], set()

    def visit(node):                  # post-order: a node after the nodes it reads
        stack = [(node, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
            elif id(n) not in seen:
                seen.add(id(n))
                stack.append((n, True))
                stack.extend((t._node, False) for t in n.inputs
                             if isinstance(t, mt.Tensor) and t._node is not None)

    for y in outputs:
        visit(y._node)
    data = {id(t) for t in inputs}
    ops = []
    for n in order:
        if any(isinstance(t, mt.Tensor) and (id(t) in data or (t._node is not None and
               id(t._node) in data)) for t in n.inputs):
            data.add(id(n))
            ops.append(n.fn.op_name())
    return ops


@pytest.mark.parametrize("kw", [
    {},
    {"channels_last": False},
    {"extractor": "cnn+rnn", "rnn": "lstm"},
    {"extractor": "cnn+rnn", "rnn": "gru", "sharing": "shared"},
    {"extractor": "cnn+rnn", "rnn": "rnn", "fusion": "weighted", "channels_last": False},
    {"fusion": "weighted", "sharing": "shared"},
])
def test_the_ops_a_forward_records_are_the_layers_the_summary_lists(kw):
    """Every row of ``summary()`` names the op its layer records, and a forward records
    exactly those layer ops on the data path, as many times as rows list them: no layer is
    printed that does not run (the conv and pool rows of a fused block), none runs unseen."""
    model = MultiTaskNet(24, 5, backend="numpy", **kw)
    # inputs that require a gradient, so that even a transpose of one is recorded
    inputs = {t: mt.tensor(v.data, backend="numpy", requires_grad=True)
              for t, v in _inputs(3, 24, 5).items()}
    with_inputs = list(inputs.values())
    recorded = collections.Counter(
        op for op in _data_path_ops(with_inputs, list(model(inputs).values()))
        if op in LAYER_OPS)
    listed = collections.Counter(r[4] for r in model.summary_rows() if r[4] in LAYER_OPS)
    assert recorded == listed
    assert recorded["conv1d_relu_maxpool"] == 6 and recorded["maxpool1d"] == 0


def test_the_walk_sees_a_conv_block_run_as_separate_layers():
    """The check above can fail: a tower that ran conv and pool as separate layers records
    conv1d_relu and maxpool1d, which no summary row lists."""
    x = mt.tensor(np.random.default_rng(0).standard_normal((2, 5, 12)), backend="numpy",
                  requires_grad=True)
    conv = mt.nn.Conv1d(5, 4, 3, activation="relu", dtype=np.float64, backend="numpy")
    pool = mt.nn.MaxPool1d(2)
    ops = _data_path_ops([x], [pool(conv(x))])
    assert ops == ["conv1d_relu", "maxpool1d"]


# --- the stacked heads' parameters ------------------------------------------------------------
def test_stacked_heads_keep_their_weights_in_one_array_and_join_them_without_a_copy():
    """Each head's weight and bias is a view of one array holding all heads' rows in order,
    so the per-step join is a view of it; the product then sees every in-place change
    (an optimizer step, a loaded checkpoint) of any head's parameters."""
    from minimtl import functional as F

    model = MultiTaskNet(16, 3, seed=0, backend="numpy", dtype=np.float64)
    heads = list(model.heads)
    for name in ("weight", "bias"):
        arrays = [getattr(h, name).data for h in heads]
        assert all(a.base is arrays[0].base for a in arrays)
        joined = F.concatenate([getattr(h, name) for h in heads], axis=0)
        assert np.shares_memory(joined.data, arrays[0])
    z = mt.tensor(np.random.default_rng(0).standard_normal((5, heads[0].in_features)),
                  backend="numpy")
    state = {k: v * 0.5 for k, v in model.state_dict().items()}
    model.load_state_dict(state)                    # in place: the views stay views
    heads[1].weight.data[...] += 1.0                # as an optimizer step writes
    outs = model.heads(z)
    for h, out in zip(heads, outs):
        np.testing.assert_allclose(out.numpy(), z.numpy() @ h.weight.numpy().T +
                                   h.bias.numpy(), rtol=1e-12, atol=1e-12)


def test_concatenating_rows_that_merely_sit_side_by_side_still_copies():
    """Adjacent views of an array that holds more than them are joined by a copy (a view
    would show the rest too), as are views out of order."""
    from minimtl import functional as F

    base = np.arange(12.0).reshape(4, 3)
    a, b = mt.tensor(base[0:1]), mt.tensor(base[1:2])
    assert not np.shares_memory(F.concatenate([a, b], axis=0).data, base)
    c, d = mt.tensor(base[2:4]), mt.tensor(base[0:2])
    out = F.concatenate([c, d], axis=0)
    assert not np.shares_memory(out.data, base)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([base[2:4], base[0:2]]))
