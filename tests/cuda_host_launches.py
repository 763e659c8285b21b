"""cupy's own kernel launches, counted on the host emulator (tests/cuda_host.py).

On the cupy backend, everything that is not one of our kernels (``a + b``, ``xp.exp(a)``,
``a.sum(axis=0)``, ``a.astype(...)``, ``xp.concatenate(...)``, ``a[...] = b``) is a kernel
that cupy compiles and launches. On the host emulator those calls are NumPy calls; here the
emulator's device arrays are ``DeviceArray``, an ndarray subclass that counts each of them
(``kernels.launches.record``) as the launches cupy makes for it, then computes exactly what
NumPy computes (the values are NumPy's, unchanged). The model of cupy:

- an element-wise ufunc call, a ufunc reduction (``a.sum()``, ``xp.max(a, axis=1)``,
  ``mean``), a cuBLAS product (``@``, ``dot``), ``where``, ``clip``, ``take``, fancy
  indexing, ``a[...] = b``, ``fill``, ``copy``, ``astype`` to another dtype, ``argmax``:
  one kernel each;
- ``zeros``/``zeros_like``: one memset; ``ones``/``full`` (and their ``_like``): one fill;
  ``empty``: none;
- ``concatenate``/``stack`` of n ≤ 8 arrays: n copy kernels; of more: one;
- ``asarray``/``ascontiguousarray``: none for a device array that needs no change, one
  copy kernel if its dtype (or, for ``ascontiguousarray``, its layout) changes, and one
  host-to-device copy for host data (``cupy.h2d``);
- reading a value on the host (``item``, ``float``, ``bool``, ``tolist``, ``Tensor.numpy``):
  one device-to-host copy, a synchronisation (``cupy.d2h``);
- views (basic slicing, ``reshape`` of a contiguous array, ``.T``, ``transpose``,
  ``squeeze``, ``broadcast_to``) launch nothing; a ``reshape``/``ravel`` that must copy, one.

A NumPy function not listed counts what it runs inside (its ufunc calls and copies); a
listed one counts its own launches only. A full reduction returns a 0-d ``DeviceArray``, as
cupy returns a 0-d device array.
"""

from __future__ import annotations

import contextlib

import numpy as np

from kernels import launches

__all__ = ["DeviceArray", "CountingFakeCupy", "to_host"]

_quiet = 0      # > 0 inside a counted call: what it runs inside is part of its own count


def _record(name: str, n: int = 1) -> None:
    if launches.current is not None and not _quiet and n:
        launches.current.add(name, n)


@contextlib.contextmanager
def _inside():
    global _quiet
    _quiet += 1
    try:
        yield
    finally:
        _quiet -= 1


def _host(a):
    return a.view(np.ndarray) if isinstance(a, DeviceArray) else a


def _device(result):
    if isinstance(result, DeviceArray):
        return result
    if isinstance(result, np.ndarray):
        return result.view(DeviceArray)
    if isinstance(result, np.generic):
        return np.asarray(result).view(DeviceArray)
    if isinstance(result, tuple):
        return tuple(_device(r) for r in result)
    if isinstance(result, list):
        return [_device(r) for r in result]
    return result


#: names of cupy's reductions for the ufunc reductions NumPy runs
_REDUCTIONS = {"add": "sum", "maximum": "max", "minimum": "min", "multiply": "prod",
               "logical_or": "any", "logical_and": "all", "fmax": "nanmax",
               "fmin": "nanmin"}


def _ufunc_name(ufunc, method: str) -> str:
    if method == "__call__":
        return f"cupy.{ufunc.__name__}"
    if method == "reduce" and ufunc.__name__ in _REDUCTIONS:
        return f"cupy.{_REDUCTIONS[ufunc.__name__]}"
    return f"cupy.{ufunc.__name__}.{method}"


def _shares(result, inputs) -> bool:
    return any(isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs)


def _view_or_copy(args, kwargs, result) -> int:
    """0 when the result is a view of the input, 1 when it had to be copied."""
    return 0 if not isinstance(result, np.ndarray) or _shares(result, args[:1]) else 1


def _concatenate(args, kwargs, result) -> int:
    arrays = args[0] if args else kwargs["arrays"]
    n = len(arrays)
    return n if n <= 8 else 1


#: launches of the NumPy functions with a known cupy cost (a number, or a function of
#: (args, kwargs, result))
_FUNCTIONS = {
    **dict.fromkeys(("sum", "mean", "max", "amax", "min", "amin", "prod", "any", "all",
                     "argmax", "argmin", "count_nonzero", "nansum", "cumsum", "where",
                     "clip", "copy", "copyto", "dot", "tensordot", "einsum", "inner",
                     "outer", "take", "take_along_axis", "put_along_axis", "sort",
                     "argsort", "around", "round", "tile", "repeat", "diff", "ones_like",
                     "full_like", "zeros_like", "flip"), 1),
    **dict.fromkeys(("empty_like", "transpose", "swapaxes", "moveaxis", "expand_dims",
                     "squeeze", "broadcast_to", "broadcast_arrays", "atleast_1d",
                     "atleast_2d", "shape", "ndim", "size", "split", "array_split",
                     "result_type"), 0),
    "reshape": _view_or_copy, "ravel": _view_or_copy,
    "concatenate": _concatenate, "stack": _concatenate, "hstack": _concatenate,
    "vstack": _concatenate,
}
_MEMSET = frozenset({"zeros_like"})


