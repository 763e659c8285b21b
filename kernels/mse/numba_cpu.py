"""mse (squared error), Numba CPU kernels.

Strategy: one serial loop over the flattened arrays, read and written contiguously. The
losses of the article's network have 32..256 elements, where a parallel region would cost
more than the loop; a loss is one elementwise pass next to the network it trains, so no
`prange` version is kept (it would also double the compile time). Arithmetic in float64.

math: see SPEC (kernels/mse/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _fwd(a, b, loss):
    for i in range(a.shape[0]):
        d = np.float64(a[i]) - np.float64(b[i])
        loss[i] = d * d


@njit(cache=True)
def _bwd(gloss, a, b, ga, gb):
    for i in range(a.shape[0]):
        g = 2.0 * (np.float64(a[i]) - np.float64(b[i])) * np.float64(gloss[i])
        ga[i] = g
        gb[i] = -g


def fwd(a, b):
    """loss = (a − b)², elementwise. a, b (any shape) -> loss."""
    loss = np.empty_like(a)
    _fwd(a.reshape(-1), b.reshape(-1), loss.reshape(-1))
    return loss


def bwd(gloss, a, b):
    """ga = 2(a − b)·gloss, gb = −ga. gloss, a, b (any shape) -> (ga, gb)."""
    ga = np.empty_like(a)
    gb = np.empty_like(a)
    _bwd(gloss.reshape(-1), a.reshape(-1), b.reshape(-1), ga.reshape(-1), gb.reshape(-1))
    return ga, gb
