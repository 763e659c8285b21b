"""soft_cross_entropy (probability targets), NumPy reference: the definition and the test
oracle. Math: see SPEC (kernels/soft_cross_entropy/__init__.py). Computes in float64,
returns the input dtype."""

from __future__ import annotations

import numpy as np

from kernels._rows import max_and_log_sum

__all__ = ["fwd", "bwd"]


def _check(x, p) -> None:
    if x.ndim != 2 or x.shape[1] == 0 or p.shape != x.shape:
        raise ValueError(
            f"soft_cross_entropy: x and p must both have shape (M, K) with K >= 1, "
            f"got x {x.shape} and p {p.shape}"
        )


def fwd(x, p):
    """loss = Σ_k p·(logsumexp(x) − x), per row.

    Parameters
    ----------
    x : (M, K) float32 or float64 array of logits;  p : (M, K) array of targets (p ≥ 0)

    Returns
    -------
    (loss, lse) : two (M,) arrays of x's dtype; lse = logsumexp(x), saved for ``bwd``
    """
    _check(x, p)
    x64 = x.astype(np.float64)
    m, L = max_and_log_sum(x64)  # (M, 1) each
    loss = (p.astype(np.float64) * ((m - x64) + L)).sum(axis=1)
    lse = (m + L)[:, 0]
    return loss.astype(x.dtype), lse.astype(x.dtype)


def bwd(gloss, x, p, lse):
    """gx = gloss·(softmax(x)·Σ_k p − p), gp = gloss·(lse − x).

    Parameters
    ----------
    gloss : (M,) array;  x, p : (M, K) arrays;  lse : (M,) array, the second output of ``fwd``

    Returns
    -------
    (gx, gp) : two (M, K) arrays of x's dtype
    """
    _check(x, p)
    g = gloss.astype(np.float64)[:, None]
    x64 = x.astype(np.float64)
    p64 = p.astype(np.float64)
    lse64 = lse.astype(np.float64)[:, None]
    s = np.exp(x64 - lse64)  # softmax (M, K)
    gx = g * (s * p64.sum(axis=1, keepdims=True) - p64)
    gp = g * (lse64 - x64)
    return gx.astype(x.dtype), gp.astype(x.dtype)
