"""Adam's update in NumPy: the definition of the bits (math: see SPEC).

``passes`` is the sequence of whole-array operations with one scratch array; it takes the
array module, so the CUDA backend can run the same passes with CuPy on layouts its kernel
does not take. ``update_many`` is ``update`` of each parameter in turn; with a step
``counter`` it first advances the counter and computes c2 and step from it with the
optimizer's host formula (``scalars_of_counter``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["update", "update_many", "passes", "step_scalars", "scalars_of_counter"]


def update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float, step: float) -> None:
    """One Adam step in place on p, m, v (g read), any layout; c2 = √(1 − β2ᵗ),
    step = lr/(1 − β1ᵗ)."""
    passes(np, p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)


def update_many(ps, gs, ms, vs, *, b1: float, b2: float, eps: float, c2: float | None = None,
                step: float | None = None, counter=None, lr: float | None = None) -> None:
    """``update`` of every (p, g, m, v) of the four lists, in order. Give c2 and step, or
    ``counter`` (an int64 array of one element holding the t of the previous step, advanced
    here) and lr."""
    c2, step = step_scalars(b1, b2, c2, step, counter, lr)
    for p, g, m, v in zip(ps, gs, ms, vs):
        update(p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)


def step_scalars(b1: float, b2: float, c2, step, counter, lr) -> tuple[float, float]:
    """(c2, step) of an ``update_many`` call: as given, or from the counter (advanced)."""
    if counter is None:
        if c2 is None or step is None:
            raise TypeError("update_many: give c2 and step, or a step counter and lr")
        return c2, step
    return scalars_of_counter(counter, b1, b2, lr)


def scalars_of_counter(counter, b1: float, b2: float, lr: float) -> tuple[float, float]:
    """Advance ``counter`` (one int64 element, on the host or the device) to t and return
    (c2, step) = (√(1 − β2ᵗ), lr/(1 − β1ᵗ)) computed on the host, as the optimizer does;
    for a device counter, this reads it back (a synchronisation)."""
    if lr is None:
        raise TypeError("update_many: a step counter needs lr")
    t = int(counter[0]) + 1
    counter[0] = t
    return math.sqrt(1 - b2**t), lr / (1 - b1**t)


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

