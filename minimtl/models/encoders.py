"""Inputs as data: named inputs of three kinds encoded into one representation (N, D).

=============  ==========================  =========================================
kind           array                       encoded as
=============  ==========================  =========================================
sequence       (N, L, F) float             the article's tower (``Tower``: two fused
                                           conv blocks, then Flatten or an RNN)
continuous     (N, D) float                itself
categorical    (N, D) int codes, column j  one-hot (Σ_j V_j columns, no parameters)
               in [0, V_j)                 or a learned embedding of ``dim`` per column
=============  ==========================  =========================================

``InputEncoder`` concatenates the encodings in input order. One-hot is the encoding of
the public census-income MMoE runs; the embedding looks every column up in one table with
per-column offsets (one ``getitem`` for all columns, not one per column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import functional as F
from .. import nn
from ..backend import xp_of
from ..tensor import Tensor
from .multitask import Tower

__all__ = ["InputEncoder", "CategoricalEncoder", "INPUT_KINDS"]

INPUT_KINDS = ("sequence", "continuous", "categorical")


class CategoricalEncoder(nn.Module):
    """Integer codes (N, D) -> one-hot (N, Σ V_j), or embeddings (N, D·dim).

    Parameters
    ----------
    vocab : sequence of int          V_j, the number of codes of column j
    encoding : 'onehot' | 'embedding'
    dim : int                        embedding width per column
    rng, dtype, backend              as for the layers
    """

    def __init__(self, vocab: Sequence[int], *, encoding: str = "onehot", dim: int = 4,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__()
        if encoding not in ("onehot", "embedding"):
            raise ValueError(f"CategoricalEncoder: encoding must be 'onehot' or 'embedding', "
                             f"got {encoding!r}")
        self.vocab = [int(v) for v in vocab]
        if not self.vocab or min(self.vocab) < 1:
            raise ValueError(f"CategoricalEncoder: vocabulary sizes must be >= 1, got "
                             f"{self.vocab}")
        self.encoding, self.dim, self.dtype = encoding, int(dim), np.dtype(dtype)
        self.offsets = np.concatenate([[0], np.cumsum(self.vocab)[:-1]]).astype(np.int64)
        self.out_features = sum(self.vocab) if encoding == "onehot" else len(self.vocab) * dim
        if encoding == "embedding":
            self.embedding = nn.Embedding(sum(self.vocab), dim, rng=rng, dtype=dtype,
                                          backend=backend)

    def forward(self, codes: Tensor) -> Tensor:
        """codes: an integer Tensor (N, D) (its backend is where the one-hot rows are made)."""
        xp = xp_of(codes.backend)
        if codes.ndim != 2 or codes.shape[1] != len(self.vocab):
            raise ValueError(f"CategoricalEncoder: expected codes (N, {len(self.vocab)}), "
                             f"got {codes.shape}")
        idx = codes.data + xp.asarray(self.offsets)             # (N, D) rows of one table
        if self.encoding == "embedding":
            e = self.embedding(idx)                             # (N, D, dim)
            return e.reshape(codes.shape[0], self.out_features)
        onehot = xp.zeros((codes.shape[0], self.out_features), dtype=self.dtype)
        onehot[xp.arange(codes.shape[0])[:, None], idx] = 1    # one 1 per column block
        return Tensor(onehot, backend=codes.backend)

    def extra_repr(self) -> str:
        return f"{len(self.vocab)} columns, {self.encoding}, out_features={self.out_features}"


class InputEncoder(nn.Module):
    """Named inputs -> one representation (N, out_features), the concatenation of each
    input's encoding in order.

    Parameters
    ----------
    inputs : mapping name -> kind ('sequence' | 'continuous' | 'categorical')
    shapes : mapping name -> shape without N: (L, F) | (D,) | (D,)
    vocab : mapping name -> vocabulary sizes, for the categorical inputs
    categorical : 'onehot' | 'embedding';  embedding_dim : int
    extractor, rnn, rnn_hidden : the towers of sequence inputs (as ``MultiTaskNet``)
    rng, dtype, backend
    """

    def __init__(self, inputs: Mapping[str, str], shapes: Mapping[str, Sequence[int]], *,
                 vocab: Mapping[str, Sequence[int]] | None = None,
                 categorical: str = "onehot", embedding_dim: int = 4,
                 extractor: str = "cnn", rnn: str = "lstm", rnn_hidden: int = 64,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__()
        rng = np.random.default_rng(0) if rng is None else rng
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        self.kinds = dict(inputs)
        self.shapes = {k: tuple(int(d) for d in shapes[k]) for k in self.kinds}
        self.encoders = nn.ModuleList()
        self.widths = []
        for name, kind in self.kinds.items():
            shape = self.shapes[name]
            if kind == "sequence":
                enc = Tower(shape[0], shape[1], extractor=extractor, rnn=rnn,
                            rnn_hidden=rnn_hidden, **kw)
                width = enc.out_features
            elif kind == "categorical":
                enc = CategoricalEncoder((vocab or {})[name], encoding=categorical,
                                         dim=embedding_dim, **kw)
                width = enc.out_features
            elif kind == "continuous":
                enc, width = nn.Module(), shape[0]      # identity: no parameters
            else:
                raise ValueError(f"InputEncoder: input {name!r} has kind {kind!r}; kinds: "
                                 f"{', '.join(INPUT_KINDS)}")
            self.encoders.append(enc)
            self.widths.append(width)
        self.out_features = sum(self.widths)

    @property
    def categorical_inputs(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.kinds.items() if v == "categorical")

    def forward(self, inputs: Mapping) -> Tensor:
        parts = []
        for (name, kind), enc in zip(self.kinds.items(), self.encoders):
            x = inputs[name]
            parts.append(x if kind == "continuous" else enc(x))
        return parts[0] if len(parts) == 1 else F.concatenate(parts, axis=1)

    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str, str]]:
        rows, names = [], []
        for (name, kind), enc, width in zip(self.kinds.items(), self.encoders, self.widths):
            shape = ", ".join(str(d) for d in self.shapes[name])
            rows.append((f"input_{name} (Input, {kind})", f"({batch}, {shape})", 0, "-", ""))
            if kind == "categorical":
                how = "Embedding" if enc.encoding == "embedding" else "OneHot"
                rows.append((f"{name}_{how.lower()} ({how})", f"({batch}, {width})",
                             enc.num_parameters(), f"input_{name}",
                             "getitem" if enc.encoding == "embedding" else ""))
                names.append(f"{name}_{how.lower()}")
            elif kind == "sequence":
                rows.append((f"{name}_tower (Tower: 2 Conv1D+ReLU+MaxPool1D, "
                             f"{'Flatten' if enc.extractor == 'cnn' else 'RNN'})",
                             f"({batch}, {width})", enc.num_parameters(), f"input_{name}",
                             "conv1d_relu_maxpool"))
                names.append(f"{name}_tower")
            else:
                names.append(f"input_{name}")
        if len(names) > 1:
            rows.append(("encoded (Concatenate)", f"({batch}, {self.out_features})", 0,
                         ", ".join(names), "concat"))
        return rows

