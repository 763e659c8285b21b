"""bce_with_logits, Numba CPU kernels.

Parallel strategy: elementwise over the flattened arrays, read and written contiguously.
Small inputs run a serial loop (the article's losses have 32..256 elements, far below
what a parallel region pays back); from PARALLEL_MIN elements on, a `prange` splits the
range between the threads. Arithmetic in float64.

math: see SPEC (kernels/bce_with_logits/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]

#: From this many elements on, the range is split between threads (measured crossover).
PARALLEL_MIN = 1 << 14


@njit(cache=True)
def _fwd_one(z, y, loss, i):
    zi = np.float64(z[i])
    yi = np.float64(y[i])
    linear = zi * (1.0 - yi) if zi >= 0.0 else -zi * yi
    loss[i] = linear + np.log1p(np.exp(-abs(zi)))


@njit(cache=True)
def _fwd_serial(z, y, loss):
    for i in range(z.shape[0]):
        _fwd_one(z, y, loss, i)


@njit(cache=True, parallel=True)
def _fwd_parallel(z, y, loss):
    for i in prange(z.shape[0]):
        _fwd_one(z, y, loss, i)


@njit(cache=True)
def _bwd_one(gloss, z, y, gz, i):
    zi = np.float64(z[i])
    yi = np.float64(y[i])
    e = np.exp(-abs(zi))
    r = e / (1.0 + e)  # σ(−|z|)
    diff = (1.0 - yi) - r if zi >= 0.0 else r - yi
    gz[i] = np.float64(gloss[i]) * diff


@njit(cache=True)
def _bwd_serial(gloss, z, y, gz):
    for i in range(z.shape[0]):
        _bwd_one(gloss, z, y, gz, i)


@njit(cache=True, parallel=True)
def _bwd_parallel(gloss, z, y, gz):
    for i in prange(z.shape[0]):
        _bwd_one(gloss, z, y, gz, i)


def fwd(z, y):
    """loss = max(z, 0) − z·y + log1p(exp(−|z|)), elementwise. z, y (any shape) -> loss."""
    loss = np.empty_like(z)
    args = (z.reshape(-1), y.reshape(-1), loss.reshape(-1))
    if z.size < PARALLEL_MIN:
        _fwd_serial(*args)
    else:
        _fwd_parallel(*args)
    return loss


def bwd(gloss, z, y):
    """gz = gloss·(σ(z) − y) with a stable σ. gloss, z, y (any shape) -> (gz, None)."""
    gz = np.empty_like(z)
    args = (gloss.reshape(-1), z.reshape(-1), y.reshape(-1), gz.reshape(-1))
    if z.size < PARALLEL_MIN:
        _bwd_serial(*args)
    else:
        _bwd_parallel(*args)
    return gz, None
