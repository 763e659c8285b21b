"""softmax, NumPy reference: the definition and the test oracle. Math: see SPEC
(kernels/softmax/__init__.py). Computes in float64, returns the input dtype."""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def _check_rows(op: str, x) -> None:
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{op}: x must have shape (M, K) with K >= 1, got {x.shape}")


def fwd(x):
    """y = softmax(x) along the last axis.

    Parameters
    ----------
    x : (M, K) float32 or float64 array, K ≥ 1

    Returns
    -------
    y : (M, K) array of x's dtype, rows summing to 1
    """
    _check_rows("softmax", x)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))  # every exponent <= 0
    y = e / e.sum(axis=1, keepdims=True)
    return y.astype(x.dtype)


def bwd(gy, y):
    """gx = y ⊙ (gy − Σ_k gy·y), the gradient of softmax.

    Parameters
    ----------
    gy : (M, K) array, upstream gradient;  y : (M, K) array, the output of ``fwd``

    Returns
    -------
    (gx,) : tuple of one (M, K) array of y's dtype
    """
    if gy.shape != y.shape:
        raise ValueError(f"softmax bwd: gy {gy.shape} and y {y.shape} differ")
    gy64 = gy.astype(np.float64)
    y64 = y.astype(np.float64)
    s = (gy64 * y64).sum(axis=1, keepdims=True)  # (M, 1)
    gx = y64 * (gy64 - s)
    return (gx.astype(y.dtype),)
