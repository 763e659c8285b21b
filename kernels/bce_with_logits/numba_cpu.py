"""bce_with_logits, Numba CPU kernels.

Strategy: one serial loop over the flattened arrays, read and written contiguously. The
losses of the article's network have 32..256 elements, where a parallel region would cost
more than the loop; a loss is one elementwise pass next to the network it trains, so no
`prange` version is kept (it would also double the compile time). Arithmetic in float64.

math: see SPEC (kernels/bce_with_logits/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _fwd(z, y, loss):
    for i in range(z.shape[0]):
        zi = np.float64(z[i])
        yi = np.float64(y[i])
        linear = zi * (1.0 - yi) if zi >= 0.0 else -zi * yi  # max(z, 0) − z·y, ≥ 0
        loss[i] = linear + np.log1p(np.exp(-abs(zi)))


@njit(cache=True)
def _bwd(gloss, z, y, gz):
    for i in range(z.shape[0]):
        zi = np.float64(z[i])
        yi = np.float64(y[i])
        e = np.exp(-abs(zi))
        r = e / (1.0 + e)  # σ(−|z|)
        diff = (1.0 - yi) - r if zi >= 0.0 else r - yi  # σ(z) − y
        gz[i] = np.float64(gloss[i]) * diff


def fwd(z, y):
    """loss = max(z, 0) − z·y + log1p(exp(−|z|)), elementwise. z, y (any shape) -> loss."""
    loss = np.empty_like(z)
    _fwd(z.reshape(-1), y.reshape(-1), loss.reshape(-1))
    return loss


def bwd(gloss, z, y):
    """gz = gloss·(σ(z) − y) with a stable σ. gloss, z, y (any shape) -> (gz, None)."""
    gz = np.empty_like(z)
    _bwd(gloss.reshape(-1), z.reshape(-1), y.reshape(-1), gz.reshape(-1))
    return gz, None
