"""Input checks shared by the heavy ops: clear errors that name the op and the shapes,
and the normalisation kernels rely on (C-contiguous, one float dtype)."""

from __future__ import annotations

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def floats(op: str, **arrays):
    """Check that the named arrays (None allowed) share one float32/float64 dtype and
    return them C-contiguous, in order."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype not in _FLOATS:
            raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            desc = ", ".join(f"{k} {v.dtype}" for k, v in arrays.items() if v is not None)
            raise TypeError(f"{op}: dtypes differ ({desc}); cast with .astype first")
    out = []
    for a in arrays.values():
        if a is not None and not a.flags.c_contiguous:
            a = a.copy(order="C")
        out.append(a)
    return out


def ndim(op: str, name: str, a, n: int, layout: str) -> None:
    if a.ndim != n:
        raise ValueError(f"{op}: {name} must be {n}-D {layout}, got shape {a.shape}")


def axis(op: str, axis, ndim: int) -> int:
    """``axis`` (negative counts from the end) as 0..ndim-1, or a one-line error: an out of
    range axis never wraps around silently, as NumPy's ``%`` would."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a {ndim}-D input")
    return int(axis) % ndim


def one_dtype(op: str, arrays) -> None:
    """The arrays joined by ``op`` share one dtype (no silent up-casting)."""
    if len({a.dtype for a in arrays}) != 1:
        raise TypeError(f"{op}: dtypes differ ({', '.join(str(a.dtype) for a in arrays)}); "
                        f"cast with .astype first")


def positive(op: str, **ints) -> None:
    for name, v in ints.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{op}: {name} must be a positive integer, got {v!r}")


def labels(op: str, y, m: int, k: int, xp):
    """Integer labels (M,) in [0, K) as C-contiguous int64."""
    if y.dtype.kind not in "iu":
        raise TypeError(f"{op}: integer class labels expected, got dtype {y.dtype}")
    if y.shape != (m,):
        raise ValueError(f"{op}: labels shape {y.shape} does not match {m} rows of logits")
    if m and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(f"{op}: labels must lie in [0, {k}), got range "
                         f"[{int(y.min())}, {int(y.max())}]")
    return xp.ascontiguousarray(xp.asarray(y), dtype=xp.int64)  # host labels move to the GPU
