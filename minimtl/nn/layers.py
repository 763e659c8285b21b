"""Layers: each one owns its parameters and calls ``minimtl.functional`` in ``forward``.

Defaults: float32 parameters (what training uses; pass ``dtype=np.float64`` for
gradient checks), the default backend, a fresh unseeded generator unless ``rng`` is given.
Shapes follow PyTorch: conv/pool (N, C, L), recurrent layers (N, T, D) batch-first.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..backend import xp_of
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = [
    "Linear", "Conv1d", "Conv1dReluMaxPool1d", "MaxPool1d", "AvgPool1d", "RNN", "LSTM", "GRU",
    "Embedding", "Dropout", "Flatten", "ReLU", "Sigmoid", "Tanh", "Softmax",
]


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng() if rng is None else rng


def _check_sizes(layer: str, **sizes) -> None:
    """Every size a positive integer, else one line naming the layer and the argument."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{layer}: {name} must be an integer >= 1, got {value!r}")


class Linear(Module):
    """Fully connected layer y = x Wᵀ + b (Keras's Dense, PyTorch's Linear).

    Parameters
    ----------
    in_features, out_features : int     D and O
    bias : bool                         add a bias b (O,), initialised to zero
    rng : np.random.Generator, optional
    dtype : float32 (default) or float64
    backend : str, optional

    Attributes
    ----------
    weight : Parameter (O, D)   PyTorch's layout; Glorot-uniform (fan_in D, fan_out O), as
                                Keras's Dense
    bias : Parameter (O,) or None

    Shapes: x (N, D) -> (N, O); more leading axes (…, D) -> (…, O) are flattened and
    restored around the product.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        w = init.glorot_uniform((out_features, in_features), in_features, out_features,
                                _rng(rng), dtype)
        self.weight = Parameter(w, backend=backend)
        self.bias = Parameter(init.zeros((out_features,), dtype), backend=backend) \
            if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            return F.linear(x, self.weight, self.bias)
        lead = x.shape[:-1]
        y = F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)
        return y.reshape(lead + (self.out_features,))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv1d(Module):
    """1-D convolution over (N, C, L) inputs (Keras's Conv1D in PyTorch's layout), or over
    (N, L, C) inputs (Keras's own layout) with ``channels_last=True``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int     C, O, K
    stride, dilation : int
    padding : int, (left, right), 'valid' or 'same'
    bias : bool                         bias (O,), initialised to zero
    activation : None or 'relu'         'relu' runs the fused conv1d+ReLU kernel
    channels_last : bool                the activations' layout (the weight is (O, C, K)
                                        either way)
    rng, dtype, backend : as for ``Linear``

    Attributes
    ----------
    weight : Parameter (O, C, K)   Glorot-uniform with Keras's fans: fan_in = C·K,
                                   fan_out = O·K
    bias : Parameter (O,) or None

    Shapes: x (N, C, L) -> (N, O, Lo), Lo = ⌊(L + pl + pr − dilation·(K − 1) − 1)/stride⌋ + 1;
    channels-last x (N, L, C) -> (N, Lo, O).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int | str | tuple[int, int] = 0, dilation: int = 1,
                 bias: bool = True, activation: str | None = None, *,
                 channels_last: bool = False, rng: np.random.Generator | None = None,
                 dtype=np.float32, backend: str | None = None) -> None:
        super().__init__()
        if activation not in (None, "relu"):
            raise ValueError(f"Conv1d: activation must be None or 'relu', got {activation!r}")
        _check_sizes("Conv1d", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = (in_channels, out_channels,
                                                                 kernel_size)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.activation, self.channels_last = activation, bool(channels_last)
        w = init.glorot_uniform((out_channels, in_channels, kernel_size),
                                in_channels * kernel_size, out_channels * kernel_size,
                                _rng(rng), dtype)
        self.weight = Parameter(w, backend=backend)
        self.bias = Parameter(init.zeros((out_channels,), dtype), backend=backend) \
            if bias else None

    def forward(self, x: Tensor) -> Tensor:
        conv = F.conv1d_relu if self.activation == "relu" else F.conv1d
        return conv(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, channels_last=self.channels_last)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != 1:
            s += f", stride={self.stride}"
        if self.padding not in (0, "valid"):
            s += f", padding={self.padding!r}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        if self.channels_last:
            s += ", channels_last=True"
        return s


class Conv1dReluMaxPool1d(Conv1d):
    """A conv block as one layer: ``max_pool1d(relu(conv1d(x)))`` through the fused
    ``conv1d_relu_maxpool`` op, so that a model built from it runs (and prints) one op per
    block. The same parameters, initialisation and math as ``Conv1d(..., activation='relu')``
    followed by ``MaxPool1d(pool_size, pool_stride, pool_padding)``; only the kernel differs
    (which backends and layouts fuse for real: ``kernels/conv1d_relu_maxpool``).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, bias : as ``Conv1d``
    pool_size : int                  the max-pool window
    pool_stride : int, optional      default ``pool_size``
    pool_padding : int ≤ pool_size // 2
    channels_last, rng, dtype, backend : as ``Conv1d``

    Shapes: x (N, C, L) -> (N, O, Lp) with Lo as ``Conv1d`` and
    Lp = ⌊(Lo + 2·pool_padding − pool_size)/pool_stride⌋ + 1; channels-last (N, L, C) ->
    (N, Lp, O).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int | str | tuple[int, int] = 0, dilation: int = 1,
                 bias: bool = True, *, pool_size: int = 2, pool_stride: int | None = None,
                 pool_padding: int = 0, channels_last: bool = False,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         bias, "relu", channels_last=channels_last, rng=rng, dtype=dtype,
                         backend=backend)
        _check_sizes("Conv1dReluMaxPool1d", pool_size=pool_size)
        self.pool_size, self.pool_padding = pool_size, pool_padding
        self.pool_stride = pool_size if pool_stride is None else pool_stride

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d_relu_maxpool1d(
            x, self.weight, self.bias, stride=self.stride, padding=self.padding,
            dilation=self.dilation, pool_size=self.pool_size, pool_stride=self.pool_stride,
            pool_padding=self.pool_padding, channels_last=self.channels_last)

    def extra_repr(self) -> str:
        s = super().extra_repr().replace(", activation='relu'", "")
        s += f", pool_size={self.pool_size}"
        if self.pool_stride != self.pool_size:
            s += f", pool_stride={self.pool_stride}"
        if self.pool_padding:
            s += f", pool_padding={self.pool_padding}"
        return s


class _Pool1d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, *,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride
        self.channels_last = bool(channels_last)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s + (", channels_last=True" if self.channels_last else "")


class MaxPool1d(_Pool1d):
    """Max over windows of K along L (Keras's MaxPooling1D).

    Parameters
    ----------
    kernel_size : int           K
    stride : int, optional      default K (non-overlapping windows)
    padding : int ≤ K // 2      on both sides, counted as −∞
    channels_last : bool        (N, L, C) activations instead of (N, C, L)

    Shapes: x (N, C, L) -> (N, C, Lo), Lo = ⌊(L + 2·padding − K)/stride⌋ + 1;
    channels-last x (N, L, C) -> (N, Lo, C).
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding,
                            channels_last=self.channels_last)


class AvgPool1d(_Pool1d):
    """Mean over windows of K along L (Keras's AveragePooling1D); zero padding is counted.

    Parameters and shapes as ``MaxPool1d``.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                            channels_last=self.channels_last)


class _Recurrent(Module):
    """Shared parameters of RNN/LSTM/GRU: PyTorch's layout and init (``gates`` blocks of H
    rows; every weight and bias U(−1/√H, 1/√H))."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, *,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        rng, rows, bound = _rng(rng), self.gates * hidden_size, 1 / math.sqrt(hidden_size)

        def param(*shape: int) -> Parameter:
            return Parameter(init.uniform(shape, bound, rng, dtype), backend=backend)

        self.weight_ih = param(rows, input_size)
        self.weight_hh = param(rows, hidden_size)
        self.bias_ih = param(rows)
        self.bias_hh = param(rows)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNN(_Recurrent):
    """Elman RNN h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), batch-first.

    Parameters
    ----------
    input_size, hidden_size : int     D and H
    rng, dtype, backend : as for ``Linear``

    Attributes
    ----------
    weight_ih (H, D), weight_hh (H, H), bias_ih (H,), bias_hh (H,) : Parameter
        PyTorch's ``*_l0`` parameters, with its init U(−1/√H, 1/√H)

    ``forward(x (N, T, D), state=None (N, H))`` -> (hs (N, T, H), h_T (N, H)); the initial
    state defaults to zeros.
    """

    gates = 1

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return F.rnn(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, state)


