"""The host side that the GPU recurrences (rnn, lstm, gru; CUDA through CuPy) share: the
shared-memory opt-in, the launch plan of a persistent walk kernel, and the cuBLAS products
after a backward walk.

A persistent walk kernel: batch rows are independent through time, so one CUDA block owns
a few batch rows and walks them through all T steps, with __syncthreads() between steps:
one launch for the whole forward recurrence and one for the backward walk, instead of a
launch per step. W_hh is copied into dynamic shared memory once per block when the device
allows that much (opt-in above 48 KiB) and read from global memory (L1/L2-cached)
otherwise. The products that do not depend on the recurrence (the input projection, and
gx, gw_ih, gw_hh after the backward walk) are cupy matmuls (cuBLAS) around the kernels.

math: see the SPECs (kernels/rnn/__init__.py, kernels/lstm/__init__.py,
kernels/gru/__init__.py).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from kernels._cuda import cupy, launch_grid

__all__ = ["allow_smem", "launch_recurrence", "column_sums", "input_grads"]

#: Threads per block; every kernel loop strides by blockDim, so any H works.
_THREADS = 256
#: Dynamic shared memory every device grants without opt-in.
_DEFAULT_SMEM = 48 * 1024


def _rows_per_block(N: int) -> int:
    """Batch rows per block: one while there are few rows (as many blocks as possible to
    hide latency), more once the blocks outnumber what the device runs at once (measured:
    benchmarks/NOTES.md, item 27)."""
    if N <= 512:
        return 1
    if N <= 1024:
        return 2
    return 4


@cache
def _smem_limit(device_id: int) -> int:
    """The most dynamic shared memory a block of this device may opt in to (0 if unknown)."""
    try:
        attributes = cupy().cuda.Device(device_id).attributes
        return int(attributes.get("MaxSharedMemoryPerBlockOptin", 0))
    except Exception:
        return 0


def allow_smem(fn, nbytes: int) -> bool:
    """Let ``fn`` use ``nbytes`` of dynamic shared memory; False if the device cannot."""
    if nbytes <= _DEFAULT_SMEM:
        return True
    if nbytes > _smem_limit(cupy().cuda.Device().id):
        return False
    try:
        fn.max_dynamic_shared_size_bytes = nbytes
        return True
    except Exception:  # a cupy or driver without the attribute: W_hh from global memory
        return False


def launch_recurrence(fn, op, dtype, N, steps, H, *, w_size, per_row, args) -> None:
    """Launch a persistent recurrence kernel ``fn`` (the RNN's or the LSTM's) on N rows.

    The kernel takes ``args`` then (N, steps, H, rows, w_in_smem) as int32 and keeps, in
    dynamic shared memory, ``per_row`` elements of state per batch row, after the
    ``w_size`` elements of W_hh when w_in_smem is 1. Needs N ≥ 1."""
    itemsize = np.dtype(dtype).itemsize
    rows = _rows_per_block(N)
    while rows > 1 and rows * per_row * itemsize > _DEFAULT_SMEM:
        rows //= 2
    state = rows * per_row * itemsize
    w_bytes = w_size * itemsize
    w_in_smem = allow_smem(fn, w_bytes + state)
    smem = state + w_bytes if w_in_smem else state
    if not w_in_smem and not allow_smem(fn, smem):
        raise ValueError(f"{op}: H = {H} needs {smem} bytes of shared memory per block")
    grid = (N + rows - 1) // rows
    tail = (np.int32(N), np.int32(steps), np.int32(H), np.int32(rows), np.int32(w_in_smem))
    launch_grid(fn, (grid,), (_THREADS,), tuple(args) + tail, shared_mem=smem)


def column_sums(a):
    """Σ over the rows of a (M, K) as a matrix-vector product: cupy's ``a.sum(axis=0)`` is a
    strided reduction, far slower here (benchmarks/NOTES.md, item 27)."""
    cp = cupy()
    if a.shape[0] == 0:
        return cp.zeros(a.shape[1], dtype=a.dtype)
    return cp.ones(a.shape[0], dtype=a.dtype) @ a


def input_grads(g_in, g_rec, x, h0, hs, w_ih):
    """The products after a backward walk (cuBLAS): gx = G_in·W_ih, gw_ih = G_inᵀ·x and
    gw_hh = G_recᵀ·h_{t−1}, with G_in, G_rec the walk's (N, T, ·) pre-activation gradients
    of the input and the recurrent product (the same array except in the GRU)."""
    cp = cupy()
    N, steps, D = x.shape
    H = h0.shape[1]
    hprev = cp.concatenate([h0[:, None, :], hs[:, :-1]], axis=1)  # (N, T, H): h_{t-1}
    gi = g_in.reshape(N * steps, g_in.shape[2])     # explicit widths: N = 0 has no -1
    gx = (gi @ w_ih).reshape(N, steps, D)
    gw_ih = gi.T @ x.reshape(N * steps, D)
    gw_hh = g_rec.reshape(N * steps, g_rec.shape[2]).T @ hprev.reshape(N * steps, H)
    return gx, gw_ih, gw_hh
