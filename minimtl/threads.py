"""How many threads the CPU kernels use: ``set_num_threads``.

Three thread pools can run a CPU step: Numba's (``prange`` loops), the BLAS library's under
NumPy's products, and minimtl's own (``kernels._threads.run_chunks``: whole batch chunks
of the channels-last convolutions, each packed, multiplied and post-processed on one
thread, and row or column blocks of the dense layers' products). minimtl gives the cores
to the last: BLAS then runs on one thread under each chunk. A multi-thread BLAS product
parks its workers in a spin after it returns (OpenBLAS: up to about 2^28 cycles), which
took the cores from the chunk threads, and its barrier waits for any preempted worker,
which doubled the step whenever other work shared the machine (benchmarks/NOTES.md, item
37). A small batch does not earn the chunk threads back: each kernel call wakes them (tens
of µs on the machines measured): at batch 32 and 64 the step was slower than with BLAS's
threads (medians 1.06x and 1.15x as long), from 128 on faster (0.93x at 128, 0.82-0.84x at
256 and 1,024). So the choice follows the batch (``chunked_for``); ``minimtl train``,
``profile`` and ``bench`` make it.
Without ``set_num_threads`` nothing is changed: the chunks run on the caller and BLAS on as
many threads as it starts with.
"""

from __future__ import annotations

import os

import numpy as np

from .backend import available, configure_numba

__all__ = ["set_num_threads", "chunked_for", "cores", "CHUNKED_FROM_BATCH"]

#: The smallest batch whose step runs the conv chunks on threads (``chunked_for``).
CHUNKED_FROM_BATCH = 128


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def chunked_for(batch_size: int) -> bool:
    """Whether a step of ``batch_size`` samples is faster with the convolutions' chunks on
    threads (BLAS single-threaded) than with BLAS's own threads: from
    ``CHUNKED_FROM_BATCH`` on (measured, benchmarks/NOTES.md item 37)."""
    return batch_size >= CHUNKED_FROM_BATCH


def set_num_threads(n: int, chunks: bool = True) -> dict[str, int | None]:
    """Use ``n`` threads for the CPU kernels. Numba's ``prange`` loops get ``n``; with
    ``chunks`` the channels-last convolutions' batch chunks run on ``n`` threads and the
    BLAS library under NumPy is held to one thread (through threadpoolctl), the chunk
    threads being the parallelism; without, the chunks run on the caller and BLAS gets
    ``n`` (``chunked_for(batch)`` says which is faster). Without Numba there are no chunk
    threads and BLAS gets ``n``; without threadpoolctl the chunks stay on the caller.
    Process-wide; returns what was set ({"numba", "chunks", "blas"}, None for a part that
    is not installed).

    Raises ``ValueError`` for n < 1 or more threads than Numba started with (its
    ``NUMBA_NUM_THREADS``, by default the number of cores)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    n = int(n)
    out: dict[str, int | None] = {"numba": None, "chunks": None, "blas": None}
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if available("numba"):
        import numba

        configure_numba()                # the threading layer is chosen before it starts
        if n > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"set_num_threads: {n} threads, but Numba has "
                             f"{numba.config.NUMBA_NUM_THREADS} (set NUMBA_NUM_THREADS before "
                             f"starting Python for more)")
        numba.set_num_threads(n)
        out["numba"] = n
        from kernels import _threads

        # chunk threads only where BLAS can be held to one thread under them
        _threads.set_threads(n if chunks and threadpool_limits is not None else 1)
        out["chunks"] = _threads.threads()
    if threadpool_limits is not None:
        blas = 1 if out["chunks"] is not None and out["chunks"] > 1 else n
        threadpool_limits(limits=blas, user_api="blas")
        out["blas"] = blas
    return out
