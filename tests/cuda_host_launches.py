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
from tests import cuda_host_graphs as graphs
from tests.cuda_host import poison

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


def _new(result, run):
    """``result`` was just computed by ``run()``: during a capture (tests/cuda_host_graphs.py)
    its memory is the capture's and the graph computes it again into the same memory."""
    if graphs.capturing is not None and not _quiet and isinstance(result, np.generic):
        result = np.asarray(result)            # a full reduction: a 0-d device array
    if graphs.capturing is not None and not _quiet and isinstance(result, np.ndarray):
        graphs.note_fresh(result)
        target = _host(result)
        graphs.record(lambda: np.copyto(target, run(), casting="unsafe"))
    return result


def _write(run, *targets) -> None:
    """An operation that writes ``targets`` in place: run it (during a capture, only if it
    writes nothing that existed before the capture) and, while capturing, record it."""
    if graphs.capturing is None or _quiet:
        run()
        return
    if not graphs.writes_old_memory(*targets):
        run()
    graphs.record(run)


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
#: functions that write their first argument in place (and return None)
_WRITES = frozenset({"copyto", "put_along_axis"})


class DeviceArray(np.ndarray):
    """A NumPy array that stands for a cupy array: each operation on it counts the launches
    cupy would make (see the module docstring), then runs as NumPy's."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        args = tuple(_host(a) for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(_host(o) for o in out)

        def run():
            return getattr(ufunc, method)(*args, **kwargs)

        _record(_ufunc_name(ufunc, method))
        if method == "at" or out is not None:
            _write(run, *(kwargs["out"] if out is not None else args[:1]))
            if method == "at":
                return None
            return out[0] if len(out) == 1 else out
        return _device(_new(run(), run))

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        cost = _FUNCTIONS.get(name)
        if cost is None:
            return _device(super().__array_function__(func, types, args, kwargs))
        def run():
            with _inside():
                return super(DeviceArray, self).__array_function__(func, types, args, kwargs)

        if name in _WRITES:
            _record(f"cupy.{name}")
            _write(run, args[0])
            return None
        result = run()
        if name == "empty_like":
            poison(result)
        n = cost(args, kwargs, result) if callable(cost) else cost
        _record(f"cupy.{name}" + (" (memset)" if name in _MEMSET else ""), n)
        if n:
            result = _new(result, run)
        elif isinstance(result, np.ndarray) and not _shares(result, args[:1]):
            graphs.note_fresh(result)                  # empty_like: new memory, no kernel
        return _device(result)

    # --- methods that NumPy runs without a ufunc ----------------------------------------
    def _counted(self, name: str, method, *args, n: int = 1, **kwargs):
        def run():
            with _inside():
                return method(*args, **kwargs)

        result = run()
        _record(f"cupy.{name}", n)
        return _device(_new(result, run))

    def astype(self, dtype, *args, **kwargs):
        def run():
            return np.ndarray.astype(self, dtype, *args, **kwargs)

        result = run()
        if result is not self:
            _record("cupy.astype")
            _new(result, run)
        return _device(result)

    def copy(self, order="C"):
        return self._counted("copy", super().copy, order)

    def fill(self, value):
        target = _host(self)
        _write(lambda: target.fill(value), target)
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

    def _maybe_copy(self, name: str, method, *args):
        """reshape, ravel, indexing: a view (nothing launched) or, if NumPy had to copy, one
        kernel."""
        def run():
            with _inside():
                return method(*args)

        result = run()
        if isinstance(result, np.ndarray):
            copied = not np.may_share_memory(result, self)
            _record(f"cupy.{name}", int(copied))
            if copied:
                _new(result, run)
        return _device(result)

    def reshape(self, *shape, **kwargs):
        return self._maybe_copy("copy", lambda: np.ndarray.reshape(self, *shape, **kwargs))

    def ravel(self, order="C"):
        return self._maybe_copy("copy", lambda: np.ndarray.ravel(self, order))

    def __getitem__(self, key):
        return self._maybe_copy("getitem", lambda: np.ndarray.__getitem__(self, key))

    def __setitem__(self, key, value):
        target, source = _host(self), _host(value)
        _write(lambda: np.ndarray.__setitem__(target, key, source), target)
        _record("cupy.setitem")

    # --- reading values on the host: a device-to-host copy, which synchronises ----------
    def item(self, *args):
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
        return self.view(np.ndarray).tolist()

    def __float__(self):
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
        return float(self.view(np.ndarray))

    def __int__(self):
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
        return int(self.view(np.ndarray))

    def __bool__(self):
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
        return bool(self.view(np.ndarray))

    def set(self, host, stream=None):
        """cupy's copy from the host into this array."""
        _record("cupy.h2d")
        graphs.refuse("a host-to-device copy")
        self.view(np.ndarray)[...] = host

    def get(self):
        """cupy's copy to the host."""
        _record("cupy.d2h")
        graphs.refuse("a device-to-host read")
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

    def _upload(self, a, dtype, convert):
        _record("cupy.h2d")
        graphs.refuse("a host-to-device copy")
        return convert(a, dtype=dtype).view(DeviceArray)

    def asarray(self, a, dtype=None, **kwargs):
        if _is_host(a):
            return self._upload(a, dtype, np.array)
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)

    def array(self, a, dtype=None, copy=True, **kwargs):
        if _is_host(a):
            return self._upload(a, dtype, np.array)
        if not copy and (dtype is None or a.dtype == np.dtype(dtype)):
            return a
        return a.astype(dtype if dtype is not None else a.dtype)

    def ascontiguousarray(self, a, dtype=None, **kwargs):
        if _is_host(a):
            return self._upload(a, dtype, np.ascontiguousarray)
        if dtype is not None and a.dtype != np.dtype(dtype):
            _record("cupy.astype")
        elif a.flags.c_contiguous:
            return a
        else:
            _record("cupy.copy")

        def run():
            return np.ascontiguousarray(a.view(np.ndarray), dtype=dtype)

        return _new(run(), run).view(DeviceArray)

    def _made(self, kernel: str | None, run):
        if kernel is not None:
            _record(kernel)
        result = run()
        if kernel is None:
            graphs.note_fresh(result)
        else:
            _new(result, run)
        return result.view(DeviceArray)

    def empty(self, shape, dtype=float, **kwargs):
        return self._made(None, lambda: poison(np.empty(shape, dtype, **kwargs)))

    def zeros(self, shape, dtype=float, **kwargs):
        return self._made("cupy.zeros (memset)", lambda: np.zeros(shape, dtype, **kwargs))

    def ones(self, shape, dtype=float, **kwargs):
        return self._made("cupy.fill", lambda: np.ones(shape, dtype, **kwargs))

    def full(self, shape, fill_value, dtype=None, **kwargs):
        return self._made("cupy.fill", lambda: np.full(shape, fill_value, dtype, **kwargs))

    def arange(self, *args, **kwargs):
        return self._made("cupy.arange", lambda: np.arange(*args, **kwargs))
