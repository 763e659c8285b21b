"""Adam's update as one Numba loop over the elements of a parameter.

The reference makes eleven passes over each parameter's arrays, one per operation; here
every element goes through the same operations, in the same order and in the same dtype
(the scalars are passed in the arrays' dtype and nothing is fused into an FMA), so the
result is bitwise the reference's, in one pass. ``error_model="numpy"`` lets a division by
zero give inf/NaN as NumPy's does instead of raising: Numba's default checks every divisor,
which kept the loop from vectorising (benchmarks/NOTES.md). Serial: the arrays are small.
Layouts the loop cannot write through a flat view take the reference's passes.
``update_many`` is ``update`` of each parameter in turn (each a call of the compiled loop;
the host has no launches to save). Math: see SPEC.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.adam import reference
from kernels.adam.reference import step_scalars

__all__ = ["update", "update_many"]


@njit(cache=True, error_model="numpy")
def _adam(p, g, m, v, one_m_b1, b1, one_m_b2, b2, c2, eps, step):
    # the operations of the reference, per element, in its order
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * one_m_b1          # m ← β1·m + (1 − β1)·g
        vi = v[i] * b2 + (gi * gi) * one_m_b2   # v ← β2·v + (1 − β2)·g²
        m[i] = mi
        v[i] = vi
        d = np.sqrt(vi) / c2 + eps              # √v̂ + eps, √v̂ = √v / √(1 − β2ᵗ)
        p[i] -= (mi / d) * step                 # lr/(1 − β1ᵗ) · m / (√v̂ + eps)


def update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float, step: float) -> None:
    """One Adam step in place on p, m, v (g read); c2 = √(1 − β2ᵗ), step = lr/(1 − β1ᵗ).
    The scalars are cast to p's dtype first, as NumPy does with Python floats."""
    if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        reference.update(p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)
        return
    t = p.dtype.type
    g = np.ascontiguousarray(g)
    _adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(1 - b1), t(b1),
          t(1 - b2), t(b2), t(c2), t(eps), t(step))


def update_many(ps, gs, ms, vs, *, b1: float, b2: float, eps: float, c2: float | None = None,
                step: float | None = None, counter=None, lr: float | None = None) -> None:
    """``update`` of every (p, g, m, v) of the four lists, in order; c2 and step, or a step
    ``counter`` (advanced here) and lr, as the reference's ``update_many``."""
    c2, step = step_scalars(b1, b2, c2, step, counter, lr)
    for p, g, m, v in zip(ps, gs, ms, vs):
        update(p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)
