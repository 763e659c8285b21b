"""The CPU kernels' own threads: whole pieces of work (a batch chunk of a convolution, a
block of a matrix product) run on T threads, the caller and T − 1 helpers, each taking the
next piece nobody has taken (``run_chunks``), with BLAS on one thread under each
(``minimtl.set_num_threads`` sets T and holds BLAS to one thread). Numba loops that run
here release the GIL (``nogil``), and so does NumPy's product.

Each piece writes only its own part of the outputs, and partial sums of a reduction are
kept per piece and added in piece order (``sum_in_order``); the pieces themselves never
depend on T. So the results are bitwise the same for every T, whichever thread ran which
piece. Why not BLAS's own threads: benchmarks/NOTES.md, item 37.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["set_threads", "threads", "per_slot", "run_chunks", "sum_in_order", "matmul",
           "ROW_BLOCK", "COL_BLOCK"]

#: Rows of the left operand a block of ``matmul`` takes (its output rows).
ROW_BLOCK = 64
#: Columns of the right operand a block of ``matmul`` takes when the rows are few.
COL_BLOCK = 512

_threads = 1                    # threads that run the pieces
_helpers: list = []             # helper threads (``_Helper``), made as first needed, kept
_busy = threading.Lock()        # held while the helpers work for one caller


def set_threads(n: int) -> None:
    """Run the pieces on ``n`` ≥ 1 threads (1: all on the caller). Helpers made for a larger
    count stay parked and are reused."""
    global _threads
    _threads = max(1, int(n))


def threads() -> int:
    """The threads the pieces run on."""
    return _threads


def _slots(chunks) -> int:
    """The threads ``run_chunks`` may use for ``chunks``: min(T, number of chunks) ≥ 1."""
    return max(1, min(_threads, len(chunks)))


def per_slot(chunks, make) -> list:
    """One ``make()`` for each slot ``run_chunks`` may give ``chunks`` (a thread's own
    buffers, indexed by its slot)."""
    return [make() for _ in range(_slots(chunks))]


def run_chunks(work, chunks) -> int:
    """Call ``work(slot, i, n0, n1)`` once for each chunk i = (n0, n1) of ``chunks``, on
    min(T, chunks) threads: the caller is slot 0, the helpers slots 1 …; each thread takes
    the next chunk not yet taken. ``work`` may write only chunk i's outputs and buffers of
    its own slot. Returns when every chunk is done (re-raising the first error of a helper
    after all have stopped); returns the number of slots used. A second Python thread that
    calls while the helpers work for a first runs its chunks on itself (the same bits)."""
    slots = _slots(chunks)
    if slots > 1 and not _busy.acquire(blocking=False):
        slots = 1
    if slots == 1:
        for i, (n0, n1) in enumerate(chunks):
            work(0, i, n0, n1)
        return 1
    todo = iter(list(enumerate(chunks)))
    lock = threading.Lock()

    def take(slot):
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            i, (n0, n1) = item
            work(slot, i, n0, n1)

    try:
        while len(_helpers) < slots - 1:
            _helpers.append(_Helper(len(_helpers) + 1))
        helpers = _helpers[:slots - 1]
        for h in helpers:
            h.start(take)
        try:
            take(0)
        finally:
            errors = [h.join() for h in helpers]        # never return while one writes
    finally:
        _busy.release()
    for e in errors:
        if e is not None:
            raise e
    return slots


class _Helper:
    """One helper thread of ``run_chunks``, parked on a lock between calls (a lock's
    release is the cheapest wake-up Python has: a pool's queue and futures cost ~70 µs a
    call, as much as a small chunk's work)."""

    def __init__(self, slot: int):
        self.slot, self.job, self.error = slot, None, None
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        threading.Thread(target=self._loop, name=f"minimtl-chunks-{slot}", daemon=True).start()

    def _loop(self):
        while True:
            self._go.acquire()                       # parked until start()
            try:
                self.job(self.slot)
            except BaseException as e:               # handed to the caller by join()
                self.error = e
            finally:
                self._done.release()

    def start(self, job):
        self.job, self.error = job, None
        self._go.release()

    def join(self):
        self._done.acquire()
        return self.error


def sum_in_order(parts, dtype):
    """Σ_i parts[i], added in the order of i (the chunk order, whichever thread made each),
    into a new array of ``dtype``; zeros when there is no part. Each addition rounds to
    ``dtype`` once (float64 parts into a float32 total: as a running float32 sum that adds
    each float64 chunk sum)."""
    total = np.zeros(parts.shape[1:], dtype=dtype)
    for part in parts:
        total += part
    return total


def matmul(a, b):
    """a @ b for 2-D float arrays (any strides), in blocks on the threads: blocks of
    ``ROW_BLOCK`` rows of a, or, where a has at most ``ROW_BLOCK`` rows, of ``COL_BLOCK``
    columns of b; each block is one whole product over the shared axis (no partial sums),
    and the blocks are the same on one thread as on many."""
    M, N = a.shape[0], b.shape[1]
    rows = M > ROW_BLOCK
    step, size = (ROW_BLOCK, M) if rows else (COL_BLOCK, N)
    blocks = [(i, min(size, i + step)) for i in range(0, size, step)]
    if len(blocks) < 2:
        return a @ b
    out = np.empty((M, N), dtype=np.result_type(a.dtype, b.dtype))

    def block(slot, i, lo, hi):
        if rows:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

    run_chunks(block, blocks)
    return out
