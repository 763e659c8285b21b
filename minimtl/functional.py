"""User-facing functions: each one documents its shapes and applies one op (or a few).

Shapes follow PyTorch: conv/pool inputs (N, C, L), recurrent inputs (N, T, D) batch-first.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .backend import xp_of
from .ops import _checks
from .tensor import Tensor

__all__ = [
    "conv1d", "conv1d_relu", "conv1d_relu_maxpool1d", "max_pool1d", "avg_pool1d", "rnn",
    "lstm", "gru", "linear",
    "softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits",
    "binary_cross_entropy", "mse_loss", "relu", "sigmoid", "tanh", "exp", "log", "sqrt",
    "concatenate", "stack", "flatten", "dropout", "embedding", "where", "reduce",
]


def _pad_pair(padding, k: int, dilation: int, stride: int, op: str) -> tuple[int, int]:
    """Resolve ``padding`` ('valid', 'same', int or (left, right)) to (left, right)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        if stride != 1:
            raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch)")
        total = dilation * (k - 1)
        return total // 2, total - total // 2  # the extra zero goes right, like Keras
    pair = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
    if len(pair) != 2 or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool)
                                 for p in pair):
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair of ints, "
                         f"got {padding!r}")
    return int(pair[0]), int(pair[1])


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, stride: int = 1,
           padding: int | str | tuple[int, int] = 0, dilation: int = 1,
           channels_last: bool = False) -> Tensor:
    """1-D cross-correlation (what deep-learning libraries call convolution).

    Parameters
    ----------
    x : Tensor (N, C, L), or (N, L, C) when ``channels_last`` (Keras's layout)
    weight : Tensor (O, C, K) in both layouts
    bias : Tensor (O,), optional
    stride, dilation : int ≥ 1
    padding : int, (left, right), 'valid' (= 0) or 'same' (output length L, stride 1)

    Returns
    -------
    Tensor (N, O, Lo), or (N, Lo, O) when ``channels_last``;
    Lo = ⌊(L + left + right − dilation·(K − 1) − 1) / stride⌋ + 1
    """
    left, right = _pad_pair(padding, weight.shape[-1], dilation, stride, "conv1d")
    return ops.Conv1d.apply(x, weight, bias, stride=stride, padding_left=left,
                            padding_right=right, dilation=dilation,
                            channels_last=channels_last)


def conv1d_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, stride: int = 1,
                padding: int | str | tuple[int, int] = 0, dilation: int = 1,
                channels_last: bool = False) -> Tensor:
    """``relu(conv1d(x, weight, bias, ...))`` in one fused kernel; same arguments."""
    left, right = _pad_pair(padding, weight.shape[-1], dilation, stride, "conv1d_relu")
    return ops.Conv1dRelu.apply(x, weight, bias, stride=stride, padding_left=left,
                                padding_right=right, dilation=dilation,
                                channels_last=channels_last)


def conv1d_relu_maxpool1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                          stride: int = 1, padding: int | str | tuple[int, int] = 0,
                          dilation: int = 1, pool_size: int = 2, pool_stride: int | None = None,
                          pool_padding: int = 0, channels_last: bool = False) -> Tensor:
    """``max_pool1d(relu(conv1d(x, weight, bias, ...)), pool_size, pool_stride,
    pool_padding)`` in one fused kernel (the full-length ReLU output is never stored on the
    CPU); conv arguments as ``conv1d``, pool arguments as ``max_pool1d``."""
    left, right = _pad_pair(padding, weight.shape[-1], dilation, stride,
                            "conv1d_relu_maxpool")
    return ops.Conv1dReluMaxPool.apply(
        x, weight, bias, stride=stride, padding_left=left, padding_right=right,
        dilation=dilation, pool_size=pool_size,
        pool_stride=pool_size if pool_stride is None else pool_stride,
        pool_padding=pool_padding, channels_last=channels_last)


