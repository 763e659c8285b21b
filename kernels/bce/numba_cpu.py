"""bce on probabilities, Numba CPU kernels.

Parallel strategy: elementwise over the flattened arrays, read and written contiguously.
Small inputs run a serial loop (the article's losses have 32..256 elements, far below
what a parallel region pays back); from PARALLEL_MIN elements on, a `prange` splits the
range between the threads. Arithmetic in float64.

math: see SPEC (kernels/bce/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN", "EPS"]

#: From this many elements on, the range is split between threads (measured crossover).
PARALLEL_MIN = 1 << 14

#: Clip bound of the probabilities (Keras's epsilon), applied in float64.
EPS = 1e-7


@njit(cache=True)
def _fwd_one(p, y, loss, i):
    p_hat = min(max(np.float64(p[i]), EPS), 1.0 - EPS)
    yi = np.float64(y[i])
    loss[i] = -(yi * np.log(p_hat) + (1.0 - yi) * np.log1p(-p_hat))


@njit(cache=True)
def _fwd_serial(p, y, loss):
    for i in range(p.shape[0]):
        _fwd_one(p, y, loss, i)


@njit(cache=True, parallel=True)
def _fwd_parallel(p, y, loss):
    for i in prange(p.shape[0]):
        _fwd_one(p, y, loss, i)


@njit(cache=True)
def _bwd_one(gloss, p, y, gp, i):
    pi = np.float64(p[i])
    if EPS <= pi <= 1.0 - EPS:  # clip inactive: p̂ = p
        gp[i] = np.float64(gloss[i]) * (pi - np.float64(y[i])) / (pi * (1.0 - pi))
    else:
        gp[i] = 0.0


@njit(cache=True)
def _bwd_serial(gloss, p, y, gp):
    for i in range(p.shape[0]):
        _bwd_one(gloss, p, y, gp, i)


@njit(cache=True, parallel=True)
def _bwd_parallel(gloss, p, y, gp):
    for i in prange(p.shape[0]):
        _bwd_one(gloss, p, y, gp, i)


def fwd(p, y):
    """loss = −(y·log p̂ + (1 − y)·log(1 − p̂)), p̂ = clip(p, ε, 1 − ε), elementwise.
    p, y (any shape) -> loss."""
    loss = np.empty_like(p)
    args = (p.reshape(-1), y.reshape(-1), loss.reshape(-1))
    if p.size < PARALLEL_MIN:
        _fwd_serial(*args)
    else:
        _fwd_parallel(*args)
    return loss


def bwd(gloss, p, y):
    """gp = gloss·(p̂ − y)/(p̂(1 − p̂)) where the clip is inactive, else 0.
    gloss, p, y (any shape) -> (gp, None)."""
    gp = np.empty_like(p)
    args = (gloss.reshape(-1), p.reshape(-1), y.reshape(-1), gp.reshape(-1))
    if p.size < PARALLEL_MIN:
        _bwd_serial(*args)
    else:
        _bwd_parallel(*args)
    return gp, None
