"""The CUDA kernels in which each thread works alone, run on the CPU (tests/cuda_host.py):
each ``cupy_cuda`` module's wrappers and kernels against the reference, at the benchmark's
shapes (both layouts for the pools) and batch sizes 1 and 5, float32 and float64. This
checks the index arithmetic and the wrappers of those kernels without a GPU; the tiled
conv and recurrent kernels (shared memory, barriers) need one (gpu-marked tests)."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest

import kernels
from minimtl.bench import kernel_cases
from tests.cuda_host import patch_module, supports

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

def _runs_alone(op: str) -> bool:
    mod = importlib.import_module(f"kernels.{op}.cupy_cuda")
    own = mod.SOURCE is not importlib.import_module("kernels.conv1d.cupy_cuda").SOURCE
    return own and supports(mod.SOURCE)


OPS = [op for op in kernels.OPS if _runs_alone(op)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cuda_host")


def _close(got, want, dtype, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, what
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-30)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def test_the_simple_kernels_are_found():
    assert {"maxpool1d", "avgpool1d", "bce_with_logits", "bce", "mse"} <= set(OPS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("op", OPS)
def test_cuda_kernels_run_on_the_host_match_the_reference(monkeypatch, cache, op, batch,
                                                          dtype):
    mod = importlib.import_module(f"kernels.{op}.cupy_cuda")
    patch_module(monkeypatch, mod, cache)
    ref = kernels.get(op, "numpy")
    for case in kernel_cases(op, batch, seq_len=12, features=3):
        a = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in case.arrays.items()}
        want = case.fwd(ref, a)
        got = case.fwd(mod, a)
        for i, (g, w) in enumerate(zip(_tuple(got), _tuple(want))):
            _close(g, w, dtype, f"{op} {case.shape} fwd output {i}")
        g_got = case.bwd(mod, a, got)
        g_want = case.bwd(ref, a, want)
        for i, (g, w) in enumerate(zip(_tuple(g_got), _tuple(g_want))):
            if w is not None:
                _close(g, w, dtype, f"{op} {case.shape} bwd output {i}")


def _tuple(x):
    return x if isinstance(x, tuple) else (x,)
