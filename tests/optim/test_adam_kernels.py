"""The fused Adam kernels against the NumPy form of ``Adam._update``, bit for bit.

- ``kernels/optim_numba.py`` runs here (tests/optim/test_optim.py checks it through the
  optimizer as well);
- ``kernels/optim_cuda.py`` is compiled with nvcc for float and double, and its source is
  also compiled as host C++ (the CUDA built-ins replaced by one-line stand-ins: a loop over
  the thread index, round-to-nearest operations without FMA contraction) and run on the
  CPU, so the kernel's arithmetic is checked on machines without a GPU;
- on a GPU, the cupy optimizer against the NumPy one.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess

import numpy as np
import pytest

from kernels import optim_cuda
from kernels._cuda import nvcc_unit
from minimtl import nn, optim

SCALARS = dict(b1=0.9, b2=0.999, eps=1e-8, lr=1e-3)


def numpy_adam(p, m, v, grads, *, b1, b2, eps, lr):
    """``Adam._update``'s NumPy form on bare arrays (a copy of p, m, v is updated)."""
    opt_param = nn.Parameter(p.copy(), backend="numpy")
    opt = optim.Adam([opt_param], lr=lr, betas=(b1, b2), eps=eps)
    opt.state[0] = {"m": m.copy(), "v": v.copy(), "step": 0}
    for g in grads:
        opt_param.grad = g
        opt.step()
    return opt_param.data, opt.state[0]["m"], opt.state[0]["v"]


def _case(dtype, n=1000, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 2, n)).astype(dtype)
             for _ in range(steps)]
    zeros = np.zeros(n, dtype)
    return p, zeros, zeros.copy(), grads


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles_with_nvcc_for_float_and_double(tmp_path):
    src = tmp_path / "adam.cu"
    src.write_text(nvcc_unit(optim_cuda.SOURCE, optim_cuda.KERNELS))
    res = subprocess.run(["nvcc", "-std=c++14", "-arch=sm_90", "-c", str(src), "-o",
                          str(tmp_path / "adam.o")], capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]


HOST_PRELUDE = r"""
#include <cmath>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
struct minimtl_dim { unsigned x; };
static minimtl_dim blockIdx, blockDim, threadIdx;
static float __fmul_rn(float a, float b) { return a * b; }
static double __dmul_rn(double a, double b) { return a * b; }
static float __fadd_rn(float a, float b) { return a + b; }
static double __dadd_rn(double a, double b) { return a + b; }
static float __fsub_rn(float a, float b) { return a - b; }
static double __dsub_rn(double a, double b) { return a - b; }
static float __fdiv_rn(float a, float b) { return a / b; }
static double __ddiv_rn(double a, double b) { return a / b; }
static float __fsqrt_rn(float a) { return std::sqrt(a); }
static double __dsqrt_rn(double a) { return std::sqrt(a); }
"""

HOST_RUNNER = r"""
template <typename T>
static void run(T* p, const T* g, T* m, T* v, long long n, const T* s) {
    blockDim.x = 1;
    threadIdx.x = 0;
    for (long long i = 0; i < n; ++i) {   // one "thread" after another
        blockIdx.x = (unsigned)i;
        adam_update<T>(p, g, m, v, n, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
    }
}
extern "C" void run_float(float* p, const float* g, float* m, float* v, long long n,
                          const float* s) { run<float>(p, g, m, v, n, s); }
extern "C" void run_double(double* p, const double* g, double* m, double* v, long long n,
                           const double* s) { run<double>(p, g, m, v, n, s); }
"""


@pytest.fixture(scope="module")
def host_kernel(tmp_path_factory):
    """The CUDA source compiled as host C++ into a shared library (ctypes)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    d = tmp_path_factory.mktemp("adam_host")
    src, lib = d / "adam_host.cpp", d / "adam_host.so"
    src.write_text(HOST_PRELUDE + optim_cuda.SOURCE + HOST_RUNNER)
    res = subprocess.run(["g++", "-std=c++14", "-O2", "-ffp-contract=off", "-shared", "-fPIC",
                          str(src), "-o", str(lib)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return ctypes.CDLL(str(lib))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernel_arithmetic_run_on_the_host_is_bitwise_the_numpy_update(host_kernel,
                                                                           dtype):
    p, m, v, grads = _case(dtype)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    fn = host_kernel.run_float if dtype is np.float32 else host_kernel.run_double
    ptr = ctypes.POINTER(ctypes.c_float if dtype is np.float32 else ctypes.c_double)
    b1, b2, eps, lr = SCALARS["b1"], SCALARS["b2"], SCALARS["eps"], SCALARS["lr"]
    for t, g in enumerate(grads, start=1):
        s = np.array([1 - b1, b1, 1 - b2, b2, math.sqrt(1 - b2**t), eps, lr / (1 - b1**t)],
                     dtype=dtype)
        fn(*(a.ctypes.data_as(ptr) for a in (p, g, m, v)), ctypes.c_longlong(p.size),
           s.ctypes.data_as(ptr))
    for got, exp in zip((p, m, v), want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_kernel_is_bitwise_the_numpy_update(dtype):
    from kernels.optim_numba import adam_update

    p, m, v, grads = _case(dtype, seed=1)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    b1, b2 = SCALARS["b1"], SCALARS["b2"]
    for t, g in enumerate(grads, start=1):
        adam_update(p, g, m, v, b1=b1, b2=b2, c2=math.sqrt(1 - b2**t), eps=SCALARS["eps"],
                    step=SCALARS["lr"] / (1 - b1**t))
    for got, exp in zip((p, m, v), want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_adam_is_bitwise_the_numpy_adam(dtype):
    import cupy

    p, m, v, grads = _case(dtype, seed=2)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    q = nn.Parameter(cupy.asarray(p), backend="cupy")
    opt = optim.Adam([q], lr=SCALARS["lr"], betas=(SCALARS["b1"], SCALARS["b2"]),
                     eps=SCALARS["eps"])
    for g in grads:
        q.grad = cupy.asarray(g)
        opt.step()
    np.testing.assert_array_equal(q.numpy(), want[0])
    np.testing.assert_array_equal(cupy.asnumpy(opt.state[0]["m"]), want[1])
    np.testing.assert_array_equal(cupy.asnumpy(opt.state[0]["v"]), want[2])