class DeviceArray(np.ndarray):
    """A NumPy array that stands for a cupy array: each operation on it counts the launches
    cupy would make (see the module docstring), then runs as NumPy's."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        args = tuple(_host(a) for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        _record(_ufunc_name(ufunc, method))
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        cost = _FUNCTIONS.get(name)
        if cost is None:
            return _device(super().__array_function__(func, types, args, kwargs))
        with _inside():
            result = super().__array_function__(func, types, args, kwargs)
        n = cost(args, kwargs, result) if callable(cost) else cost
        _record(f"cupy.{name}" + (" (memset)" if name in _MEMSET else ""), n)
        return _device(result)

    # --- methods that NumPy runs without a ufunc ----------------------------------------
    def _counted(self, name: str, method, *args, n: int = 1, **kwargs):
        with _inside():
            result = method(*args, **kwargs)
        _record(f"cupy.{name}", n)
        return _device(result)

    def astype(self, dtype, *args, **kwargs):
        result = super().astype(dtype, *args, **kwargs)
        if result is not self:
            _record("cupy.astype")
        return _device(result)

    def copy(self, order="C"):
        return self._counted("copy", super().copy, order)

    def fill(self, value):
        with _inside():
            super().fill(value)
        _record("cupy.fill")

    def mean(self, *args, **kwargs):
        return self._counted("mean", super().mean, *args, **kwargs)

    def argmax(self, *args, **kwargs):
        return self._counted("argmax", super().argmax, *args, **kwargs)

    def argmin(self, *args, **kwargs):
        return self._counted("argmin", super().argmin, *args, **kwargs)

    def dot(self, *args, **kwargs):
        return self._counted("dot", super().dot, *args, **kwargs)

    def take(self, *args, **kwargs):
        return self._counted("take", super().take, *args, **kwargs)

    def flatten(self, order="C"):
        return self._counted("copy", super().flatten, order)

    def reshape(self, *shape, **kwargs):
        with _inside():
            result = super().reshape(*shape, **kwargs)
        _record("cupy.copy", 0 if np.may_share_memory(result, self) else 1)
        return _device(result)

    def ravel(self, order="C"):
        with _inside():
            result = super().ravel(order)
        _record("cupy.copy", 0 if np.may_share_memory(result, self) else 1)
        return _device(result)

    def __getitem__(self, key):
        with _inside():
            result = super().__getitem__(key)
        if isinstance(result, np.ndarray):
            _record("cupy.getitem", 0 if np.may_share_memory(result, self) else 1)
        return _device(result)

    def __setitem__(self, key, value):
        with _inside():
            super().__setitem__(key, _host(value))
        _record("cupy.setitem")

    # --- reading values on the host: a device-to-host copy, which synchronises ----------
    def item(self, *args):
        _record("cupy.d2h")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _record("cupy.d2h")
        return self.view(np.ndarray).tolist()

    def __float__(self):
        _record("cupy.d2h")
        return float(self.view(np.ndarray))

    def __int__(self):
        _record("cupy.d2h")
        return int(self.view(np.ndarray))

    def __bool__(self):
        _record("cupy.d2h")
        return bool(self.view(np.ndarray))

    def get(self):
        """cupy's copy to the host."""
        _record("cupy.d2h")
        return self.view(np.ndarray).copy()


def to_host(a):
    """``Tensor.numpy`` on the emulator: a host copy of a device array (counted), anything
    else as NumPy sees it."""
    return a.get() if isinstance(a, DeviceArray) else np.asarray(a)


def _is_host(a) -> bool:
    return not isinstance(a, DeviceArray)


class CountingFakeCupy:
    """NumPy under cupy's name, like ``FakeCupy``, that hands out ``DeviceArray``s and counts
    what its creation and conversion functions launch; every other name is NumPy's (a call
    on device arrays is counted by ``DeviceArray``)."""

    def __init__(self, fake) -> None:
        self._fake = fake        # the device queries (``cuda``) come from the FakeCupy

    def __getattr__(self, name):
        return getattr(self._fake, name)

    def asarray(self, a, dtype=None, **kwargs):
        if _is_host(a):
            _record("cupy.h2d")
            return np.array(a, dtype=dtype).view(DeviceArray)
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)

    def array(self, a, dtype=None, copy=True, **kwargs):
        if _is_host(a):
            _record("cupy.h2d")
            return np.array(a, dtype=dtype).view(DeviceArray)
        if not copy and (dtype is None or a.dtype == np.dtype(dtype)):
            return a
        return a.astype(dtype if dtype is not None else a.dtype)

    def ascontiguousarray(self, a, dtype=None, **kwargs):
        if _is_host(a):
            _record("cupy.h2d")
            return np.ascontiguousarray(a, dtype=dtype).view(DeviceArray)
        if dtype is not None and a.dtype != np.dtype(dtype):
            _record("cupy.astype")
            return np.ascontiguousarray(a.view(np.ndarray), dtype=dtype).view(DeviceArray)
        if a.flags.c_contiguous:
            return a
        _record("cupy.copy")
        return np.ascontiguousarray(a.view(np.ndarray)).view(DeviceArray)

    def empty(self, shape, dtype=float, **kwargs):
        return np.empty(shape, dtype, **kwargs).view(DeviceArray)

    def zeros(self, shape, dtype=float, **kwargs):
        _record("cupy.zeros (memset)")
        return np.zeros(shape, dtype, **kwargs).view(DeviceArray)

    def ones(self, shape, dtype=float, **kwargs):
        _record("cupy.fill")
        return np.ones(shape, dtype, **kwargs).view(DeviceArray)

    def full(self, shape, fill_value, dtype=None, **kwargs):
        _record("cupy.fill")
        return np.full(shape, fill_value, dtype, **kwargs).view(DeviceArray)

    def arange(self, *args, **kwargs):
        _record("cupy.arange")
        return np.arange(*args, **kwargs).view(DeviceArray)
