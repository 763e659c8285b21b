"""Counting kernel launches: how many kernels a piece of code puts on the GPU, per kernel
name and per op.

    from kernels import launches

    with launches.count() as c:
        step()                              # anything on the cupy backend
    c.total, c.by_kernel, c.by_op           # 57, {"conv1d_fwd": 6, "cupy.add": 9, ...}, ...

    with launches.count() as c, launches.tag("forward"):
        ...                                 # launches inside are also counted under "forward"

What is counted, and where:
- **our CUDA kernels**: every launch of a ``RawKernel`` of a ``kernels/<op>/cupy_cuda.py``
  goes through ``kernels._cuda.launch_grid`` (``launch``, ``_rows_cuda.launch_rows``,
  ``_recurrent_cuda.launch_recurrence`` and the conv and GRU wrappers call it), which records
  the kernel's name (``conv1d_fwd``): exact, on a GPU and on the host emulator alike;
- **cupy's own kernels** (element-wise ops, reductions, copies, fills, cuBLAS products) are
  recorded by whoever stands between the code and cupy, as ``cupy.<name>``: on the host
  emulator, its device arrays (every ufunc call, reduction, copy and transfer, as cupy would
  launch it; tests/cuda_host_launches.py); on a GPU, ``CountingXp``, a proxy for the cupy
  module that sees the module's functions only (its docstring says what it cannot see).
  Neither sees the kernels inside a library call beyond the first (cuBLAS may split a
  product in two); CUPTI or a profiler would.

Counts nest: a launch inside two open counts adds to both. ``tag`` names the op the
launches belong to; nested tags keep the innermost. Process-wide and without a lock: a
launch from any thread is counted while a count is open, and the tag is the process's.

When no count is open, a launch costs one check of ``current`` against None (after the call
into ``launch_grid``); nothing else runs.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator

__all__ = ["Count", "count", "tag", "current", "record", "kernel_name", "CountingXp",
           "UNTAGGED"]

#: The op of launches made outside every ``tag``.
UNTAGGED = "untagged"


class Count:
    """The launches seen while it was open: ``total``; ``by_kernel`` (kernel name -> launches);
    ``by_op`` (op tag -> launches); ``by_op_kernel`` ((op, kernel) -> launches)."""

    def __init__(self, outer: Count | None = None) -> None:
        self.total = 0
        self.by_kernel: Counter[str] = Counter()
        self.by_op: Counter[str] = Counter()
        self.by_op_kernel: Counter[tuple[str, str]] = Counter()
        self._outer = outer

    def add(self, kernel: str, n: int = 1) -> None:
        """Record ``n`` launches of ``kernel`` under the current tag (here and in the
        counts this one is nested in)."""
        op = _op if _op is not None else UNTAGGED
        c: Count | None = self
        while c is not None:
            c.total += n
            c.by_kernel[kernel] += n
            c.by_op[op] += n
            c.by_op_kernel[op, kernel] += n
            c = c._outer

    def as_dict(self) -> dict:
        """The counts as plain JSON-ready dicts (op -> kernel -> launches for ``by_op_kernel``)."""
        nested: dict[str, dict[str, int]] = {}
        for (op, kernel), n in sorted(self.by_op_kernel.items()):
            nested.setdefault(op, {})[kernel] = n
        return {"total": self.total, "by_kernel": dict(sorted(self.by_kernel.items())),
                "by_op": dict(sorted(self.by_op.items())), "by_op_kernel": nested}

    def __repr__(self) -> str:
        return f"Count(total={self.total}, kernels={len(self.by_kernel)})"


#: The innermost open count, or None (then nothing is recorded).
current: Count | None = None
_op: str | None = None


@contextlib.contextmanager
def count() -> Iterator[Count]:
    """Open a count for the block; yields the ``Count``, which keeps its numbers after."""
    global current
    outer = current
    c = Count(outer)
    current = c
    try:
        yield c
    finally:
        current = outer


@contextlib.contextmanager
def tag(op: str) -> Iterator[None]:
    """Within the block, launches are counted under ``op`` (``by_op``)."""
    global _op
    outer = _op
    _op = op
    try:
        yield
    finally:
        _op = outer


def record(kernel: str, n: int = 1) -> None:
    """Count ``n`` launches of ``kernel`` if a count is open (for launchers other than
    ``launch_grid``: the host emulator's arrays, ``CountingXp``)."""
    if current is not None:
        current.add(kernel, n)


_MANGLED = re.compile(r"_Z(\d+)")


def kernel_name(fn) -> str:
    """The plain name of a compiled kernel: cupy's ``RawKernel.name`` is the lowered
    (mangled) name of a template instance, ``_Z10conv1d_fwdIfEv...`` -> ``conv1d_fwd``; a
    name written as ``conv1d_fwd<float>`` loses its template arguments."""
    name = getattr(fn, "name", None)
    if not isinstance(name, str):
        return type(fn).__name__
    m = _MANGLED.match(name)
    if m:
        return name[m.end():m.end() + int(m.group(1))]
    return name.split("<", 1)[0]


#: cupy functions that launch nothing: they make views, read metadata or allocate only.
_NO_LAUNCH = frozenset({
    "empty", "empty_like", "reshape", "transpose", "swapaxes", "moveaxis", "expand_dims",
    "squeeze", "broadcast_to", "broadcast_arrays", "atleast_1d", "atleast_2d", "shape",
    "ndim", "size", "result_type", "dtype", "can_cast", "get_array_module", "split",
    "array_split",
})
#: cupy functions whose launch count depends on their arguments: 0 for an input already
#: on the device with the right layout and dtype, 1 otherwise (a copy kernel, or a
#: host-to-device transfer for host data).
_MAYBE_COPY = frozenset({"asarray", "ascontiguousarray"})


class CountingXp:
    """The cupy module, with each call of one of its functions counted as one launch
    (``cupy.<name>``), for counting on a GPU without CUPTI.

    What it sees: calls through the module, ``xp.maximum(a, 0)``, ``xp.exp(a)``,
    ``xp.zeros(...)`` (a memset), ``xp.concatenate(...)``, ``xp.asarray(host)`` (a
    host-to-device copy). ``asarray``/``ascontiguousarray`` of a device array that needs no
    conversion, and views and allocations (``empty``, ``reshape``, ``transpose``) count 0.

    What it does not see: array operators and methods (``a + b``, ``a * 2``, ``a.sum()``,
    ``a.astype(...)``, ``a[idx]``, ``a[...] = b``), which cupy dispatches in compiled code
    without passing through the module, and the kernels a function launches beyond its first
    (``concatenate`` of many arrays, cuBLAS's split-K products). So on a GPU the count of
    cupy's kernels is a lower bound; the host emulator's count sees operators and methods
    too (tests/cuda_host.py), and our own kernels are counted exactly on both."""

    def __init__(self, module) -> None:
        self._module = module
        self._wrapped: dict[str, object] = {}

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if not callable(value) or isinstance(value, type) or name in _NO_LAUNCH:
            return value
        fn = self._wrapped.get(name)
        if fn is None:
            fn = self._wrap(name, value)
            self._wrapped[name] = fn
        return fn

    def _wrap(self, name: str, value):
        ndarray = getattr(self._module, "ndarray", ())

        def counted(*args, **kwargs):
            if current is not None:
                if name not in _MAYBE_COPY:
                    current.add(f"cupy.{name}")
                elif _needs_copy(name, args, kwargs, ndarray):
                    current.add(f"cupy.{name}")
            return value(*args, **kwargs)

        counted.__name__ = counted.__qualname__ = name
        return counted


def _needs_copy(name: str, args, kwargs, ndarray) -> bool:
    """Whether ``asarray``/``ascontiguousarray``(a, dtype) copies: a is not a device array,
    or its dtype must change, or (``ascontiguousarray``) its layout."""
    a = args[0] if args else kwargs.get("a")
    if not isinstance(a, ndarray):
        return True
    dtype = args[1] if len(args) > 1 else kwargs.get("dtype")
    if dtype is not None and a.dtype != dtype:
        return True
    return name == "ascontiguousarray" and not a.flags.c_contiguous
