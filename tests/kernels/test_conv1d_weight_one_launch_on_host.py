"""conv1d's weight gradient in one launch, on the host emulator (tests/cuda_host.py): every
block of ``conv1d_bwd_weight`` writes the partial sums of its slice of the (n, t)
reduction, and the last block of each tile to draw a ticket adds the tile's slices up.

The oracle for the bits is the two-kernel path it replaced: ``OLD_SUM`` below is that
path's second kernel, ``conv1d_sum_partials``, as it was, run here on the very partial
sums the fused launch wrote; the fused gw and gb must equal its output bit for bit. The
values are checked against the NumPy reference too, and the bits must not change when the
blocks run (and so finish) in another order. The atomics and the block orders of the
emulator itself are checked first, on a small kernel with known answers.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import kernels
from kernels import _splitk_cuda as splitk
from tests._util import bound, rel_err
from tests.conftest import HOST_CUDA
from tests.cuda_host import (
    HostModule,
    block_order,
    default_cache,
    patch_kernels,
    supports,
    thread_order,
)

pytestmark = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")

# conv1d_sum_partials of the two-kernel path, verbatim: block (32, 8) threads; entry e of
# (gw, gb) flattened; lane threadIdx.y adds part[z, e] for z = lane, lane + 8, ... in order,
# then lane 0 adds the 8 lane sums in order.
OLD_SUM = r"""
template <typename T>
__global__ void conv1d_sum_partials(const T* __restrict__ part, T* __restrict__ gw,
                                    T* __restrict__ gb, int splits, int OR, int O)
{
    __shared__ T lanes[8][32];
    const int e = blockIdx.x * 32 + threadIdx.x, lane = threadIdx.y;
    const int count = OR + O;
    T s = T(0);
    if (e < count)
        for (int z = lane; z < splits; z += 8) s += part[(long long)z * count + e];
    lanes[lane][threadIdx.x] = s;
    __syncthreads();
    if (lane == 0 && e < count) {
        T total = T(0);
#pragma unroll
        for (int l = 0; l < 8; ++l) total += lanes[l][threadIdx.x];
        if (e < OR) gw[e] = total;
        else gb[e - OR] = total;
    }
}
"""

ATOMICS_DEMO = r"""
// Thread -> index map: thread i = blockIdx.x*blockDim.x + threadIdx.x < n adds to every
// counter; thread 0 of each block writes its block index at the ticket it draws.
template <typename T>
__global__ void atomics_demo(T* sum, int* isum, unsigned* usum, unsigned long long* lsum,
                             unsigned* wrap, int* first, int* order, int* ticket, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        atomicAdd(sum, T(i) * T(0.5));
        atomicAdd(isum, -i);
        atomicAdd(usum, 2u);
        atomicAdd(lsum, 1ull << 33);
        atomicInc(wrap, 4u);                 // counts 0, 1, .., 4, 0, ...
        atomicCAS(first, 0, i + 1);          // the first thread to arrive leaves its mark
    }
    __threadfence();
    if (threadIdx.x == 0) order[atomicAdd(ticket, 1)] = blockIdx.x;
}
"""


def _demo(dtype, order):
    fn = HostModule(ATOMICS_DEMO, default_cache()).function("atomics_demo", dtype)
    n, nb, bd = 45, 6, 8
    out = dict(sum=np.zeros(1, dtype), isum=np.zeros(1, np.int32),
               usum=np.zeros(1, np.uint32), lsum=np.zeros(1, np.uint64),
               wrap=np.zeros(1, np.uint32), first=np.zeros(1, np.int32),
               order=np.full(nb, -1, np.int32), ticket=np.zeros(1, np.int32))
    with block_order(order):
        fn((nb,), (bd,), (*out.values(), np.int32(n)))
    return out, n, nb, bd


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["forward", "reverse", 5])
def test_emulated_atomics_are_exact_and_blocks_run_in_the_order_asked(dtype, order):
    out, n, nb, bd = _demo(dtype, order)
    assert out["sum"][0] == 0.5 * n * (n - 1) / 2
    assert out["isum"][0] == -n * (n - 1) // 2
    assert out["usum"][0] == 2 * n and out["lsum"][0] == n << 33
    assert out["wrap"][0] == n % 5
    assert out["ticket"][0] == nb
    seen = out["order"].tolist()
    assert sorted(seen) == list(range(nb))
    if order == "forward":
        assert seen == list(range(nb)) and out["first"][0] == 1
    elif order == "reverse":
        assert seen == list(range(nb))[::-1]
        assert out["first"][0] == (nb - 1) * bd + 1       # block nb-1's thread 0 came first
    else:
        assert seen != list(range(nb)) and seen != list(range(nb))[::-1]
        assert seen == _demo(dtype, order)[0]["order"].tolist()    # a seed is a fixed order


def test_the_emulator_takes_the_atomics_it_models_and_refuses_the_rest():
    assert supports("atomicAdd(p, 1); atomicCAS(q, 0, 1); atomicInc(u, 3u); __threadfence();")
    assert supports("// no atomics in this comment")
    for other in ("atomicAnd(p, 1)", "atomicAdd_block(p, 1)", "__ballot_sync(~0u, 1)"):
        assert not supports(other), other
    with pytest.raises(ValueError), block_order("backwards"):
        pass


# --------------------------------------------------------------------- the weight gradient

@pytest.fixture
def host(monkeypatch):
    """The ``cupy_cuda`` kernel modules on the host (thresholds lowered), with every launch
    of conv1d_bwd_weight recorded as (grid, args)."""
    patch_kernels(monkeypatch)
    conv = importlib.import_module("kernels.conv1d.cupy_cuda")
    host_kernel = conv.kernel
    launches = []

    def kernel(source, names, name, dtype):
        fn = host_kernel(source, names, name, dtype)
        if name != "conv1d_bwd_weight":
            return fn

        def launch(grid, block, args, shared_mem=0):
            launches.append((tuple(grid), args))
            return fn(grid, block, args, shared_mem=shared_mem)
        return launch

    monkeypatch.setattr(conv, "kernel", kernel)
    return monkeypatch, conv, launches


#: (N, C, L, O, K, stride, padding_left, padding_right, dilation, _TARGET_BLOCKS, slices
#: expected, tiles expected): one slice; more slices than the old kernel's 8 lanes; two
#: row and two column tiles (O = 70, C*K = 65) with strides, padding and dilation
CASES = [
    (1, 2, 10, 3, 3, 1, 0, 0, 1, 8, 1, 1),
    (4, 2, 300, 3, 3, 1, 1, 0, 2, 64, 10, 1),
    (3, 5, 101, 70, 13, 1, 2, 1, 1, 64, 3, 4),
    (2, 13, 160, 70, 5, 2, 3, 2, 2, 8, 2, 4),
]


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _inputs(case, dtype, rng):
    N, C, L, O, K, S, pl, pr, d = case[:9]
    x = rng.standard_normal((N, C, L)).astype(dtype)
    w = rng.standard_normal((O, C, K)).astype(dtype)
    Lo = (L + pl + pr - d * (K - 1) - 1) // S + 1
    gy = rng.standard_normal((N, O, Lo)).astype(dtype)
    return x, w, gy, (S, pl, pr, d)


def _old_sum(part, O, R, dtype):
    fn = HostModule(OLD_SUM, default_cache()).function("conv1d_sum_partials", dtype)
    gw, gb = np.empty(O * R, dtype), np.empty(O, dtype)
    fn((-(-(O * R + O) // 32),), (32, 8),
       (part, gw, gb, np.int32(part.shape[0]), np.int32(O * R), np.int32(O)))
    return gw, gb


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["plain", "relu", "transposed view"])
def test_one_launch_weight_gradient_is_bitwise_the_two_kernel_sum(host, case, dtype, layout):
    mp, conv, launches = host
    mp.setattr(conv, "_TARGET_BLOCKS", case[9])
    rng = np.random.default_rng(sum(case))
    x, w, gy, p = _inputs(case, dtype, rng)
    O, C, K = w.shape
    y = None
    if layout == "relu":                          # conv1d_relu's mask: half the outputs
        y = np.where(rng.random(gy.shape) < 0.5, 1.0, 0.0).astype(dtype)
    xv = x
    if layout == "transposed view":               # read in place through its strides
        xv = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
    gx, gw, gb = conv.backward(gy, xv, w, y, *p, need_gx=False)
    assert gx is None and len(launches) == 1
    grid, args = launches[0]
    assert grid[2] == case[10] and grid[0] * grid[1] == case[11], grid
    part, tickets = args[3], args[6]
    assert not tickets.any(), "a ticket counter was left non-zero"
    old_gw, old_gb = _old_sum(part, O, C * K, dtype)
    np.testing.assert_array_equal(_bits(gw).ravel(), _bits(old_gw))
    np.testing.assert_array_equal(_bits(gb), _bits(old_gb))
    g = gy if y is None else gy * (y > 0)
    _, want_gw, want_gb = kernels.get("conv1d", "numpy").bwd(
        g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride=p[0],
        padding_left=p[1], padding_right=p[2], dilation=p[3])
    terms = g.shape[0] * g.shape[2]
    assert rel_err(gw, want_gw) <= bound(dtype, "sum", terms), "gw"
    assert rel_err(gb, want_gb) <= bound(dtype, "sum", terms), "gb"


@pytest.mark.parametrize("case", CASES[1:])
def test_weight_gradient_bits_do_not_depend_on_block_or_thread_order(host, case):
    mp, conv, launches = host
    mp.setattr(conv, "_TARGET_BLOCKS", case[9])
    x, w, gy, p = _inputs(case, np.float32, np.random.default_rng(3))
    results = {}
    # (block order, thread order): the blocks' order decides which one draws the last
    # ticket; the threads' order whether a thread reads the block's ticket before thread 0
    # wrote it (a missing barrier)
    for order in (("forward", "forward"), ("reverse", "forward"), (2, "forward"),
                  (9, "forward"), ("forward", "reverse"), ("reverse", 5)):
        with block_order(order[0]), thread_order(order[1]):
            _, gw, gb = conv.backward(gy, x, w, None, *p, need_gx=False)
        assert not launches[-1][1][6].any(), order
        results[order] = (_bits(gw), _bits(gb))
    first = results[("forward", "forward")]
    for order, (gw, gb) in results.items():
        np.testing.assert_array_equal(gw, first[0], err_msg=str(order))
        np.testing.assert_array_equal(gb, first[1], err_msg=str(order))


def test_ticket_buffer_is_reused_and_grows_keeping_the_old_one(host):
    mp, conv, launches = host
    mp.setattr(splitk, "_MIN_TICKETS", 1)
    mp.setattr(splitk, "_tickets", {})
    mp.setattr(splitk, "_retired", [])
    rng = np.random.default_rng(4)
    got = []
    for case in (CASES[0], CASES[0], CASES[2]):   # one tile twice, then four tiles
        mp.setattr(conv, "_TARGET_BLOCKS", case[9])
        x, w, gy, p = _inputs(case, np.float64, rng)
        _, gw, gb = conv.backward(gy, x, w, None, *p)
        _, want_gw, want_gb = kernels.get("conv1d", "numpy").bwd(
            gy, x, w, stride=p[0], padding_left=p[1], padding_right=p[2], dilation=p[3])
        assert rel_err(gw, want_gw) <= 1e-12 and rel_err(gb, want_gb) <= 1e-12
        got.append(launches[-1][1][6])
    assert got[0] is got[1] and got[0].size == 1
    assert got[2].size == 4 and not got[2].any()
    assert splitk._retired == [got[0]]
