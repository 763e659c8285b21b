"""bce on probabilities, CUDA kernels (through CuPy).

Parallel strategy: elementwise over the flattened arrays, one thread per element in a
grid-stride loop (consecutive threads touch consecutive elements: coalesced). Arithmetic
in double for every dtype (the clip bounds 1e-7 and 1 - 1e-7 are not float values, and
log(p̂) near p̂ = 1 - 1e-7 needs the unrounded p̂); see SPEC.

math: see SPEC (kernels/bce/__init__.py).
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch

__all__ = ["fwd", "bwd", "SOURCE", "KERNELS"]

SOURCE = r"""
#define BCE_EPS 1e-7

// Thread -> index map: grid-stride loop; thread t handles elements t, t + S, t + 2S, ...
// (S = total threads) of the flattened arrays.
template <typename T>
__global__ void bce_fwd(const T* p, const T* y, T* loss, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double p_hat = fmin(fmax((double)p[i], BCE_EPS), 1.0 - BCE_EPS);
        double yi = (double)y[i];
        loss[i] = (T)(-(yi * log(p_hat) + (1.0 - yi) * log1p(-p_hat)));
    }
}

// Thread -> index map: as bce_fwd (grid-stride, one element per step). The gradient is 0
// where the clip is active (p < eps or p > 1 - eps).
template <typename T>
__global__ void bce_bwd(const T* gloss, const T* p, const T* y, T* gp, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double pi = (double)p[i];
        double g = 0.0;
        if (pi >= BCE_EPS && pi <= 1.0 - BCE_EPS)
            g = (double)gloss[i] * (pi - (double)y[i]) / (pi * (1.0 - pi));
        gp[i] = (T)g;
    }
}
"""

KERNELS = ("bce_fwd", "bce_bwd")


def fwd(p, y):
    """loss = −(y·log p̂ + (1 − y)·log(1 − p̂)), p̂ = clip(p, ε, 1 − ε), elementwise.
    p, y (any shape) -> loss."""
    cp = cupy()
    p = cp.ascontiguousarray(p)
    y = cp.ascontiguousarray(y)
    loss = cp.empty(p.shape, dtype=p.dtype)
    fn = kernel(SOURCE, KERNELS, "bce_fwd", p.dtype)
    launch(fn, p.size, (p, y, loss, np.int64(p.size)))
    return loss


def bwd(gloss, p, y):
    """gp = gloss·(p̂ − y)/(p̂(1 − p̂)) where the clip is inactive, else 0.
    gloss, p, y (any shape) -> (gp, None)."""
    cp = cupy()
    gloss = cp.ascontiguousarray(gloss)
    p = cp.ascontiguousarray(p)
    y = cp.ascontiguousarray(y)
    gp = cp.empty(p.shape, dtype=p.dtype)
    fn = kernel(SOURCE, KERNELS, "bce_bwd", p.dtype)
    launch(fn, p.size, (gloss, p, y, gp, np.int64(p.size)))
    return gp, None
