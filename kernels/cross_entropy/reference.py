"""cross_entropy with integer labels, NumPy reference: the definition and the test oracle.
Math: see SPEC (kernels/cross_entropy/__init__.py). Computes in float64, returns the input
dtype."""

from __future__ import annotations

import numpy as np

from kernels._rows import max_and_log_sum

__all__ = ["fwd", "bwd"]


def _check(x, labels) -> None:
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"cross_entropy: x must have shape (M, K) with K >= 1, got {x.shape}")
    if labels.shape != (x.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: labels must be integers of shape ({x.shape[0]},) for x "
            f"{x.shape}, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= x.shape[1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {x.shape[1]}) for x {x.shape}, "
            f"got values in [{labels.min()}, {labels.max()}]"
        )


def fwd(x, labels):
    """loss = logsumexp(x) − x[label], per row.

    Parameters
    ----------
    x : (M, K) float32 or float64 array of logits;  labels : (M,) int64 array in [0, K)

    Returns
    -------
    (loss, lse) : two (M,) arrays of x's dtype; lse = logsumexp(x), saved for ``bwd``
    """
    _check(x, labels)
    x64 = x.astype(np.float64)
    m, L = max_and_log_sum(x64)  # (M, 1) each
    m, L = m[:, 0], L[:, 0]
    x_label = x64[np.arange(x.shape[0]), labels]  # (M,)
    loss = (m - x_label) + L
    lse = m + L
    return loss.astype(x.dtype), lse.astype(x.dtype)


def bwd(gloss, x, labels, lse):
    """gx = gloss·(softmax(x) − onehot(labels)).

    Parameters
    ----------
    gloss : (M,) array;  x : (M, K) array;  labels : (M,) int64 array;
    lse : (M,) array, the second output of ``fwd``

    Returns
    -------
    (gx, None) : gx (M, K) of x's dtype; labels have no gradient
    """
    _check(x, labels)
    rows = np.arange(x.shape[0])
    s = np.exp(x.astype(np.float64) - lse.astype(np.float64)[:, None])  # softmax (M, K)
    s[rows, labels] = 0.0
    s[rows, labels] = -s.sum(axis=1)  # s[y] − 1 = −Σ_{k≠y} s[k]
    gx = gloss.astype(np.float64)[:, None] * s
    return gx.astype(x.dtype), None
