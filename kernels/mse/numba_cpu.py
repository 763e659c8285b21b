"""mse (squared error), Numba CPU kernels.

Parallel strategy: elementwise over the flattened arrays, read and written contiguously.
Small inputs run a serial loop (the article's losses have 32..256 elements, far below
what a parallel region pays back); from PARALLEL_MIN elements on, a `prange` splits the
range between the threads. Arithmetic in float64.

math: see SPEC (kernels/mse/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["fwd", "bwd", "PARALLEL_MIN"]

#: From this many elements on, the range is split between threads (measured crossover).
PARALLEL_MIN = 1 << 16


@njit(cache=True)
def _fwd_serial(a, b, loss):
    for i in range(a.shape[0]):
        d = np.float64(a[i]) - np.float64(b[i])
        loss[i] = d * d


@njit(cache=True, parallel=True)
def _fwd_parallel(a, b, loss):
    for i in prange(a.shape[0]):
        d = np.float64(a[i]) - np.float64(b[i])
        loss[i] = d * d


@njit(cache=True)
def _bwd_serial(gloss, a, b, ga, gb):
    for i in range(a.shape[0]):
        g = 2.0 * (np.float64(a[i]) - np.float64(b[i])) * np.float64(gloss[i])
        ga[i] = g
        gb[i] = -g


@njit(cache=True, parallel=True)
def _bwd_parallel(gloss, a, b, ga, gb):
    for i in prange(a.shape[0]):
        g = 2.0 * (np.float64(a[i]) - np.float64(b[i])) * np.float64(gloss[i])
        ga[i] = g
        gb[i] = -g


def fwd(a, b):
    """loss = (a − b)², elementwise. a, b (any shape) -> loss."""
    loss = np.empty_like(a)
    args = (a.reshape(-1), b.reshape(-1), loss.reshape(-1))
    if a.size < PARALLEL_MIN:
        _fwd_serial(*args)
    else:
        _fwd_parallel(*args)
    return loss


def bwd(gloss, a, b):
    """ga = 2(a − b)·gloss, gb = −ga. gloss, a, b (any shape) -> (ga, gb)."""
    ga = np.empty_like(a)
    gb = np.empty_like(a)
    args = (gloss.reshape(-1), a.reshape(-1), b.reshape(-1), ga.reshape(-1), gb.reshape(-1))
    if a.size < PARALLEL_MIN:
        _bwd_serial(*args)
    else:
        _bwd_parallel(*args)
    return ga, gb