class LSTM(_Recurrent):
    """LSTM with PyTorch's gate order i, f, g, o, batch-first.

    Parameters
    ----------
    input_size, hidden_size : int     D and H
    rng, dtype, backend : as for ``Linear``

    Attributes
    ----------
    weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,) : Parameter
        PyTorch's layout and init U(−1/√H, 1/√H). (Keras has one bias, so its parameter
        count is 4H smaller.)

    ``forward(x (N, T, D), state=None | (h0, c0) each (N, H))`` ->
    (hs (N, T, H), (h_T, c_T)); the initial states default to zeros.
    """

    gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = (None, None) if state is None else state
        return F.lstm(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, h0, c0)


class GRU(_Recurrent):
    """GRU with PyTorch's gate order r, z, n (Keras's ``reset_after=True`` variant),
    batch-first.

    Parameters
    ----------
    input_size, hidden_size : int     D and H
    rng, dtype, backend : as for ``Linear``

    Attributes
    ----------
    weight_ih (3H, D), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,) : Parameter
        PyTorch's layout and init U(−1/√H, 1/√H)

    ``forward(x (N, T, D), state=None (N, H))`` -> (hs (N, T, H), h_T (N, H)).
    """

    gates = 3

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return F.gru(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, state)


class Embedding(Module):
    """A lookup table: integer indices (any shape) -> rows of ``weight``.

    Parameters
    ----------
    num_embeddings, dim : int       V and E
    rng, dtype, backend : as for ``Linear``

    Attributes
    ----------
    weight : Parameter (V, E)   Keras's init U(−0.05, 0.05)

    Shapes: indices (…) in [0, V) -> (…, E). Repeated indices accumulate gradient.
    """

    def __init__(self, num_embeddings: int, dim: int, *,
                 rng: np.random.Generator | None = None, dtype=np.float32,
                 backend: str | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = Parameter(init.uniform((num_embeddings, dim), 0.05, _rng(rng), dtype),
                                backend=backend)

    def forward(self, indices) -> Tensor:
        xp = xp_of(self.weight.backend)
        idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: indices must be integers, got dtype {idx.dtype}")
        # Negative indices would silently wrap around: reject them with the too-large ones.
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise IndexError(f"Embedding: indices must lie in [0, {self.num_embeddings}), "
                             f"got range [{int(idx.min())}, {int(idx.max())}]")
        return F.embedding(idx, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}"


class Dropout(Module):
    """Inverted dropout: in training mode each element is zeroed with probability ``p`` and
    the rest are scaled by 1/(1 − p); in eval mode the identity. Any shape.

    Parameters
    ----------
    p : float in [0, 1)
    rng : np.random.Generator, optional     draws the masks (on the host)
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p, self.rng = p, _rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """(N, d1, d2, …) -> (N, d1·d2·…): merges all axes from ``start_axis`` on."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}"


class ReLU(Module):
    """max(x, 0), elementwise; any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + e⁻ˣ), elementwise; any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh x, elementwise; any shape."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """exp(x) / Σ exp(x) along ``axis``; any shape."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
