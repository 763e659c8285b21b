"""The Adam update of one parameter as one Numba loop (used by ``minimtl.optim.Adam`` on the
numba backend).

The NumPy form of ``Adam._update`` makes eleven passes over each parameter's arrays, one
per operation; here every element goes through the same operations, in the same order and
in the same dtype (the scalars are passed in the arrays' dtype and nothing is fused into
an FMA), so the result is bitwise the NumPy form's, in one pass. ``error_model="numpy"``
lets a division by zero give inf/NaN as NumPy's does instead of raising: Numba's default
checks every divisor, which kept the loop from vectorising (396 against 102 µs for 161,280
float32 values). Serial: the arrays are small. Timings in benchmarks/NOTES.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["adam_update"]


@njit(cache=True, error_model="numpy")
def _adam(p, g, m, v, one_m_b1, b1, one_m_b2, b2, c2, eps, step):
    # the operations of Adam._update, per element, in its order (see minimtl/optim.py)
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * one_m_b1          # m ← β1·m + (1 − β1)·g
        vi = v[i] * b2 + (gi * gi) * one_m_b2   # v ← β2·v + (1 − β2)·g²
        m[i] = mi
        v[i] = vi
        d = np.sqrt(vi) / c2 + eps              # √v̂ + eps, √v̂ = √v / √(1 − β2ᵗ)
        p[i] -= (mi / d) * step                 # lr/(1 − β1ᵗ) · m / (√v̂ + eps)


def adam_update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float,
                step: float) -> None:
    """In place on the contiguous arrays p, m, v (g read): one Adam step with c2 =
    √(1 − β2ᵗ) and step = lr/(1 − β1ᵗ); the scalars are cast to p's dtype first, as NumPy
    does with Python floats."""
    t = p.dtype.type
    _adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(1 - b1), t(b1),
          t(1 - b2), t(b2), t(c2), t(eps), t(step))
