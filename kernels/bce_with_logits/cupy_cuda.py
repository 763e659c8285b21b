"""bce_with_logits, CUDA kernels (through CuPy).

Parallel strategy: elementwise over the flattened arrays, one thread per element in a
grid-stride loop (consecutive threads touch consecutive elements: coalesced). Arithmetic
in the input dtype (every forward term is ≥ 0; see SPEC).

math: see SPEC (kernels/bce_with_logits/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
// Thread -> index map: grid-stride loop; thread t handles elements t, t + S, t + 2S, ...
// (S = total threads) of the flattened arrays.
template <typename T>
__global__ void bce_with_logits_fwd(const T* z, const T* y, T* loss, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T zi = z[i];
        T yi = y[i];
        T linear = zi >= T(0) ? zi * (T(1) - yi) : -zi * yi;  // max(z, 0) - z*y, >= 0
        loss[i] = linear + log1p(exp(-fabs(zi)));
    }
}

// Thread -> index map: as bce_with_logits_fwd (grid-stride, one element per step).
template <typename T>
__global__ void bce_with_logits_bwd(const T* gloss, const T* z, const T* y, T* gz,
                                    long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T zi = z[i];
        T yi = y[i];
        T e = exp(-fabs(zi));
        T r = e / (T(1) + e);  // sigma(-|z|)
        T diff = zi >= T(0) ? (T(1) - yi) - r : r - yi;  // sigma(z) - y
        gz[i] = gloss[i] * diff;
    }
}
"""

KERNELS = ("bce_with_logits_fwd", "bce_with_logits_bwd")


def fwd(z, y):
    """loss = max(z, 0) − z·y + log1p(exp(−|z|)), elementwise. z, y (any shape) -> loss."""
    cp = cupy()
    z = cp.ascontiguousarray(z)
    y = cp.ascontiguousarray(y)
    loss = cp.empty(z.shape, dtype=z.dtype)
    fn = kernel(SOURCE, KERNELS, "bce_with_logits_fwd", z.dtype)
    launch(fn, z.size, (z, y, loss, np.int64(z.size)))
    return loss


def bwd(gloss, z, y):
    """gz = gloss·(σ(z) − y) with a stable σ. gloss, z, y (any shape) -> (gz, None)."""
    cp = cupy()
    gloss = cp.ascontiguousarray(gloss)
    z = cp.ascontiguousarray(z)
    y = cp.ascontiguousarray(y)
    gz = cp.empty(z.shape, dtype=z.dtype)
    fn = kernel(SOURCE, KERNELS, "bce_with_logits_bwd", z.dtype)
    launch(fn, z.size, (gloss, z, y, gz, np.int64(z.size)))
    return gz, None
