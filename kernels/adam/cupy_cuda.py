"""Adam's update as one CUDA kernel launch per parameter: one thread per element.

The reference's passes, run with CuPy, launch thirteen elementwise kernels per parameter
(about 230 launches a step for the article's network, each costing host time); this is
one. Every element gets the reference's operations in its order, each rounded to nearest
on its own (the ``__f*_rn`` / ``__d*_rn`` intrinsics: no contraction into FMA), so the
result is bitwise the reference's. Layouts the kernel cannot write through a flat view
take the reference's passes with CuPy. Math: see SPEC.
"""

from __future__ import annotations

import numpy as np

from kernels._cuda import cupy, kernel, launch
from kernels.adam.reference import passes

__all__ = ["update", "SOURCE", "KERNELS"]

SOURCE = r"""
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, long long n, T one_m_b1, T b1, T one_m_b2,
                            T b2, T c2, T eps, T step)
{
    // thread i -> element i of the flat parameter (and of its g, m, v)
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    T gi = g[i];
    T mi = add_rn(mul_rn(m[i], b1), mul_rn(gi, one_m_b1));             // b1*m + (1-b1)*g
    T vi = add_rn(mul_rn(v[i], b2), mul_rn(mul_rn(gi, gi), one_m_b2)); // b2*v + (1-b2)*g*g
    m[i] = mi;
    v[i] = vi;
    T d = add_rn(div_rn(sqrt_rn(vi), c2), eps);                        // sqrt(v)/c2 + eps
    p[i] = sub_rn(p[i], mul_rn(div_rn(mi, d), step));                  // p - m/d * step
}
"""

KERNELS = ("adam_update",)


def update(p, g, m, v, *, b1: float, b2: float, c2: float, eps: float, step: float) -> None:
    """One Adam step in place on the cupy arrays p, m, v (g read); c2 = √(1 − β2ᵗ),
    step = lr/(1 − β1ᵗ). The scalars are cast to p's dtype first, as NumPy and CuPy do
    with Python floats."""
    cp = cupy()
    if not (p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        passes(cp, p, g, m, v, b1=b1, b2=b2, c2=c2, eps=eps, step=step)
        return
    t = np.dtype(p.dtype).type
    g = cp.ascontiguousarray(g, dtype=p.dtype)
    fn = kernel(SOURCE, KERNELS, "adam_update", p.dtype)
    launch(fn, p.size, (p, g, m, v, np.int64(p.size), t(1 - b1), t(b1), t(1 - b2), t(b2),
                        t(c2), t(eps), t(step)))
