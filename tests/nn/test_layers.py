"""Layers: shapes, parameter counts (Keras's and PyTorch's formulas), agreement with
PyTorch's layers weight for weight, and the behaviour of the small modules.

Heavy layers run the NumPy reference kernels (backend "numpy"); a test whose kernel file
does not exist yet is skipped (and runs as soon as it exists).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernels
from minimtl import nn
from minimtl.tensor import Tensor

_KERNELS = Path(kernels.__file__).parent


def needs(*ops: str):
    missing = [op for op in ops if not (_KERNELS / op / "reference.py").exists()]
    return pytest.mark.skipif(bool(missing), reason=f"kernels not written yet: {missing}")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t(a, requires_grad: bool = False) -> Tensor:
    return Tensor(np.asarray(a), backend="numpy", requires_grad=requires_grad)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


F64 = dict(dtype=np.float64, backend="numpy")


# --- parameter counts ---------------------------------------------------------------
def test_conv1d_parameter_count_matches_keras():
    # Keras Conv1D: (K·C + 1)·O
    assert nn.Conv1d(32, 64, 3, backend="numpy").num_parameters() == 6_208
    assert nn.Conv1d(64, 128, 3, backend="numpy").num_parameters() == (3 * 64 + 1) * 128
    assert nn.Conv1d(8, 16, 5, bias=False, backend="numpy").num_parameters() == 5 * 8 * 16


def test_linear_parameter_count_matches_keras_dense():
    # Keras Dense: (D + 1)·O
    assert nn.Linear(1472, 64, backend="numpy").num_parameters() == 94_272
    assert nn.Linear(64, 1, backend="numpy").num_parameters() == 65
    assert nn.Linear(10, 3, bias=False, backend="numpy").num_parameters() == 30


def test_recurrent_parameter_counts():
    d, h = 16, 32
    # PyTorch (two bias vectors per gate block): gates·(H·(D + H) + 2H)
    assert nn.RNN(d, h, backend="numpy").num_parameters() == h * (d + h) + 2 * h
    assert nn.LSTM(d, h, backend="numpy").num_parameters() == 4 * (h * (d + h) + 2 * h)
    # Keras GRU(reset_after=True), its default, also has two biases: 3·(H·(D + H) + 2H)
    assert nn.GRU(d, h, backend="numpy").num_parameters() == 3 * (h * (d + h) + 2 * h)
    # Keras LSTM has one bias: 4·(H·(D + H) + H), i.e. 4H fewer than ours
    assert nn.LSTM(d, h, backend="numpy").num_parameters() - 4 * (h * (d + h) + h) == 4 * h
    assert nn.Embedding(1000, 8, backend="numpy").num_parameters() == 8000


# --- Linear -------------------------------------------------------------------------
def test_linear_matches_torch_forward_and_backward(torch):
    rng = _rng(1)
    lin = nn.Linear(5, 3, rng=rng, **F64)
    lin.bias.data[...] = rng.standard_normal(3)
    x_np = rng.standard_normal((4, 5))
    gy = rng.standard_normal((4, 3))

    ref = torch.nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(lin.weight.numpy()))
        ref.bias.copy_(torch.from_numpy(lin.bias.numpy()))
    xt = torch.from_numpy(x_np).requires_grad_(True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(gy))

    x = _t(x_np, requires_grad=True)
    y = lin(x)
    y.backward(gy)
    assert y.shape == (4, 3) and y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(lin.weight.grad, ref.weight.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(lin.bias.grad, ref.bias.grad.numpy(), rtol=0, atol=1e-10)


def test_linear_applies_to_the_last_axis_of_any_input():
    lin = nn.Linear(4, 2, rng=_rng(2), **F64)
    x = _rng(3).standard_normal((2, 3, 4))
    y = lin(_t(x))
    assert y.shape == (2, 3, 2)
    np.testing.assert_allclose(y.numpy(), x @ lin.weight.numpy().T, rtol=1e-12)


def test_linear_without_bias_is_a_plain_product():
    lin = nn.Linear(3, 2, bias=False, rng=_rng(4), **F64)
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]
    x = _rng(5).standard_normal((4, 3))
    np.testing.assert_allclose(lin(_t(x)).numpy(), x @ lin.weight.numpy().T, rtol=1e-12)


def test_linear_defaults_to_float32():
    lin = nn.Linear(3, 2, backend="numpy")
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    assert lin(_t(np.ones((1, 3), dtype=np.float32))).dtype == np.float32


# --- Conv1d and pooling -------------------------------------------------------------
@needs("conv1d")
@pytest.mark.parametrize("kwargs, lo", [
    (dict(), 18), (dict(padding="same"), 20), (dict(padding="valid"), 18),
    (dict(stride=2), 9), (dict(dilation=2, padding=1), 18), (dict(padding=(2, 0)), 20),
])
def test_conv1d_output_shape(kwargs, lo):
    conv = nn.Conv1d(4, 6, 3, rng=_rng(6), **kwargs, **F64)
    y = conv(_t(_rng(7).standard_normal((2, 4, 20))))
    assert y.shape == (2, 6, lo) and y.dtype == np.float64


@needs("conv1d")
def test_conv1d_matches_torch_with_same_padding(torch):
    rng = _rng(8)
    conv = nn.Conv1d(3, 5, 3, padding="same", rng=rng, **F64)
    conv.bias.data[...] = rng.standard_normal(5)
    x_np = rng.standard_normal((2, 3, 11))
    gy = rng.standard_normal((2, 5, 11))
    w = torch.from_numpy(conv.weight.numpy()).requires_grad_(True)
    xt = torch.from_numpy(x_np)
    yt = torch.nn.functional.conv1d(xt, w, torch.from_numpy(conv.bias.numpy()),
                                    padding="same")
    yt.backward(torch.from_numpy(gy))
    y = conv(_t(x_np))
    y.backward(gy)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(conv.weight.grad, w.grad.numpy(), rtol=0, atol=1e-10)


@needs("conv1d_relu")
def test_conv1d_relu_activation_equals_relu_of_torch_conv(torch):
    rng = _rng(9)
    conv = nn.Conv1d(3, 4, 3, activation="relu", rng=rng, **F64)
    x_np = rng.standard_normal((2, 3, 12))
    ref = torch.relu(torch.nn.functional.conv1d(
        torch.from_numpy(x_np), torch.from_numpy(conv.weight.numpy()),
        torch.from_numpy(conv.bias.numpy())))
    y = conv(_t(x_np))
    assert (y.numpy() == 0).any() and (y.numpy() > 0).any()
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=0, atol=1e-10)


def test_conv1d_rejects_unknown_activations():
    with pytest.raises(ValueError, match="activation"):
        nn.Conv1d(1, 1, 1, activation="gelu", backend="numpy")


@needs("maxpool1d")
def test_max_pool_layer_matches_torch(torch):
    x = _rng(10).permutation(2 * 3 * 13).reshape(2, 3, 13).astype(np.float64)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        y = nn.MaxPool1d(**kwargs)(_t(x))
        ref = torch.nn.functional.max_pool1d(torch.from_numpy(x), **kwargs)
        np.testing.assert_array_equal(y.numpy(), ref.numpy())


@needs("avgpool1d")
def test_avg_pool_layer_matches_torch(torch):
    x = _rng(11).standard_normal((2, 3, 13))
    y = nn.AvgPool1d(3, stride=2, padding=1)(_t(x))
    ref = torch.nn.functional.avg_pool1d(torch.from_numpy(x), 3, stride=2, padding=1)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=0, atol=1e-12)


# --- recurrent layers ---------------------------------------------------------------
_RECURRENT = [
    pytest.param(nn.RNN, "RNN", marks=needs("rnn"), id="rnn"),
    pytest.param(nn.LSTM, "LSTM", marks=needs("lstm"), id="lstm"),
    pytest.param(nn.GRU, "GRU", marks=needs("gru"), id="gru"),
]


@pytest.mark.parametrize("layer, _", _RECURRENT)
def test_recurrent_output_shapes(layer, _):
    m = layer(3, 5, rng=_rng(12), **F64)
    hs, final = m(_t(_rng(13).standard_normal((2, 7, 3))))
    assert hs.shape == (2, 7, 5)
    states = final if layer is nn.LSTM else (final,)
    assert [s.shape for s in states] == [(2, 5)] * len(states)
    np.testing.assert_array_equal(states[0].numpy(), hs.numpy()[:, -1])


@pytest.mark.parametrize("layer, torch_name", _RECURRENT)
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_match_torch_weight_for_weight(torch, layer, torch_name,
                                                        with_state):
    rng = _rng(14)
    n, t, d, h = 2, 5, 3, 4
    m = layer(d, h, rng=rng, **F64)
    ref = getattr(torch.nn, torch_name)(d, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, p in m.named_parameters():
            getattr(ref, f"{name}_l0").copy_(torch.from_numpy(p.numpy()))
    x_np = rng.standard_normal((n, t, d))
    ghs = rng.standard_normal((n, t, h))
    state_np = [rng.standard_normal((n, h)) for _ in range(2 if layer is nn.LSTM else 1)]

    state_t = [torch.from_numpy(s)[None] for s in state_np]  # torch: (layers, N, H)
    if not with_state:
        hs_t, _ = ref(torch.from_numpy(x_np))
    else:
        hs_t, _ = ref(torch.from_numpy(x_np),
                      tuple(state_t) if layer is nn.LSTM else state_t[0])
    hs_t.backward(torch.from_numpy(ghs))

    state = None
    if with_state:
        state = tuple(_t(s) for s in state_np) if layer is nn.LSTM else _t(state_np[0])
    hs, _ = m(_t(x_np), state)
    hs.backward(ghs)
    np.testing.assert_allclose(hs.numpy(), hs_t.detach().numpy(), rtol=0, atol=1e-10)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(ref, f"{name}_l0").grad.numpy(),
                                   rtol=0, atol=1e-10, err_msg=name)


# --- small modules ------------------------------------------------------------------
def test_dropout_drops_about_p_and_rescales_the_rest():
    drop = nn.Dropout(0.25, rng=_rng(15))
    x = _t(np.ones((200, 100)), requires_grad=True)
    y = drop(x)
    kept = y.numpy() != 0
    assert kept.mean() == pytest.approx(0.75, abs=0.01)  # 20k draws: s.e. 0.003
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad, np.where(kept, 1 / 0.75, 0.0))


def test_dropout_is_reproducible_from_its_generator_and_off_in_eval():
    x = _t(np.ones((10, 10)))
    a = nn.Dropout(0.5, rng=_rng(16))(x).numpy()
    b = nn.Dropout(0.5, rng=_rng(16))(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert nn.Dropout(0.5).eval()(x) is x
    with pytest.raises(ValueError, match="p must"):
        nn.Dropout(1.0)


def test_embedding_looks_up_rows_and_accumulates_repeated_indices():
    emb = nn.Embedding(5, 3, rng=_rng(17), **F64)
    w = emb.weight.numpy().copy()
    assert np.abs(w).max() <= 0.05
    idx = np.array([[1, 4], [1, 1]])
    y = emb(idx)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y.numpy(), w[idx])
    y.backward(np.ones(y.shape))
    expected = np.zeros((5, 3))
    expected[1], expected[4] = 3.0, 1.0
    np.testing.assert_array_equal(emb.weight.grad, expected)


@pytest.mark.parametrize("bad", [[0, 5], [-1, 2]])
def test_embedding_rejects_out_of_range_indices(bad):
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        nn.Embedding(5, 2, backend="numpy")(np.array(bad))


def test_flatten_merges_trailing_axes():
    x = _t(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(start_axis=2)(x).shape == (2, 3, 4)
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), np.arange(24.0).reshape(2, 12))


def test_activation_modules_compute_their_functions():
    x_np = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    x = _t(x_np)
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x_np, 0))
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x_np)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x_np), rtol=1e-15)


@needs("softmax")
def test_softmax_module_normalises_along_its_axis():
    x_np = _rng(18).standard_normal((3, 4))
    y = nn.Softmax(axis=0)(_t(x_np)).numpy()
    e = np.exp(x_np)
    np.testing.assert_allclose(y, e / e.sum(axis=0), rtol=1e-12)


def test_extra_repr_shows_the_constructor_arguments():
    assert repr(nn.Conv1d(32, 64, 3, padding="same", activation="relu", backend="numpy")) \
        == "Conv1d(32, 64, kernel_size=3, padding='same', activation='relu')"
    assert repr(nn.MaxPool1d(2)) == "MaxPool1d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.LSTM(8, 16, backend="numpy")) == "LSTM(8, 16)"
    assert repr(nn.Embedding(10, 4, backend="numpy")) == "Embedding(10, 4)"
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"
    assert repr(nn.Softmax()) == "Softmax(axis=-1)"
