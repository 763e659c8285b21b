"""The order in which the host emulator runs a block's threads (tests/cuda_host.py,
``thread_order``), and every CUDA kernel family's bits under the other orders.

The emulator runs a cooperative block round by round, each thread to its next barrier in
turn. In the natural order a missing ``__syncthreads()`` between a write to shared memory
and another thread's read of it goes unseen whenever the writer runs first; reversed and
shuffled orders put the reader first. A kernel free of such races gives the same bits in
every order (none of these kernels adds floats in an order the threads' timing decides),
so the families' forward and backward are compared bit for bit across orders. (Shared
memory also starts every block poisoned, as garbage does on a GPU: a test below.)
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import kernels
from minimtl.bench import kernel_cases
from tests.conftest import HOST_CUDA
from tests.cuda_host import HostModule, default_cache, patch_kernels, thread_order

pytestmark = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")

# Thread i writes its value to shared memory and then reads its left neighbour's: with the
# barrier (sync = 1) every order gives out[i] = in[i - 1]; without it, a thread that runs
# before its neighbour reads what the slot held before.
RACE_DEMO = r"""
template <typename T>
__global__ void neighbour(const T* in, T* out, int sync)
{
    __shared__ T s[64];
    const int i = threadIdx.x;
    s[i] = T(-1);                        // what a reader sees if it comes too early
    __syncthreads();
    s[i] = in[i];
    if (sync) __syncthreads();
    out[i] = s[i == 0 ? blockDim.x - 1 : i - 1];
    __syncthreads();
}
"""


def _neighbour(order, sync):
    fn = HostModule(RACE_DEMO, default_cache()).function("neighbour", np.float64)
    x = np.arange(1.0, 33.0)
    out = np.zeros_like(x)
    with thread_order(order):
        fn((1,), (x.size,), (x, out, np.int32(sync)))
    return x, out


@pytest.mark.parametrize("order", ["forward", "reverse", 3])
def test_with_its_barrier_the_demo_reads_every_neighbour_in_every_order(order):
    x, out = _neighbour(order, sync=1)
    np.testing.assert_array_equal(out, np.roll(x, 1))


def test_a_missing_barrier_hides_in_the_natural_order_and_shows_in_the_others():
    x, want = np.arange(1.0, 33.0), np.roll(np.arange(1.0, 33.0), 1)
    _, forward = _neighbour("forward", sync=0)
    # natural order: every thread but 0 runs after its left neighbour, so only thread 0
    # (whose neighbour is the last thread) reads too early
    assert (forward != want).sum() == 1 and forward[0] == -1
    _, reverse = _neighbour("reverse", sync=0)
    assert (reverse[1:] == -1).all() and reverse[0] == x[-1]   # every other thread too early
    _, shuffled = _neighbour(5, sync=0)
    assert 1 < (shuffled != want).sum() < x.size - 1


# Block 0 fills shared memory and every block reads it: on a GPU block 1 reads garbage (its
# own, unwritten shared memory); the emulator's shared arrays are one static copy, so
# without poisoning block 1 would read block 0's values and look right.
STALE_DEMO = r"""
template <typename T>
__global__ void stale(const T* in, T* out)
{
    __shared__ T s[32];
    const int i = threadIdx.x;
    if (blockIdx.x == 0) s[i] = in[i];
    __syncthreads();
    out[blockIdx.x * 32 + i] = s[i];
}
"""


def test_shared_memory_starts_every_block_as_garbage_not_as_the_last_blocks_values():
    fn = HostModule(STALE_DEMO, default_cache()).function("stale", np.float32)
    x, out = np.arange(1.0, 33.0, dtype=np.float32), np.zeros(64, np.float32)
    fn((2,), (32,), (x, out))
    np.testing.assert_array_equal(out[:32], x)
    assert np.isnan(out[32:]).all()


def test_thread_order_takes_the_orders_block_order_takes():
    with pytest.raises(ValueError, match="thread_order"), thread_order("backwards"):
        pass
    with pytest.raises(ValueError, match="thread_order"), thread_order(-1):
        pass


def _bits(outputs) -> list[bytes]:
    flat = []
    for o in outputs:
        for a in (o if isinstance(o, tuple) else (o,)):
            if a is not None:
                flat.append(np.ascontiguousarray(a).tobytes())
    return flat


@pytest.mark.parametrize("op", kernels.OPS)   # every one runs on the host (test_cuda_on_host)
def test_every_family_gives_the_same_bits_whatever_order_a_blocks_threads_run_in(
        monkeypatch, op):
    patch_kernels(monkeypatch)                   # thresholds lowered: every path, > 1 block
    mod = importlib.import_module(f"kernels.{op}.cupy_cuda")
    for case in kernel_cases(op, 5, seq_len=12, features=3):
        a = {k: v.astype(np.float32) if v.dtype.kind == "f" else v
             for k, v in case.arrays.items()}
        runs = {}
        for order in ("forward", "reverse", 11):
            with thread_order(order):
                out = case.fwd(mod, a)
                runs[order] = _bits((out, case.bwd(mod, a, out)))
        for order in ("reverse", 11):
            assert runs[order] == runs["forward"], f"{op} {case.shape}: {order}"
