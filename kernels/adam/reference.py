"""Adam's update in NumPy: the definition of the bits (math: see SPEC).

``passes`` is the sequence of whole-array operations with one scratch array; it takes the
array module, so the CUDA backend can run the same passes with CuPy on layouts its kernel
does not take.
"""

from __future__ import annotations

import numpy as np

__all__ = ["update", "passes"]


def update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float, step: float) -> None:
    """One Adam step in place on p, m, v (g read), any layout; c2 = √(1 − β2ᵗ),
    step = lr/(1 − β1ᵗ)."""
    passes(np, p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)


def passes(xp, p, g, m, v, *, b1: float, b2: float, c2: float, eps: float,
           step: float) -> None:
    """``update`` with the array module ``xp`` (numpy or cupy)."""
    tmp = xp.multiply(g, 1 - b1)            # the one scratch array of this update
    m *= b1
    m += tmp                                # m ← β1·m + (1 − β1)·g
    xp.multiply(g, g, out=tmp)
    tmp *= 1 - b2
    v *= b2
    v += tmp                                # v ← β2·v + (1 − β2)·g²
    xp.sqrt(v, out=tmp)
    tmp /= c2
    tmp += eps                              # √v̂ + eps
    xp.divide(m, tmp, out=tmp)
    tmp *= step                             # lr·m̂ / (√v̂ + eps)
    p -= tmp
