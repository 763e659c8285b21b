"""mse (squared error), NumPy reference: the definition and the test oracle. Math: see
SPEC (kernels/mse/__init__.py). Computes in float64, returns the input dtype."""

from __future__ import annotations

import numpy as np

__all__ = ["fwd", "bwd"]


def fwd(a, b):
    """loss = (a − b)², elementwise.

    Parameters
    ----------
    a, b : arrays of one shape, float32 or float64

    Returns
    -------
    loss : array of a's shape and dtype
    """
    if a.shape != b.shape:
        raise ValueError(f"mse: a {a.shape} and b {b.shape} differ")
    d = a.astype(np.float64) - b.astype(np.float64)
    return (d * d).astype(a.dtype)


def bwd(gloss, a, b):
    """ga = 2(a − b)·gloss, gb = −ga.

    Parameters
    ----------
    gloss, a, b : arrays of one shape

    Returns
    -------
    (ga, gb) : two arrays of a's shape and dtype
    """
    if not (gloss.shape == a.shape == b.shape):
        raise ValueError(f"mse bwd: gloss {gloss.shape}, a {a.shape} and b {b.shape} differ")
    d = a.astype(np.float64) - b.astype(np.float64)
    ga = 2.0 * d * gloss.astype(np.float64)
    return ga.astype(a.dtype), (-ga).astype(a.dtype)
