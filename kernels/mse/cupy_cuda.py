"""mse (squared error), CUDA kernels (through CuPy).

Parallel strategy: elementwise over the flattened arrays, one thread per element in a
grid-stride loop (consecutive threads touch consecutive elements: coalesced). Arithmetic
in the input dtype.

math: see SPEC (kernels/mse/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
// Thread -> index map: grid-stride loop; thread t handles elements t, t + S, t + 2S, ...
// (S = total threads) of the flattened arrays.
template <typename T>
__global__ void mse_fwd(const T* a, const T* b, T* loss, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T d = a[i] - b[i];
        loss[i] = d * d;
    }
}

// Thread -> index map: as mse_fwd (grid-stride, one element per step).
template <typename T>
__global__ void mse_bwd(const T* gloss, const T* a, const T* b, T* ga, T* gb, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T g = T(2) * (a[i] - b[i]) * gloss[i];
        ga[i] = g;
        gb[i] = -g;
    }
}
"""

KERNELS = ("mse_fwd", "mse_bwd")


def fwd(a, b):
    """loss = (a − b)², elementwise. a, b (any shape) -> loss."""
    cp = cupy()
    a = cp.ascontiguousarray(a)
    b = cp.ascontiguousarray(b)
    loss = cp.empty(a.shape, dtype=a.dtype)
    fn = kernel(SOURCE, KERNELS, "mse_fwd", a.dtype)
    launch(fn, a.size, (a, b, loss, np.int64(a.size)))
    return loss


def bwd(gloss, a, b):
    """ga = 2(a − b)·gloss, gb = −ga. gloss, a, b (any shape) -> (ga, gb)."""
    cp = cupy()
    gloss = cp.ascontiguousarray(gloss)
    a = cp.ascontiguousarray(a)
    b = cp.ascontiguousarray(b)
    ga = cp.empty(a.shape, dtype=a.dtype)
    gb = cp.empty(a.shape, dtype=a.dtype)
    fn = kernel(SOURCE, KERNELS, "mse_bwd", a.dtype)
    launch(fn, a.size, (gloss, a, b, ga, gb, np.int64(a.size)))
    return ga, gb