def max_pool1d(x: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0, *, channels_last: bool = False) -> Tensor:
    """Max over sliding windows: x (N, C, L) -> (N, C, Lo), Lo = ⌊(L + 2p − K)/S⌋ + 1;
    (N, L, C) -> (N, Lo, C) when ``channels_last``.

    ``stride`` defaults to ``kernel_size``; padding (≤ K // 2) counts as −∞; the gradient
    goes to the first maximum of each window.
    """
    return ops.MaxPool1d.apply(x, kernel_size=kernel_size,
                               stride=kernel_size if stride is None else stride,
                               padding=padding, channels_last=channels_last)


def avg_pool1d(x: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0, *, channels_last: bool = False) -> Tensor:
    """Mean over sliding windows: x (N, C, L) -> (N, C, Lo) ((N, L, C) -> (N, Lo, C) when
    ``channels_last``); zero padding is counted."""
    return ops.AvgPool1d.apply(x, kernel_size=kernel_size,
                               stride=kernel_size if stride is None else stride,
                               padding=padding, channels_last=channels_last)


def _zeros_state(x: Tensor, hidden: int) -> Tensor:
    xp = xp_of(x.backend)
    return Tensor(xp.zeros((x.shape[0], hidden), dtype=x.dtype), backend=x.backend)


def rnn(x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
        h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Elman RNN h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh) over x (N, T, D).

    Returns (hs (N, T, H), h_T (N, H)); ``h0`` defaults to zeros.
    """
    h0 = _zeros_state(x, w_hh.shape[-1]) if h0 is None else h0
    hs = ops.RNN.apply(x, h0, w_ih, w_hh, b_ih, b_hh)
    return hs, hs[:, -1]


def lstm(x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
         h0: Tensor | None = None, c0: Tensor | None = None
         ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """LSTM over x (N, T, D) with PyTorch's weights: w_ih (4H, D), w_hh (4H, H), gates
    i, f, g, o. Returns (hs (N, T, H), (h_T, c_T)); states default to zeros."""
    hidden = w_hh.shape[-1]
    h0 = _zeros_state(x, hidden) if h0 is None else h0
    c0 = _zeros_state(x, hidden) if c0 is None else c0
    hs, cs = ops.LSTM.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return hs, (hs[:, -1], cs[:, -1])


def gru(x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
        h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """GRU over x (N, T, D) with PyTorch's weights: w_ih (3H, D), w_hh (3H, H), gates
    r, z, n. Returns (hs (N, T, H), h_T (N, H))."""
    h0 = _zeros_state(x, w_hh.shape[-1]) if h0 is None else h0
    hs = ops.GRU.apply(x, h0, w_ih, w_hh, b_ih, b_hh)
    return hs, hs[:, -1]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b: x (N, D), weight (O, D), bias (O,) -> (N, O)."""
    return ops.Linear.apply(x, weight, bias)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis`` (computed from x − max, so it never overflows)."""
    return ops.Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x − logsumexp(x) along ``axis``, exact for large logits (no log of a rounded 0)."""
    return ops.LogSoftmax.apply(x, axis=axis)


def reduce(loss: Tensor, reduction: str, op: str = "reduce") -> Tensor:
    """Apply ``reduction`` ('mean', 'sum' or 'none') to per-element losses (``op`` names
    the caller in the error for any other value)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy from logits (N, K), fused and stable.

    ``target`` is either integer class labels (N,) or probabilities / one-hot rows (N, K)
    (Keras's categorical cross-entropy). Per row: logsumexp(x) − x_y, resp.
    Σ_k p_k·(logsumexp(x) − x_k). ``reduction``: 'mean' (over N), 'sum' or 'none'.
    """
    if not isinstance(target, Tensor) and not hasattr(target, "ndim"):
        target = np.asarray(target)                         # a list of labels or rows
    if target.ndim == 1:
        loss = ops.CrossEntropy.apply(logits, target)
    elif target.ndim == 2:
        if not isinstance(target, Tensor):
            target = Tensor(target, backend=logits.backend)
        loss = ops.SoftCrossEntropy.apply(logits, target)
    else:
        raise ValueError(f"cross_entropy: target must be class labels (N,) or probability "
                         f"rows (N, K), got shape {tuple(target.shape)}")
    return reduce(loss, reduction, "cross_entropy")


