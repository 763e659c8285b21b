"""Bounds-checked Numba kernels for a test run: ``MINIMTL_NUMBA_BOUNDSCHECK=1``.

Numba compiles array indexing unchecked. Its ``boundscheck=True`` turns an index past an
array's end into an ``IndexError``, but not inside a ``parallel=True`` function's
``prange`` loop: there the error is lost and the function returns whatever the stray
read gave (tests/kernels/test_numba_boundscheck.py shows both). So this check compiles
every kernel serially: ``checked_njit`` stands in for ``numba.njit`` with
``parallel=False`` (a ``prange`` is then a plain ``range``), ``boundscheck=True`` and no
on-disk cache (the checked machine code must not be mistaken for the fast one).

With the variable set, tests/conftest.py installs it as ``numba.njit`` before any kernel
module is imported, so every ``@njit`` kernel of the test run is checked:

    bash tests/numba_boundscheck.sh [pytest arguments]

What it cannot see: a negative index (Numba, like NumPy, counts it from the end, so an
index of -1 computed by mistake reads the last element without an error), and a race
between prange iterations (they run one after another here).
"""

from __future__ import annotations

import os

ENV = "MINIMTL_NUMBA_BOUNDSCHECK"


def checked_njit(njit):
    """``njit`` (numba's) wrapped: every function it compiles is serial and bounds-checked."""

    def wrapper(*args, **kwargs):       # @njit, @njit(...) and njit(signature, ...) alike
        return njit(*args, **dict(kwargs, parallel=False, boundscheck=True, cache=False))

    wrapper.checked, wrapper.original = True, njit
    return wrapper


def install() -> bool:
    """Replace ``numba.njit`` by its checked form if ``MINIMTL_NUMBA_BOUNDSCHECK=1``;
    whether it did. Must run before the kernel modules are imported."""
    if os.environ.get(ENV) != "1":
        return False
    import sys

    import numba

    loaded = sorted(m for m in sys.modules if m.startswith("kernels."))
    if loaded:
        raise RuntimeError(f"{ENV}=1 but kernel modules were imported before the check "
                           f"was installed: {', '.join(loaded[:3])}")
    if not getattr(numba.njit, "checked", False):
        numba.njit = checked_njit(numba.njit)
    return True
