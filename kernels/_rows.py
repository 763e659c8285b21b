"""Row helpers of the softmax family in NumPy (log_softmax, cross_entropy and
soft_cross_entropy's references): the stable row maximum and log-sum-exp.

math: see SPEC (kernels/log_softmax/__init__.py, "Forward": the (m, L) of log1p).
"""

from __future__ import annotations

import numpy as np

__all__ = ["max_and_log_sum"]


def max_and_log_sum(x64):
    """Row maximum m and L = log Σ_k exp(x − m) of float64 rows, both (M, 1), with L
    computed as log1p(Σ_{x<m} exp(x − m) + (ties − 1)) (see SPEC)."""
    m = x64.max(axis=1, keepdims=True)
    below = np.where(x64 < m, np.exp(x64 - m), 0.0).sum(axis=1, keepdims=True)
    ties = (x64 == m).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):     # a NaN row has no ties: log1p(-1), and m is NaN
        return m, np.log1p(below + (ties - 1))
