"""The fused Adam kernels (``kernels/adam/``) against the NumPy reference run by the
optimizer on the numpy backend, bit for bit.

- ``kernels/adam/numba_cpu.py`` runs here (tests/optim/test_optim.py checks it through the
  optimizer as well);
- ``kernels/adam/cupy_cuda.py`` is compiled with nvcc for float and double (the kernel
  contract test, tests/kernels/test_contract.py), and also run on the CPU, wrapper and
  kernel, through tests/cuda_host.py (its source compiled as host C++, round-to-nearest
  operations without FMA contraction), so the kernel's arithmetic is checked on machines
  without a GPU;
- on a GPU, the cupy optimizer against the NumPy one.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from kernels.adam import cupy_cuda
from minimtl import nn, optim

SCALARS = dict(b1=0.9, b2=0.999, eps=1e-8, lr=1e-3)


def numpy_adam(p, m, v, grads, *, b1, b2, eps, lr):
    """The optimizer on the numpy backend (the reference) on bare arrays (a copy of p, m, v
    is updated)."""
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


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernel_run_on_the_host_is_bitwise_the_numpy_update(monkeypatch, tmp_path,
                                                                  dtype):
    from tests.cuda_host import patch_module

    patch_module(monkeypatch, cupy_cuda, tmp_path)
    p, m, v, grads = _case(dtype)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    b1, b2 = SCALARS["b1"], SCALARS["b2"]
    for t, g in enumerate(grads, start=1):
        cupy_cuda.update(p, g, m, v, b1=b1, b2=b2, c2=math.sqrt(1 - b2**t),
                         eps=SCALARS["eps"], step=SCALARS["lr"] / (1 - b1**t))
    for got, exp in zip((p, m, v), want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_kernel_is_bitwise_the_numpy_update(dtype):
    from kernels.adam.numba_cpu import update

    p, m, v, grads = _case(dtype, seed=1)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    b1, b2 = SCALARS["b1"], SCALARS["b2"]
    for t, g in enumerate(grads, start=1):
        update(p, g, m, v, b1=b1, b2=b2, c2=math.sqrt(1 - b2**t), eps=SCALARS["eps"],
               step=SCALARS["lr"] / (1 - b1**t))
    for got, exp in zip((p, m, v), want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("backend", ["numba", "cuda_host"])
def test_strided_parameters_take_the_reference_passes_with_the_same_bits(backend,
                                                                         monkeypatch,
                                                                         tmp_path):
    """p, m, v that a flat view cannot write (every other column of a bigger array) are
    updated by the reference's passes, in place, with the numpy backend's bits."""
    if backend == "cuda_host":
        if shutil.which("g++") is None:
            pytest.skip("g++ not installed")
        from tests.cuda_host import patch_module

        patch_module(monkeypatch, cupy_cuda, tmp_path)
        update = cupy_cuda.update
    else:
        from kernels.adam.numba_cpu import update
    p, m, v, grads = _case(np.float32, n=40, steps=3, seed=3)
    want = numpy_adam(p, m, v, grads, **SCALARS)
    wide = [np.zeros((4, 20), np.float32) for _ in range(3)]
    for w, a in zip(wide, (p, m, v)):
        w[:, ::2] = a.reshape(4, 10)
    ps, ms, vs = (w[:, ::2] for w in wide)
    b1, b2 = SCALARS["b1"], SCALARS["b2"]
    for t, g in enumerate(grads, start=1):
        update(ps, g.reshape(4, 10), ms, vs, b1=b1, b2=b2, c2=math.sqrt(1 - b2**t),
               eps=SCALARS["eps"], step=SCALARS["lr"] / (1 - b1**t))
    for got, exp in zip((ps, ms, vs), want):
        np.testing.assert_array_equal(got.reshape(-1), exp)
    assert not wide[0][:, 1::2].any()          # the columns in between were not written


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
