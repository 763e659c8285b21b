"""bce_with_logits, NumPy reference: the definition and the test oracle. Math: see SPEC
(kernels/bce_with_logits/__init__.py). Computes in float64, returns the input dtype."""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def fwd(z, y):
    """loss = max(z, 0) − z·y + log1p(exp(−|z|)), elementwise.

    Parameters
    ----------
    z : array of logits (any shape), float32 or float64;  y : targets in [0, 1], z's shape

    Returns
    -------
    loss : array of z's shape and dtype
    """
    if z.shape != y.shape:
        raise ValueError(f"bce_with_logits: logits {z.shape} and targets {y.shape} differ")
    z64 = z.astype(np.float64)
    y64 = y.astype(np.float64)
    linear = np.where(z64 >= 0, z64 * (1.0 - y64), -z64 * y64)  # max(z,0) − z·y, ≥ 0
    loss = linear + np.log1p(np.exp(-np.abs(z64)))
    return loss.astype(z.dtype)


def bwd(gloss, z, y):
    """gz = gloss·(σ(z) − y), with a stable σ.

    Parameters
    ----------
    gloss, z, y : arrays of one shape

    Returns
    -------
    (gz, None) : gz of z's shape and dtype; the targets have no gradient
    """
    if not (gloss.shape == z.shape == y.shape):
        raise ValueError(
            f"bce_with_logits bwd: gloss {gloss.shape}, z {z.shape} and y {y.shape} differ"
        )
    z64 = z.astype(np.float64)
    y64 = y.astype(np.float64)
    e = np.exp(-np.abs(z64))
    r = e / (1.0 + e)  # σ(−|z|)
    diff = np.where(z64 >= 0, (1.0 - y64) - r, r - y64)  # σ(z) − y
    gz = gloss.astype(np.float64) * diff
    return gz.astype(z.dtype), None