def _target(target, like: Tensor) -> Tensor:
    if isinstance(target, Tensor):
        return target
    return Tensor(np.asarray(target, dtype=like.dtype) if like.backend != "cupy" else target,
                  backend=like.backend, dtype=like.dtype)


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean"
                                     ) -> Tensor:
    """Sigmoid + binary cross-entropy from logits, stable for any |z|:
    max(z, 0) − z·y + log(1 + e^−|z|) per element; 'mean' averages over all elements."""
    loss = ops.BCEWithLogits.apply(logits, _target(target, logits))
    return reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(probs: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities (Keras's ``binary_crossentropy``).

    p is clipped to [1e-7, 1 − 1e-7] (Keras's epsilon) so that log(0) never happens; the
    gradient is zero where the clip was active. Prefer the ``_with_logits`` form in models.
    """
    return reduce(ops.BCE.apply(probs, _target(target, probs)), reduction, "binary_cross_entropy")


def mse_loss(prediction: Tensor, target, reduction: str = "mean") -> Tensor:
    """(prediction − target)² per element, reduced."""
    return reduce(ops.MSE.apply(prediction, _target(target, prediction)), reduction, "mse_loss")


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ops.relu(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e⁻ˣ), overflow-free."""
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def exp(x: Tensor) -> Tensor:
    return ops.exp(x)


def log(x: Tensor) -> Tensor:
    return ops.log(x)


def sqrt(x: Tensor) -> Tensor:
    return ops.Sqrt.apply(x)


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    return ops.Concat.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    return ops.Stack.apply(*tensors, axis=axis)


def flatten(x: Tensor, start_axis: int = 1) -> Tensor:
    """(N, d1, d2, …) -> (N, d1·d2·…) (all axes from ``start_axis`` merged)."""
    start_axis = _checks.axis("flatten", start_axis, x.ndim) if x.ndim else 0
    # the merged size spelled out: -1 cannot be inferred for an empty batch
    return ops.reshape(x, x.shape[:start_axis] + (int(np.prod(x.shape[start_axis:])),))


def dropout(x: Tensor, p: float, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1 − p) (inverted
    dropout, so evaluation needs no rescaling). Identity when not ``training`` or p = 0.
    Seeded through ``rng`` (a NumPy Generator; the mask is drawn on the host)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must lie in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = np.random.default_rng() if rng is None else rng
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return ops.mul(x, Tensor(keep, backend=x.backend))


def embedding(indices, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, E) at integer ``indices`` (any shape) -> (*indices.shape, E);
    the backward scatter-adds, so repeated indices accumulate."""
    idx = indices.data if isinstance(indices, Tensor) else indices
    idx = idx if hasattr(idx, "dtype") else np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise ValueError(f"embedding: indices must lie in [0, {weight.shape[0]}) for weight "
                         f"{weight.shape}, got range [{int(idx.min())}, {int(idx.max())}]")
    return ops.getitem(weight, idx)


def where(cond, a: Tensor, b: Tensor) -> Tensor:
    """a where ``cond`` (a boolean array) else b; the gradient flows to the chosen side."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    if getattr(cond, "dtype", None) != np.bool_:
        raise TypeError(f"where: cond must be a boolean array, got "
                        f"{getattr(cond, 'dtype', type(cond).__name__)}")
    b = ops.as_tensor(b, a)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: cond {cond.shape}, a {a.shape} and b {b.shape} do not "
                         f"broadcast") from None
    return ops.Where.apply(cond, a, b)
