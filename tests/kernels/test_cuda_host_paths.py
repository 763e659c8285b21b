"""Paths of the CUDA kernels that test-sized inputs do not reach by themselves, forced on
the host (tests/cuda_host.py): the recurrences with W_hh read from global memory because
the device grants less shared memory than W_hh needs (at a small H, so every rows-per-block
case is cheap), and conv1d's weight gradient summed over more slices than its fixed
summing order has lanes (a GPU's case). Each case is checked against the NumPy reference in
float64, the kernels' own output never being the oracle.

Every test runs the ``cupy_cuda`` modules on the host with the thresholds lowered
(``patch_kernels``); the module name carries ``cuda_host`` so ``-k cuda_host`` selects it.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import kernels
from tests._util import rel_err
from tests.conftest import HOST_CUDA
from tests.cuda_host import patch_kernels

#: as the ``cuda_host`` backend param: g++ present and no GPU (whose cupy the patch would hide)
pytestmark = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")


@pytest.fixture
def host(monkeypatch):
    """The ``cupy_cuda`` kernel modules on the host for this test (thresholds lowered)."""
    patch_kernels(monkeypatch)
    return monkeypatch


def cuda(op):
    return kernels.get(op, "cupy")


def ref(op):
    return kernels.get(op, "numpy")


# ---------------------------------------------------------------- recurrences, W_hh global

def refuse_weights_in_shared_memory(monkeypatch, w_bytes):
    """A device that grants any block less dynamic shared memory than ``w_bytes`` (the
    bytes of W_hh) and refuses anything more: the kernels must keep only their per-row
    state there and read W_hh from global memory. Returns the list of requests seen."""
    requests = []

    def allow(fn, nbytes):
        requests.append((nbytes, nbytes < w_bytes))
        return nbytes < w_bytes

    for name in ("kernels._recurrent_cuda", "kernels.gru.cupy_cuda"):
        monkeypatch.setattr(importlib.import_module(name), "allow_smem", allow)
    return requests


def recurrence_inputs(op, rng, N, T, D, H):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[op]
    x = rng.uniform(-1, 1, (N, T, D))
    h0 = rng.uniform(-1, 1, (N, H))
    c0 = (rng.uniform(-1, 1, (N, H)),) if op == "lstm" else ()
    s = 1 / np.sqrt(H)
    w = (rng.uniform(-s, s, (gates * H, D)), rng.uniform(-s, s, (gates * H, H)),
         rng.uniform(-s, s, gates * H), rng.uniform(-s, s, gates * H))
    return (x, h0, *c0, *w)


def run_recurrence(op, mod, inputs, upstream):
    """(forward outputs, gradients) of ``mod``: the backward of every forward output that
    has an upstream gradient (hs; also cs for the LSTM)."""
    outs = mod.fwd(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    n_w = 5 if op == "lstm" else 4                  # x, h0, (c0,) w_ih, w_hh
    grads = mod.bwd(*upstream, *inputs[:n_w], *outs)
    return outs, grads


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("N", [1, 3, 5])   # rows per block 1; 2 with a partial block; 4 + 1
def test_recurrences_with_w_hh_in_global_memory_match_the_reference(host, op, N):
    rng = np.random.default_rng(N)
    T, D, H = 3, 2, 10          # per-row state (≤ 4 rows) stays below W_hh's bytes at H = 10
    inputs = recurrence_inputs(op, rng, N, T, D, H)
    w_hh = inputs[4 if op == "lstm" else 3]
    requests = refuse_weights_in_shared_memory(host, w_hh.nbytes)
    upstream = [rng.uniform(-1, 1, (N, T, H)) for _ in range(2 if op == "lstm" else 1)]
    outs, grads = run_recurrence(op, cuda(op), inputs, upstream)
    want_outs, want_grads = run_recurrence(op, ref(op), inputs, upstream)
    assert any(not ok for _, ok in requests) and any(ok for _, ok in requests), requests
    for i, (got, want) in enumerate(zip(outs, want_outs)):
        assert rel_err(got, want) <= 1e-12, f"{op} forward output {i}"
    for i, (got, want) in enumerate(zip(grads, want_grads)):
        assert rel_err(got, want) <= 1e-12, f"{op} gradient {i}"


# ---------------------------------------------------------------- conv1d weight gradient

@pytest.mark.parametrize("target, min_slices", [(8, 2), (64, 9)])
def test_conv_weight_gradient_summed_over_more_slices_than_lanes_matches_the_reference(
        host, target, min_slices):
    """conv1d_bwd_weight splits the (n, t) reduction into slices (blockIdx.z), about
    ``_TARGET_BLOCKS`` blocks in all, and each tile's last block adds the slices in the
    order of 8 lanes, lane l taking slices l, l + 8, ... On a GPU the target is 1,024
    blocks; the host's lowered target (8) never gives a lane a second slice. Raised to 64 here, the
    1,188 columns (n, t) of this case are split into more than 8 slices (checked on the
    launch), so some lanes add two."""
    conv = importlib.import_module("kernels.conv1d.cupy_cuda")
    host.setattr(conv, "_TARGET_BLOCKS", target)
    grids = []
    host_kernel = conv.kernel

    def kernel(source, names, name, dtype):       # records the weight gradient's grid
        fn = host_kernel(source, names, name, dtype)
        if name != "conv1d_bwd_weight":
            return fn

        def launch(grid, block, args, shared_mem=0):
            grids.append(tuple(grid))
            return fn(grid, block, args, shared_mem=shared_mem)
        return launch

    host.setattr(conv, "kernel", kernel)
    rng = np.random.default_rng(target)
    p = dict(stride=1, padding_left=1, padding_right=0, dilation=2)
    x = rng.standard_normal((4, 2, 300))
    w = rng.standard_normal((3, 2, 3))
    b = rng.standard_normal(3)
    y = cuda("conv1d").fwd(x, w, b, **p)
    assert rel_err(y, ref("conv1d").fwd(x, w, b, **p)) <= 1e-12, "y"
    gy = rng.standard_normal(y.shape)
    grads = cuda("conv1d").bwd(gy, x, w, **p)
    assert len(grids) == 1 and grids[0][2] >= min_slices, grids
    for name, got, want in zip(("gx", "gw", "gb"), grads, ref("conv1d").bwd(gy, x, w, **p)):
        assert rel_err(got, want) <= 1e-12, name
