"""Inputs as data: each kind of input encoded as documented, and the encoder's summary
counting its parameters."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
from minimtl.gradcheck import gradcheck
from minimtl.models.encoders import CategoricalEncoder, InputEncoder

VOCAB = [3, 5, 2]


def _codes(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, v, n) for v in VOCAB], axis=1)


def test_one_hot_sets_exactly_one_column_per_block_at_the_code():
    codes = _codes()
    out = CategoricalEncoder(VOCAB, backend="numpy")(mt.Tensor(codes, backend="numpy")).numpy()
    assert out.shape == (6, sum(VOCAB))
    starts = np.cumsum([0] + VOCAB[:-1])
    for j, (s, v) in enumerate(zip(starts, VOCAB)):
        block = out[:, s:s + v]
        assert np.all(block.sum(axis=1) == 1)
        assert np.all(np.argmax(block, axis=1) == codes[:, j])


def test_the_embedding_of_one_table_equals_one_table_per_column():
    codes = _codes()
    enc = CategoricalEncoder(VOCAB, encoding="embedding", dim=2, backend="numpy",
                             dtype=np.float64, rng=np.random.default_rng(1))
    table = enc.embedding.weight.numpy()
    starts = np.cumsum([0] + VOCAB[:-1])
    want = np.concatenate([table[s:s + v][codes[:, j]] for j, (s, v) in
                           enumerate(zip(starts, VOCAB))], axis=1)
    got = enc(mt.Tensor(codes, backend="numpy")).numpy()
    np.testing.assert_array_equal(got, want)


def test_the_embedding_gradient_passes_gradcheck(backend):
    if backend == "cuda_host":
        pytest.skip("the encoder adds no kernel of its own")
    codes = mt.Tensor(_codes(), backend=backend)
    enc = CategoricalEncoder(VOCAB, encoding="embedding", dim=2, backend=backend,
                             dtype=np.float64, rng=np.random.default_rng(2))
    # the encoder's own function of its table: lookups at offset codes, reshaped
    assert gradcheck(lambda t: (mt.functional.embedding(
        codes.data + enc.offsets, t).reshape(6, -1) ** 2).sum(), [enc.embedding.weight])


def test_the_encoder_concatenates_in_input_order_and_counts_parameters():
    enc = InputEncoder({"num": "continuous", "cat": "categorical", "seq": "sequence"},
                       {"num": (4,), "cat": (3,), "seq": (12, 2)}, vocab={"cat": VOCAB},
                       backend="numpy", dtype=np.float64)
    x = {"num": mt.tensor(np.arange(8.0).reshape(2, 4), backend="numpy"),
         "cat": mt.Tensor(_codes(2), backend="numpy"),
         "seq": mt.tensor(np.zeros((2, 12, 2)), backend="numpy")}
    z = enc(x).numpy()
    assert z.shape == (2, enc.out_features) == (2, 4 + 10 + 128)
    np.testing.assert_array_equal(z[:, :4], np.arange(8.0).reshape(2, 4))
    assert sum(r[2] for r in enc.summary_rows()) == enc.num_parameters()
    assert enc.categorical_inputs == ("cat",)


def test_bad_encoder_settings_are_refused():
    with pytest.raises(ValueError, match="encoding must be"):
        CategoricalEncoder(VOCAB, encoding="hash")
    with pytest.raises(ValueError, match="vocabulary sizes must be >= 1"):
        CategoricalEncoder([3, 0])
    with pytest.raises(ValueError, match="kind 'image'"):
        InputEncoder({"x": "image"}, {"x": (3,)})
    with pytest.raises(ValueError, match=r"expected codes \(N, 3\)"):
        CategoricalEncoder(VOCAB, backend="numpy")(mt.Tensor(np.zeros((2, 2), np.int64),
                                                             backend="numpy"))
