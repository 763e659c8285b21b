"""bce on probabilities, Numba CPU kernels.

Strategy: one serial loop over the flattened arrays, read and written contiguously. The
losses of the article's network have 32..256 elements, where a parallel region would cost
more than the loop; a loss is one elementwise pass next to the network it trains, so no
`prange` version is kept (it would also double the compile time). Arithmetic in float64.

math: see SPEC (kernels/bce/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fwd", "bwd", "EPS"]

#: Clip bound of the probabilities (Keras's epsilon), applied in float64.
EPS = 1e-7


@njit(cache=True)
def _fwd(p, y, loss):
    for i in range(p.shape[0]):
        p_hat = min(max(np.float64(p[i]), EPS), 1.0 - EPS)
        yi = np.float64(y[i])
        loss[i] = -(yi * np.log(p_hat) + (1.0 - yi) * np.log1p(-p_hat))


@njit(cache=True)
def _bwd(gloss, p, y, gp):
    for i in range(p.shape[0]):
        pi = np.float64(p[i])
        if EPS <= pi <= 1.0 - EPS:  # clip inactive: p̂ = p
            gp[i] = np.float64(gloss[i]) * (pi - np.float64(y[i])) / (pi * (1.0 - pi))
        else:  # clipped: the clip's derivative is 0
            gp[i] = 0.0


def fwd(p, y):
    """loss = −(y·log p̂ + (1 − y)·log(1 − p̂)), p̂ = clip(p, ε, 1 − ε), elementwise.
    p, y (any shape) -> loss."""
    loss = np.empty_like(p)
    _fwd(p.reshape(-1), y.reshape(-1), loss.reshape(-1))
    return loss


def bwd(gloss, p, y):
    """gp = gloss·(p̂ − y)/(p̂(1 − p̂)) where the clip is inactive, else 0.
    gloss, p, y (any shape) -> (gp, None)."""
    gp = np.empty_like(p)
    _bwd(gloss.reshape(-1), p.reshape(-1), y.reshape(-1), gp.reshape(-1))
    return gp, None
