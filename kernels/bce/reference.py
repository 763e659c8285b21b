"""bce on probabilities, NumPy reference: the definition and the test oracle. Math: see
SPEC (kernels/bce/__init__.py). Computes in float64, returns the input dtype."""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd", "EPS"]

#: Clip bound of the probabilities (Keras's epsilon), applied in float64.
EPS = 1e-7


def fwd(p, y):
    """loss = −(y·log p̂ + (1 − y)·log(1 − p̂)), p̂ = clip(p, ε, 1 − ε), elementwise.

    Parameters
    ----------
    p : array of probabilities (any shape), float32 or float64;  y : targets, p's shape

    Returns
    -------
    loss : array of p's shape and dtype
    """
    if p.shape != y.shape:
        raise ValueError(f"bce: probabilities {p.shape} and targets {y.shape} differ")
    p_hat = np.clip(p.astype(np.float64), EPS, 1.0 - EPS)
    y64 = y.astype(np.float64)
    loss = -(y64 * np.log(p_hat) + (1.0 - y64) * np.log1p(-p_hat))
    return loss.astype(p.dtype)


def bwd(gloss, p, y):
    """gp = gloss·(p̂ − y)/(p̂(1 − p̂)) where the clip is inactive (ε ≤ p ≤ 1 − ε), else 0.

    Parameters
    ----------
    gloss, p, y : arrays of one shape

    Returns
    -------
    (gp, None) : gp of p's shape and dtype; the targets have no gradient
    """
    if not (gloss.shape == p.shape == y.shape):
        raise ValueError(f"bce bwd: gloss {gloss.shape}, p {p.shape} and y {y.shape} differ")
    p64 = p.astype(np.float64)
    p_hat = np.clip(p64, EPS, 1.0 - EPS)
    inside = (p64 >= EPS) & (p64 <= 1.0 - EPS)  # where the clip's derivative is 1
    d = (p_hat - y.astype(np.float64)) / (p_hat * (1.0 - p_hat))
    gp = np.where(inside, gloss.astype(np.float64) * d, 0.0)
    return gp.astype(p.dtype), None
