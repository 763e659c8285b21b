"""The NCCL transport: data-parallel training on the cupy backend, one GPU per rank, the
gradient buckets all-reduced on the device (``cupy.cuda.nccl``).

NOT YET RUN ON A GPU. The host-checkable parts (the device each rank takes, the NCCL
dtype, one ``allReduce`` per bucket over exactly its elements, waiting with the group's
deadline) are tested on the CPU with stand-ins for cupy and NCCL
(tests/distributed/test_buckets_and_nccl_on_host.py); NCCL itself, CUDA streams and
several GPUs are not.

How it works, per step:

1. Each rank takes the GPU numbered by its rank among the ranks of its node
   (``MPI.COMM_TYPE_SHARED``); fewer GPUs than ranks on a node is an error.
2. Rank 0 draws the NCCL unique id; MPI broadcasts it; every rank joins one
   ``NcclCommunicator(size, id, rank)`` (MPI stays the launcher and the side channel for
   faults and the small vector of loss sums).
3. Each bucket is packed on the current stream (``weight · grad``, see ``buckets``); an
   event makes the NCCL stream wait for the packing, and ``allReduce`` sums the bucket in
   place on that stream, so bucket k is reduced while bucket k+1 is packed.
4. The rank polls the NCCL stream with the group's deadline (``ProcessGroup.wait``); past
   it, the communicator is aborted (``NcclCommunicator.abort``) so no kernel spins forever,
   and the ``DistributedError`` names the silent ranks.
"""

from __future__ import annotations

__all__ = ["NcclTransport", "device_for", "nccl_dtype"]


def device_for(local_rank: int, devices: int) -> int:
    """The GPU of the rank that is ``local_rank``-th on its node, among ``devices``."""
    if devices < 1:
        raise RuntimeError("NCCL transport: no CUDA device on this node")
    if not 0 <= local_rank < devices:
        raise RuntimeError(f"NCCL transport: rank {local_rank} of its node has no GPU of its "
                           f"own ({devices} on the node; one GPU per rank: start at most "
                           f"{devices} ranks per node)")
    return local_rank


def nccl_dtype(nccl, dtype) -> int:
    """NCCL's code for a float32 or float64 buffer."""
    name = getattr(dtype, "name", str(dtype))
    codes = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
    if name not in codes:
        raise TypeError(f"NCCL transport: gradients of dtype {name}; float32 or float64 only")
    return codes[name]


def _pointer(a) -> int:
    """The device address of a cupy array (a host address for the host stand-in)."""
    return a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data


class _StreamDone:
    """What ``ProcessGroup.wait`` polls: has the stream finished its work?"""

    def __init__(self, stream) -> None:
        self.stream = stream

    def done(self) -> bool:
        return bool(self.stream.done)


class NcclTransport:
    """All-reduces the gradient buckets of a ``ProcessGroup`` with NCCL on the device.

    ``cupy`` and ``nccl`` default to the real modules; the tests pass host stand-ins.
    """

    def __init__(self, group, *, cupy=None, nccl=None):
        if cupy is None:
            import cupy
        if nccl is None:
            from cupy.cuda import nccl
        self.cupy, self.nccl = cupy, nccl
        local = group.comm.Split_type(group.MPI.COMM_TYPE_SHARED)
        self.device = device_for(local.Get_rank(), cupy.cuda.runtime.getDeviceCount())
        local.Free()
        cupy.cuda.Device(self.device).use()
        uid = nccl.get_unique_id() if group.is_root else None
        uid = group.broadcast_object(uid, "the broadcast of the NCCL unique id")
        self.comm = nccl.NcclCommunicator(group.size, uid, group.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def allreduce_buckets(self, group, buckets, weight: float) -> None:
        """Σ over the ranks of every bucket of ``buckets`` (packed with ``weight``), in
        place in its flat device buffer; returns when the sums are there."""
        from .group import DistributedError

        if buckets.backend != "cupy":
            raise RuntimeError(f"NCCL transport: the parameters are on the {buckets.backend} "
                               f"backend; NCCL reduces cupy (GPU) arrays")
        code = nccl_dtype(self.nccl, buckets.dtype)
        for k in range(len(buckets.buckets)):
            part = buckets.pack(self.cupy, k, weight)
            packed = self.cupy.cuda.get_current_stream().record()
            self.stream.wait_event(packed)
            self.comm.allReduce(_pointer(part), _pointer(part), part.size, code,
                                self.nccl.NCCL_SUM, self.stream.ptr)
        try:
            group.wait(_StreamDone(self.stream), "the NCCL gradient all-reduce")
        except DistributedError:
            self.comm.abort()        # release the kernels waiting for the silent ranks
            raise
