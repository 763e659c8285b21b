"""The parts of data-parallel training that need neither MPI nor a GPU: the bucketed flat
buffer (layout, shard weights, missing gradients, no aliasing), the shards, and the NCCL
transport's logic with host stand-ins for cupy and NCCL (NCCL itself is not run here)."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np
import pytest

from minimtl.distributed import DistributedError, GradientBuckets, shard_bounds
from minimtl.distributed.nccl import NcclTransport, device_for, nccl_dtype


def _params(shapes, dtype=np.float64, backend="numpy", seed=0):
    rng = np.random.default_rng(seed)
    return [SimpleNamespace(shape=s, size=int(np.prod(s)), dtype=np.dtype(dtype),
                            backend=backend, grad=rng.normal(size=s).astype(dtype))
            for s in shapes]


def test_buckets_close_at_parameter_boundaries_and_cover_the_buffer():
    params = _params([(3, 4), (5,), (40,), (2,), (2, 2)])        # 12, 5, 40, 2, 4
    b = GradientBuckets(params, bucket_bytes=16 * 8)              # 16 float64
    assert b.slices == [(0, 12), (12, 17), (17, 57), (57, 59), (59, 63)]
    assert b.buckets == [(0, 17), (17, 57), (57, 63)]             # 40 alone: larger
    assert b.bucket_of == [0, 0, 1, 2, 2]
    assert b.size == 63 and b.nbytes == 63 * 8
    one = GradientBuckets(params, bucket_bytes=1 << 20)
    assert one.buckets == [(0, 63)] and one.bucket_of == [0] * 5


def test_packing_weighs_by_the_shard_and_unpacking_copies():
    params = _params([(3, 4), (5,), (2, 3)])
    grads = [p.grad.copy() for p in params]
    b = GradientBuckets(params, bucket_bytes=40)
    for k in range(len(b.buckets)):
        b.pack(np, k, 0.25)
    flat = b.flat(np)
    np.testing.assert_array_equal(flat, np.concatenate([0.25 * g.ravel() for g in grads]))
    flat *= 2                                     # "the other rank had the same"
    b.unpack(np, np.array([2.0, 2.0, 2.0]))
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, 0.5 * g)
        assert not np.shares_memory(p.grad, flat)
    assert [p.grad.shape for p in params] == [(3, 4), (5,), (2, 3)]


def test_a_missing_gradient_packs_zeros_and_stays_none_only_where_no_rank_had_one():
    params = _params([(2,), (3,)])
    params[1].grad = None
    b = GradientBuckets(params)
    np.testing.assert_array_equal(b.present(), [1.0, 0.0])
    b.pack(np, 0, 1.0)
    np.testing.assert_array_equal(b.flat(np)[2:], 0.0)
    b.unpack(np, np.array([2.0, 1.0]))            # another rank had the second one
    assert params[1].grad is not None
    b.unpack(np, np.array([2.0, 0.0]))
    assert params[1].grad is None


def test_buckets_refuse_mixed_dtypes_or_backends():
    mixed = _params([(2,)]) + _params([(2,)], dtype=np.float32)
    with pytest.raises(ValueError, match="several dtypes/backends"):
        GradientBuckets(mixed)
    with pytest.raises(ValueError, match="no parameters"):
        GradientBuckets([])


@pytest.mark.parametrize("n, size", [(15, 2), (4, 2), (1, 2), (7, 3), (0, 2), (10, 4)])
def test_shards_are_contiguous_disjoint_and_cover_the_batch(n, size):
    bounds = [shard_bounds(n, size, r) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1


# --- the NCCL transport with host stand-ins ---------------------------------------------
class _Stream:
    def __init__(self, non_blocking=False, done=True):
        self.ptr, self.done, self.waited = 1234, done, []

    def wait_event(self, event):
        self.waited.append(event)

    def record(self):
        return "packed"


class _Nccl:
    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 7, 8, 0

    def __init__(self, ranks_alike: int):
        self.ranks_alike, self.calls, self.aborted = ranks_alike, [], False
        nccl = self

        class NcclCommunicator:
            def __init__(self, size, uid, rank):
                nccl.joined = (size, uid, rank)

            def allReduce(self, send, recv, count, dtype, op, stream):
                assert send == recv and op == nccl.NCCL_SUM and stream == 1234
                nccl.calls.append((send, count, dtype))
                kind = {nccl.NCCL_FLOAT64: ctypes.c_double, nccl.NCCL_FLOAT32: ctypes.c_float}
                view = np.ctypeslib.as_array((kind[dtype] * count).from_address(send))
                view *= nccl.ranks_alike          # every rank had the same gradients

            def abort(self):
                nccl.aborted = True

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        return (1, 2, 3)


def _cupy(devices: int, stream_done: bool = True):
    used = []
    cuda = SimpleNamespace(
        runtime=SimpleNamespace(getDeviceCount=lambda: devices),
        Device=lambda i: SimpleNamespace(use=lambda: used.append(i)),
        Stream=lambda non_blocking=False: _Stream(done=stream_done),
        get_current_stream=lambda: _Stream())
    return SimpleNamespace(cuda=cuda, empty=np.empty, multiply=np.multiply, used=used)


class _Group:
    """One rank of two on a node, with ``ProcessGroup``'s wait (a 0.05 s deadline)."""

    MPI = SimpleNamespace(COMM_TYPE_SHARED=1)
    size, rank, is_root = 2, 1, False

    def __init__(self):
        self.comm = SimpleNamespace(Split_type=lambda kind: SimpleNamespace(
            Get_rank=lambda: 1, Free=lambda: None))

    def broadcast_object(self, obj, what):
        return (1, 2, 3)                  # rank 0's id

    def wait(self, pending, what):
        import time

        end = time.monotonic() + 0.05
        while not pending.done():
            if time.monotonic() > end:
                raise DistributedError(f"waited for {what}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nccl_transport_reduces_each_bucket_in_place_on_the_rank_s_gpu(dtype):
    cupy, nccl = _cupy(devices=2), _Nccl(ranks_alike=2)
    t = NcclTransport(_Group(), cupy=cupy, nccl=nccl)
    assert cupy.used == [1] and t.device == 1 and nccl.joined == (2, (1, 2, 3), 1)
    params = _params([(3, 4), (5,), (40,)], dtype=dtype, backend="cupy")
    grads = [p.grad.copy() for p in params]
    b = GradientBuckets(params, bucket_bytes=16 * np.dtype(dtype).itemsize)
    t.allreduce_buckets(_Group(), b, weight=0.25)
    base, item = b.flat(np).ctypes.data, np.dtype(dtype).itemsize
    code = nccl.NCCL_FLOAT32 if dtype == np.float32 else nccl.NCCL_FLOAT64
    assert nccl.calls == [(base + lo * item, hi - lo, code) for lo, hi in b.buckets]
    assert t.stream.waited == ["packed"] * len(b.buckets)
    b.unpack(np, np.array([2.0] * 3))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, 0.5 * g, rtol=1e-6)


def test_nccl_transport_aborts_its_communicator_past_the_deadline():
    cupy, nccl = _cupy(devices=2, stream_done=False), _Nccl(ranks_alike=2)
    t = NcclTransport(_Group(), cupy=cupy, nccl=nccl)
    b = GradientBuckets(_params([(4,)], backend="cupy"))
    with pytest.raises(DistributedError, match="NCCL gradient all-reduce"):
        t.allreduce_buckets(_Group(), b, weight=0.5)
    assert nccl.aborted


def test_nccl_transport_errors():
    with pytest.raises(RuntimeError, match="no GPU of its own .2 on the node"):
        device_for(2, 2)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device_for(0, 0)
    with pytest.raises(RuntimeError, match="rank 1 of its node has no GPU"):
        NcclTransport(_Group(), cupy=_cupy(devices=1), nccl=_Nccl(1))
    with pytest.raises(TypeError, match="float16"):
        nccl_dtype(_Nccl(1), np.dtype(np.float16))
    t = NcclTransport(_Group(), cupy=_cupy(devices=2), nccl=_Nccl(1))
    with pytest.raises(RuntimeError, match="numpy backend"):
        t.allreduce_buckets(_Group(), GradientBuckets(_params([(2,)])), 1.0)
