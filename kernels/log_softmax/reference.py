"""log_softmax, NumPy reference: the definition and the test oracle. Math: see SPEC
(kernels/log_softmax/__init__.py). Computes in float64, returns the input dtype.
The stable (m, L) of the SPEC is ``max_and_log_sum`` (kernels/_rows.py), which the
cross-entropy references use too.
"""

from __future__ import annotations

import numpy as np

from kernels._rows import max_and_log_sum

__all__ = ["fwd", "bwd"]


def fwd(x):
    """y = log_softmax(x) = x − logsumexp(x) along the last axis.

    Parameters
    ----------
    x : (M, K) float32 or float64 array, K ≥ 1

    Returns
    -------
    y : (M, K) array of x's dtype, ≤ 0
    """
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"log_softmax: x must have shape (M, K) with K >= 1, got {x.shape}")
    x64 = x.astype(np.float64)
    m, L = max_and_log_sum(x64)
    y = (x64 - m) - L
    return y.astype(x.dtype)


def bwd(gy, y):
    """gx = gy − exp(y)·Σ_k gy, the gradient of log_softmax.

    Parameters
    ----------
    gy : (M, K) array, upstream gradient;  y : (M, K) array, the output of ``fwd``

    Returns
    -------
    (gx,) : tuple of one (M, K) array of y's dtype
    """
    if gy.shape != y.shape:
        raise ValueError(f"log_softmax bwd: gy {gy.shape} and y {y.shape} differ")
    gy64 = gy.astype(np.float64)
    S = gy64.sum(axis=1, keepdims=True)  # (M, 1)
    gx = gy64 - np.exp(y.astype(np.float64)) * S
    return (gx.astype(y.dtype),)
