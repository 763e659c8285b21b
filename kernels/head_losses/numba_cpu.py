"""head_losses, Numba CPU kernels.

Strategy: one serial loop over the rows, and in each row over the tasks (the columns of a
row are contiguous, and a row of the article's network is 30 logits); each task's float64
sum grows row by row, so the result does not depend on threads. The losses of a step are a
few hundred logits next to the network they train: a parallel region would cost more than
the loop (see kernels/bce_with_logits/numba_cpu.py). Arithmetic in float64.

math: see SPEC (kernels/head_losses/__init__.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels._rows_numba import row_max_logsum

__all__ = ["fwd", "bwd"]


@njit(cache=True)
def _fwd(x, labels, targets, spec, weights, losses, lse):
    N = x.shape[0]
    T = spec.shape[0]
    sums = np.zeros(T)
    for i in range(N):
        for t in range(T):
            kind, s, K, j = spec[t, 0], spec[t, 1], spec[t, 2], spec[t, 3]
            if kind == 0:
                y = labels[j, i]
                if y < 0 or y >= K:           # an invalid label: NaN, never out of bounds
                    sums[t] += np.nan
                    lse[j, i] = np.nan
                    continue
                m, L = row_max_logsum(x[i:i + 1, s:s + K], 0)
                sums[t] += (m - np.float64(x[i, s + y])) + L
                lse[j, i] = m + L
            else:
                base = N * j + i * K
                for k in range(K):
                    z = np.float64(x[i, s + k])
                    v = np.float64(targets[base + k])
                    if kind == 1:  # max(z, 0) − z·y, ≥ 0, + log1p(e^−|z|)
                        sums[t] += (z * (1.0 - v) if z >= 0.0 else -z * v) + np.log1p(
                            np.exp(-abs(z)))
                    else:
                        sums[t] += (z - v) * (z - v)
    total = 0.0
    for t in range(T):
        count = N if spec[t, 0] == 0 else N * spec[t, 2]
        mean = sums[t] / count if count > 0 else np.nan
        losses[1 + t] = mean
        total += weights[t] * mean
    losses[0] = total


@njit(cache=True)
def _bwd(g, x, labels, targets, spec, weights, lse, gx):
    N = x.shape[0]
    T = spec.shape[0]
    for t in range(T):
        kind, s, K, j = spec[t, 0], spec[t, 1], spec[t, 2], spec[t, 3]
        a = np.float64(g[0]) * weights[t]
        if g.shape[0] > 1:
            a += np.float64(g[1 + t])
        b = a / max(N if kind == 0 else N * K, 1)
        for i in range(N):
            if kind == 0:
                y = labels[j, i]
                if y < 0 or y >= K:
                    for k in range(K):
                        gx[i, s + k] = np.nan
                    continue
                l = np.float64(lse[j, i])
                off_label = 0.0  # Σ_{k≠y} softmax
                for k in range(K):
                    if k != y:
                        e = np.exp(np.float64(x[i, s + k]) - l)
                        gx[i, s + k] = b * e
                        off_label += e
                gx[i, s + y] = -b * off_label
            else:
                base = N * j + i * K
                for k in range(K):
                    z = np.float64(x[i, s + k])
                    v = np.float64(targets[base + k])
                    if kind == 1:
                        e = np.exp(-abs(z))
                        r = e / (1.0 + e)  # σ(−|z|)
                        gx[i, s + k] = b * ((1.0 - v) - r if z >= 0.0 else r - v)
                    else:
                        gx[i, s + k] = b * 2.0 * (z - v)


def _normalised(labels, spec, weights):
    """int64 labels and spec, float64 weights (no copy when they are already), so that each
    kernel compiles for float32 and float64 logits only."""
    return (np.ascontiguousarray(labels, dtype=np.int64),
            np.ascontiguousarray(spec, dtype=np.int64),
            np.ascontiguousarray(weights, dtype=np.float64))


def fwd(x, labels, targets, spec, weights):
    """Every task's mean loss and the weighted total. x (N, W), labels (Tm, N), targets
    (S,), spec (T, 4), weights (T,) -> (losses (T + 1,), lse (Tm, N))."""
    labels, spec, weights = _normalised(labels, spec, weights)
    losses = np.empty(spec.shape[0] + 1, dtype=x.dtype)
    lse = np.empty(labels.shape, dtype=x.dtype)
    _fwd(x, labels, targets, spec, weights, losses, lse)
    return losses, lse


def bwd(g, x, labels, targets, spec, weights, lse):
    """gx (N, W) from g (1,) or (T + 1,) -> (gx, None, None, None, None)."""
    labels, spec, weights = _normalised(labels, spec, weights)
    gx = np.empty_like(x)
    _bwd(g, x, labels, targets, spec, weights, lse, gx)
    return gx, None, None, None, None
