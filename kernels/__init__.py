"""Hand-written kernels for minimtl's heavy operators, one folder per operator.

Each folder holds the operator's SPEC (``__init__.py``: shapes, forward formula, backward
derivation, edge cases) and three interchangeable backends with the same ``fwd`` / ``bwd``
signatures:

    reference.py   NumPy, written for clarity: the definition and the test oracle
    numba_cpu.py   ``@njit(cache=True)`` loops for the CPU
    cupy_cuda.py   CUDA C compiled at first use through ``cupy.RawModule``

Kernels are pure array functions: arrays in, arrays out, no state, inputs never written.
Besides the operators, ``optim_numba.py`` and ``optim_cuda.py`` hold the optimizer's fused
Adam update (in place on the parameter and its moments, by design).
This package never imports ``minimtl``; ``get`` imports a backend module on first use, so
importing ``kernels`` pulls in neither numba nor cupy.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from types import ModuleType

__all__ = ["OPS", "BACKEND_MODULES", "get", "configure_numba"]

#: Every operator with kernels. Each name is a sub-package of ``kernels``.
OPS: tuple[str, ...] = (
    "conv1d",
    "conv1d_relu",
    "conv1d_relu_maxpool",
    "maxpool1d",
    "avgpool1d",
    "rnn",
    "lstm",
    "gru",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "soft_cross_entropy",
    "bce_with_logits",
    "bce",
    "mse",
)

#: Backend name -> module file inside each operator's folder.
BACKEND_MODULES: dict[str, str] = {
    "numpy": "reference",
    "numba": "numba_cpu",
    "cupy": "cupy_cuda",
}

_cache: dict[tuple[str, str], ModuleType] = {}
_numba_configured = False


def configure_numba() -> None:
    """Pick Numba's ``workqueue`` threading layer unless the user chose one.

    The default (OpenMP) layer spins its idle threads, and so does OpenBLAS, which the
    conv and RNN kernels call between ``prange`` loops: on a 2-core machine the two pools
    then fight for the cores and the article's training step went from 10 ms to 88 ms
    (benchmarks/NOTES.md). ``workqueue`` threads sleep when idle. Set the environment
    variable ``NUMBA_THREADING_LAYER`` to override; this runs once, before the first Numba
    kernel is imported, so it never changes a layer that is already running.
    """
    global _numba_configured
    if not _numba_configured:
        _numba_configured = True
        if "NUMBA_THREADING_LAYER" not in os.environ:
            import numba

            numba.config.THREADING_LAYER = "workqueue"


_serial = threading.RLock()
_NO_LOCK = contextlib.nullcontext()


def guard(backend: str):
    """A context manager around every call of a ``backend`` kernel from the engine.

    Numba's ``workqueue`` layer (``configure_numba``) aborts the process when two threads
    enter parallel regions at once, so under it Numba kernels run one thread at a time
    (two threads training the same process are then correct, and take turns inside the
    kernels). Every other backend and layer: no lock."""
    if backend == "numba" and _workqueue():
        return _serial
    return _NO_LOCK


def _workqueue() -> bool:
    numba = sys.modules.get("numba")     # a Numba kernel ran or is about to: imported
    return numba is not None and numba.config.THREADING_LAYER == "workqueue"


def get(op: str, backend: str) -> ModuleType:
    """Return the kernel module (with ``fwd`` and ``bwd``) of ``op`` for ``backend``.

    >>> get("conv1d", "numpy").fwd  # doctest: +ELLIPSIS
    <function fwd at ...>
    """
    key = (op, backend)
    module = _cache.get(key)
    if module is None:
        if op not in OPS:
            raise ValueError(f"kernels.get: unknown operator {op!r}; known: {', '.join(OPS)}")
        if backend not in BACKEND_MODULES:
            raise ValueError(
                f"kernels.get: unknown backend {backend!r}; known: {', '.join(BACKEND_MODULES)}"
            )
        if backend == "numba":
            configure_numba()
        module = importlib.import_module(f"kernels.{op}.{BACKEND_MODULES[backend]}")
        _cache[key] = module
    return module
