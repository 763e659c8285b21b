"""The CUDA kernels run on the CPU (tests/cuda_host.py): each ``cupy_cuda`` module's
wrappers and kernels against the reference, at the benchmark's shapes (both layouts for
conv, pools and the fused block) and batch sizes 1 and 5, float32 and float64. This checks
the index arithmetic, the tiling, the barriers and shuffles, and the wrappers of every
kernel family without a GPU. It does not check what only a GPU shows: races between
threads that run at once (missing fences, ``volatile``; a missing barrier shows in
tests/kernels/test_cuda_thread_order_on_host.py), the real shared-memory limits, speed,
and CuPy itself (the gpu-marked tests run on a GPU for that)."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest

import kernels
from minimtl.bench import kernel_cases
from tests.cuda_host import SHARED_CUDA, patch_module, supports

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

def _module(op: str):
    return importlib.import_module(f"kernels.{op}.cupy_cuda")


#: operators whose CUDA sources (their own, or conv1d's they reuse) run on the host
OPS = [op for op in kernels.OPS if supports(_module(op).SOURCE)]


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


def _patch_all(monkeypatch, cache):
    """Every family's CUDA module on the host (the fused block calls conv1d's and
    maxpool1d's), and the shared modules they launch through."""
    for other in OPS:
        patch_module(monkeypatch, _module(other), cache)
    for name in SHARED_CUDA:
        patch_module(monkeypatch, importlib.import_module(name), cache)


def test_every_kernel_family_runs_on_the_host():
    assert OPS == list(kernels.OPS)


@pytest.mark.parametrize("op", ["conv1d", "conv1d_relu", "conv1d_relu_maxpool"])
@pytest.mark.parametrize("cl", [False, True])
def test_cuda_conv_skips_gx_and_leaves_gw_gb_bitwise(monkeypatch, cache, op, cl):
    _patch_all(monkeypatch, cache)
    case = [c for c in kernel_cases(op, 3, seq_len=12, features=3)
            if c.shape.endswith("NLC") == cl][0]
    mod = _module(op)
    out = case.fwd(mod, case.arrays)
    saved = () if op == "conv1d" else ((out,) if op == "conv1d_relu" else out)
    a = case.arrays
    p = dict(stride=1, padding_left=0, padding_right=0, dilation=1, channels_last=cl)
    if op == "conv1d_relu_maxpool":
        p.update(pool_size=2, pool_stride=2, pool_padding=0)
    full = mod.bwd(a["gy"], a["x"], a["w"], *saved, **p)
    part = mod.bwd(a["gy"], a["x"], a["w"], *saved, **p, need_gx=False)
    assert part[0] is None and full[0].shape == a["x"].shape
    np.testing.assert_array_equal(part[1], full[1])
    np.testing.assert_array_equal(part[2], full[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("op", OPS)
def test_cuda_kernels_run_on_the_host_match_the_reference(monkeypatch, cache, op, batch,
                                                          dtype):
    _patch_all(monkeypatch, cache)
    # conv1d's weight gradient aims at ~1,024 blocks (slices of the reduction) to fill a
    # GPU; on the host every block costs its threads' start: aim at a few, still > 1
    monkeypatch.setattr(_module("conv1d"), "_TARGET_BLOCKS", 8)
    mod = _module(op)
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
