"""Backends: which array module a tensor lives in and which kernels its heavy ops run.

=========  ============  ==============================================
name       arrays        heavy operators (conv, pool, RNNs, softmax...)
=========  ============  ==============================================
``numpy``  NumPy         ``kernels/<op>/reference.py`` (the definition)
``numba``  NumPy         ``kernels/<op>/numba_cpu.py`` (compiled loops)
``cupy``   CuPy (GPU)    ``kernels/<op>/cupy_cuda.py`` (CUDA C)
=========  ============  ==============================================

The default backend is ``numba`` when numba is installed, else ``numpy``; change it with
``set_default_backend`` or, for a block, ``with use_backend("cupy"): ...``. Nothing here
imports numba or cupy until a backend is actually used.

Numba's threading layer is chosen here too (``configure_numba``), before minimtl's first
Numba kernel loads (``kernel_module``). How many threads the CPU kernels use is
``set_num_threads`` (minimtl/threads.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from types import ModuleType

import numpy as np

import kernels

__all__ = ["BACKENDS", "available", "available_backends", "check_backend", "xp_of",
           "address", "kernel_module", "default_backend", "set_default_backend", "use_backend",
           "configure_numba", "set_num_threads"]

BACKENDS: tuple[str, ...] = ("numpy", "numba", "cupy")

_available: dict[str, bool] = {"numpy": True}
_default: str | None = None
_numba_configured = False


def available(name: str) -> bool:
    """Whether backend ``name`` can run here (imports numba/cupy on the first call)."""
    if name not in _available:
        if name == "numba":
            _available[name] = importlib.util.find_spec("numba") is not None
        elif name == "cupy":
            try:
                import cupy

                _available[name] = bool(cupy.is_available())
            except Exception:  # no cupy, no driver, no device: all mean "not here"
                _available[name] = False
        else:
            check_backend(name)
    return _available[name]


def available_backends() -> list[str]:
    """The backends that can run on this machine, in ``BACKENDS`` order."""
    return [b for b in BACKENDS if available(b)]


def check_backend(name: str) -> str:
    """Return ``name`` if it is a known, available backend; raise a clear error otherwise."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if not available(name):
        need = "numba (pip install numba)" if name == "numba" else "cupy and a CUDA GPU"
        raise RuntimeError(f"backend {name!r} is not available on this machine: it needs {need}")
    return name


def xp_of(name: str) -> ModuleType:
    """The array module of a backend: NumPy for ``numpy``/``numba``, CuPy for ``cupy``."""
    if name == "cupy":
        import cupy

        return cupy
    return np


def address(a) -> int:
    """The device or host address of array ``a``'s first element (NumPy or CuPy)."""
    return a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else a.data.ptr


def kernel_module(op: str, backend: str) -> ModuleType:
    """``kernels.get(op, backend)``; minimtl loads every kernel through here, so Numba's
    threading layer is chosen before its first Numba kernel."""
    if backend == "numba":
        configure_numba()
    return kernels.get(op, backend)


def default_backend() -> str:
    """The backend new tensors get when none is named."""
    global _default
    if _default is None:
        _default = "numba" if available("numba") else "numpy"
    return _default


def set_default_backend(name: str) -> None:
    """Set the backend new tensors get when none is named."""
    global _default
    _default = check_backend(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Within the block, new tensors default to backend ``name``."""
    global _default
    previous = default_backend()
    _default = check_backend(name)
    try:
        yield name
    finally:
        _default = previous


def configure_numba() -> None:
    """Pick Numba's ``workqueue`` threading layer unless the user chose one.

    The default (OpenMP) layer spins its idle threads, and so does OpenBLAS, which the
    conv and RNN kernels call between ``prange`` loops: on a 2-core machine the two pools
    then fight for the cores and the article's training step went from 10 ms to 88 ms
    (benchmarks/NOTES.md). ``workqueue`` threads sleep when idle. Set the environment
    variable ``NUMBA_THREADING_LAYER`` to override; this runs once, before minimtl's first
    Numba kernel loads, so it never changes a layer that is already running. (Under
    ``workqueue`` the engine runs Numba kernels one thread at a time: ``kernels.guard``.)
    """
    global _numba_configured
    if not _numba_configured:
        _numba_configured = True
        if "NUMBA_THREADING_LAYER" not in os.environ:
            import numba

            numba.config.THREADING_LAYER = "workqueue"


from .threads import set_num_threads  # noqa: E402  (its home; imported from here too)
