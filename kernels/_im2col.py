"""The packing loops of the CPU convolutions (Numba), shared by conv1d, conv1d_relu and
conv1d_relu_maxpool: im2col, which unfolds the padded input into the columns X̂ of conv1d's
matrix form (SPEC), its adjoint col2im, which adds each tap's column back onto the
positions it read, both layouts of each, the weight matrix of the channels-last products,
the batch chunks the products run in, and the threads that run the channels-last chunks.

The loops are serial (njit, no prange) and walk rows contiguously; kernels/conv1d/numba_cpu.py
says why, and how the products around them use BLAS.

Threads (``set_threads``, set by ``minimtl.set_num_threads``): the channels-last
convolutions run their chunks on T threads, the caller and T − 1 helpers, each taking the
next chunk nobody has taken (``run_chunks``), with BLAS on one thread under each. The
packing loops release the GIL (``nogil``), and so does NumPy's product. Each chunk writes
only its own rows of the outputs and its own partial weight and bias gradient, which are
added up in chunk order afterwards, so the results are bitwise the same for every T and
whichever thread ran which chunk. Why not BLAS's own threads: benchmarks/NOTES.md, item 37.
math: see SPEC (kernels/conv1d/__init__.py).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

__all__ = ["ROWS", "batch_chunks", "row_chunks", "set_threads", "threads",
           "run_chunks", "sum_in_order", "im2col", "col2im", "im2col_nlc", "col2im_nlc", "w_rows",
           "w_from_rows", "chunk_products_nlc"]

#: Rows (n, t) per chunk of the channels-last products (conv1d's and the fused block's).
ROWS = 2048

_threads = 1                                # threads that run the channels-last chunks
_helpers: list | None = None    # their T − 1 helper threads (``_Helper``), made on first use


def batch_chunks(N, Lo, per_chunk):
    """(samples per chunk nb, the sample ranges [n0, n1)) for chunks of about ``per_chunk``
    output positions (n, t) each; nb ≥ 1."""
    nb = max(1, per_chunk // max(Lo, 1))
    return nb, [(n0, min(N, n0 + nb)) for n0 in range(0, N, nb)]


def row_chunks(N, Lo):
    """``batch_chunks`` of the channels-last products: about ``ROWS`` rows (n, t) each. Never
    the thread count: the chunks, and so the bits of the results, are the same on any
    number of threads."""
    return batch_chunks(N, Lo, ROWS)


def set_threads(n: int) -> None:
    """Run the channels-last chunks on ``n`` ≥ 1 threads (1: all on the caller)."""
    global _threads, _helpers
    if int(n) != _threads:
        _helpers = None         # parked helpers of the old count stay parked (daemons)
    _threads = max(1, int(n))


def threads() -> int:
    """The threads the channels-last chunks run on."""
    return _threads


def run_chunks(work, chunks) -> int:
    """Call ``work(slot, i, n0, n1)`` once for each chunk i = (n0, n1) of ``chunks``, on
    min(T, chunks) threads: the caller is slot 0, the helpers slots 1 …; each thread takes
    the next chunk not yet taken. ``work`` may write only chunk i's outputs and buffers of
    its own slot. Returns when every chunk is done (re-raising the first error of a helper
    after all have stopped); returns the number of slots used."""
    global _helpers
    slots = max(1, min(_threads, len(chunks)))
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

    if _helpers is None:
        _helpers = [_Helper(s) for s in range(1, _threads)]
    for h in _helpers[:slots - 1]:
        h.start(take)
    try:
        take(0)
    finally:
        errors = [h.join() for h in _helpers[:slots - 1]]   # never return while one writes
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


@njit(cache=True)
def im2col(x, K, S, pl, d, Lo, cols):
    """cols[c·K+k, n·Lo+t] = xp[n, c, t·S+k·d] (zero in the padding); cols (C·K, N·Lo)."""
    N, C, L = x.shape
    for ck in range(C * K):
        c = ck // K
        k = ck - c * K
        for n in range(N):
            row = n * Lo
            for t in range(Lo):
                i = t * S + k * d - pl
                cols[ck, row + t] = x[n, c, i] if 0 <= i < L else 0.0


@njit(cache=True)
def col2im(gcols, K, S, pl, d, Lo, gx):
    """gx[n, c, j] = Σ_k gcols[c·K+k, n·Lo+t] over t·S+k·d = j+pl; gx (N, C, L)."""
    N, C, L = gx.shape
    for c in range(C):
        for n in range(N):
            gx[n, c, :] = 0.0
            row = n * Lo
            for k in range(K):
                ck = c * K + k
                for t in range(Lo):
                    i = t * S + k * d - pl
                    if 0 <= i < L:
                        gx[n, c, i] += gcols[ck, row + t]


@njit(cache=True, nogil=True)
def im2col_nlc(x, K, S, pl, d, Lo, cols):
    """cols[n·Lo+t, k·C+c] = xp[n, t·S+k·d, c] (zero in the padding); x (N, L, C).

    Channels-last rows are contiguous runs of C values, so each (t, k) is one short copy."""
    N, L, C = x.shape
    for n in range(N):
        for t in range(Lo):
            r = n * Lo + t
            for k in range(K):
                i = t * S + k * d - pl
                if 0 <= i < L:
                    for c in range(C):
                        cols[r, k * C + c] = x[n, i, c]
                else:
                    for c in range(C):
                        cols[r, k * C + c] = 0.0


@njit(cache=True, nogil=True)
def col2im_nlc(gcols, K, S, pl, d, Lo, gx):
    """gx[n, j, c] = Σ_k gcols[n·Lo+t, k·C+c] over t·S+k·d = j+pl (k, then t, ascending)."""
    N, L, C = gx.shape
    for n in range(N):
        gx[n] = 0.0
        for k in range(K):
            for t in range(Lo):
                i = t * S + k * d - pl
                if 0 <= i < L:
                    r = n * Lo + t
                    for c in range(C):
                        gx[n, i, c] += gcols[r, k * C + c]


def w_rows(w):
    """W as the (K·C, O) matrix of the channels-last products: wm[k·C+c, o] = w[o, c, k]."""
    O, C, K = w.shape
    return np.ascontiguousarray(w.transpose(2, 1, 0)).reshape(K * C, O)


def w_from_rows(wm, C, K):
    """``w_rows`` undone: w[o, c, k] = wm[k·C+c, o], (O, C, K) and contiguous."""
    O = wm.shape[1]
    return np.ascontiguousarray(wm.reshape(K, C, O).transpose(2, 1, 0))


def chunk_products_nlc(x, G, wm, S, pl, d, Lo, cols, gw_part, gx):
    """The backward products of one channels-last chunk, given its gradient rows G
    (m, O) = Gᵀ: the chunk's weight gradient gw_part = X̂·G (K·C, O) and, when gx is
    given, gx = col2im(G·W2), reusing ``cols`` (m, K·C) first for X̂ᵀ, then for the
    product."""
    K = wm.shape[0] // x.shape[2]
    im2col_nlc(x, K, S, pl, d, Lo, cols)
    np.matmul(cols.T, G, out=gw_part)                                      # (K·C, O)
    if gx is not None:
        gcols = np.matmul(G, wm.T, out=cols)                               # reuse the buffer
        col2im_nlc(gcols, K, S, pl, d, Lo, gx)
