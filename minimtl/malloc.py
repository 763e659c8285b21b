"""The allocator setting shared by ``minimtl train`` and the benchmarks (its own module, so
that training never imports the benchmark runner)."""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = ["tune_malloc"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameter numbers
MMAP_THRESHOLD, TRIM_THRESHOLD = 256 * 2**20, 2**30


def tune_malloc(enabled: bool) -> dict[str, Any]:
    """Raise glibc's mmap and trim thresholds (``mallopt``) so that large temporaries are
    reused from the heap instead of being mapped, faulted in and unmapped on every step.

    Applies to the whole process (minimtl and torch alike). Linux/glibc only; elsewhere it
    does nothing and says so.
    """
    if not enabled:
        return {"malloc_tuned": False, "reason": "--no-malloc-tuned"}
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        version = libc.gnu_get_libc_version().decode()
        mmap_ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        trim_ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError) as e:
        return {"malloc_tuned": False, "reason": f"not glibc ({type(e).__name__})"}
    return {"malloc_tuned": mmap_ok and trim_ok, "glibc": version,
            "mmap_threshold": MMAP_THRESHOLD if mmap_ok else None,
            "trim_threshold": TRIM_THRESHOLD if trim_ok else None}
