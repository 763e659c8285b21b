"""Weight initialisers: plain functions of a shape and an explicit ``np.random.Generator``.

They return NumPy arrays (layers wrap them in ``Parameter`` on their backend), so a seed
gives the same weights on every backend. Which framework uses which by default:

==================  ==========================================  ==========================
initialiser         Keras default for                           PyTorch default for
==================  ==========================================  ==========================
``glorot_uniform``  Dense, Conv1D kernels; LSTM/GRU/SimpleRNN   (none; PyTorch's Linear and
                    input kernels                               Conv use kaiming-uniform
                                                                with a = √5)
``orthogonal``      LSTM/GRU/SimpleRNN recurrent kernels        (none)
``uniform``         Embedding, with bound 0.05                  RNN/LSTM/GRU: every weight
                                                                and bias, bound 1/√H
``zeros``           every bias                                  (none)
==================  ==========================================  ==========================

minimtl's layers follow Keras for Linear/Conv1d (the showcase is a Keras model) and
PyTorch for the recurrent layers (their weight layout and gate order are PyTorch's).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["glorot_uniform", "zeros", "uniform", "orthogonal"]


def glorot_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int,
                   rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot/Xavier uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)).

    The variance a²/3 = 2 / (fan_in + fan_out) averages the forward (1/fan_in) and backward
    (1/fan_out) conditions for keeping activations' and gradients' variances constant.
    Keras counts fans over the kernel window: Dense (D → O) has fan_in = D, fan_out = O;
    Conv1D (C → O channels, window K) has fan_in = C·K, fan_out = O·K.

    Parameters
    ----------
    shape : tuple of int          the array's shape (any layout; fans are given explicitly)
    fan_in, fan_out : int ≥ 1
    rng : np.random.Generator
    dtype : float32 or float64
    """
    if fan_in < 1 or fan_out < 1:
        raise ValueError(f"glorot_uniform: fans must be positive, got {fan_in}, {fan_out}")
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def uniform(shape: tuple[int, ...], bound: float, rng: np.random.Generator,
            dtype=np.float32) -> np.ndarray:
    """U(−bound, bound). PyTorch initialises every RNN/LSTM/GRU weight and bias with
    bound = 1/√H (H the hidden size); Keras's Embedding uses bound 0.05."""
    if bound < 0:
        raise ValueError(f"uniform: bound must be >= 0, got {bound}")
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def zeros(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """All zeros: Keras's bias default (and minimtl's for Linear and Conv1d)."""
    return np.zeros(shape, dtype=dtype)


def orthogonal(shape: tuple[int, ...], rng: np.random.Generator, gain: float = 1.0,
               dtype=np.float32) -> np.ndarray:
    """A (semi-)orthogonal matrix, Keras's default for recurrent kernels.

    The array is viewed as rows × cols with rows = shape[0], cols = the product of the rest;
    its rows (if rows ≤ cols) or columns (otherwise) are orthonormal, times ``gain``.
    Made from the QR decomposition of a standard normal matrix, with the signs of R's
    diagonal folded into Q so the result is uniformly distributed (Haar measure).
    """
    if len(shape) < 2:
        raise ValueError(f"orthogonal: needs at least 2 dimensions, got shape {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)                  # q (max, min) with orthonormal columns
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)
