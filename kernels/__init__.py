"""Hand-written kernels for minimtl's heavy operators, one folder per kernel family.

Each folder holds the family's SPEC (``__init__.py``: shapes, forward formula, backward
derivation, edge cases) and three interchangeable backends with the same signatures:

    reference.py   NumPy, written for clarity: the definition and the test oracle
    numba_cpu.py   ``@njit(cache=True)`` loops for the CPU
    cupy_cuda.py   CUDA C compiled at first use through ``cupy.RawModule``

An operator (``OPS``) exports ``fwd`` and ``bwd``. An optimizer update (``UPDATES``: Adam's)
has no backward; it exports ``update``, which writes the parameter and its optimizer state
in place, the one exception to the rule below (its SPEC says why).
Kernels are pure array functions: arrays in, arrays out, no state, inputs never written.
This package never imports ``minimtl``; ``get`` imports a backend module on first use, so
importing ``kernels`` pulls in neither numba nor cupy.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from types import ModuleType

__all__ = ["OPS", "UPDATES", "FAMILIES", "BACKEND_MODULES", "get", "guard"]

#: Every operator with kernels (``fwd``/``bwd``). Each name is a sub-package of ``kernels``.
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
    "head_losses",
)

#: Optimizer updates with kernels (``update``, in place). Sub-packages too.
UPDATES: tuple[str, ...] = ("adam",)

#: Everything ``get`` serves.
FAMILIES: tuple[str, ...] = OPS + UPDATES

#: Backend name -> module file inside each operator's folder.
BACKEND_MODULES: dict[str, str] = {
    "numpy": "reference",
    "numba": "numba_cpu",
    "cupy": "cupy_cuda",
}

_cache: dict[tuple[str, str], ModuleType] = {}

_serial = threading.RLock()
_NO_LOCK = contextlib.nullcontext()


def guard(backend: str):
    """A context manager around every call of a ``backend`` kernel from the engine.

    Numba's ``workqueue`` layer (minimtl's choice, made in ``minimtl/backend.py``) aborts the
    process when two threads enter parallel regions at once, so under it Numba kernels run
    one thread at a time (two threads training the same process are then correct, and take
    turns inside the kernels). Every other backend and layer: no lock."""
    if backend == "numba" and _workqueue():
        return _serial
    return _NO_LOCK


def _workqueue() -> bool:
    numba = sys.modules.get("numba")     # a Numba kernel ran or is about to: imported
    return numba is not None and numba.config.THREADING_LAYER == "workqueue"


def get(op: str, backend: str) -> ModuleType:
    """Return the kernel module of ``op`` for ``backend`` (with ``fwd`` and ``bwd`` for an
    operator, ``update`` for an optimizer update).

    >>> get("conv1d", "numpy").fwd  # doctest: +ELLIPSIS
    <function fwd at ...>
    """
    key = (op, backend)
    module = _cache.get(key)
    if module is None:
        if op not in FAMILIES:
            raise ValueError(f"kernels.get: unknown operator {op!r}; known: "
                             f"{', '.join(FAMILIES)}")
        if backend not in BACKEND_MODULES:
            raise ValueError(
                f"kernels.get: unknown backend {backend!r}; known: {', '.join(BACKEND_MODULES)}"
            )
        module = importlib.import_module(f"kernels.{op}.{BACKEND_MODULES[backend]}")
        _cache[key] = module
    return module
