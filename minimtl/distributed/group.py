"""``ProcessGroup``: the ranks of one data-parallel run over MPI, and what they do together.

Every collective here is non-blocking underneath (``Iallreduce``, ``Ibcast``,
``Iallgather``...) and waited for by polling with a deadline, so that no rank can hang:

- while it waits, a rank reads the side channel (a duplicate of the communicator, never
  used for collectives) for *fault notices*: a rank whose code raises sends one to every
  other rank (``notify_failure``) before its exception goes on, and the others raise
  ``DistributedError("rank 1 failed: ...")`` at their next wait;
- past ``timeout`` seconds, the rank pings the others on the side channel (a waiting rank
  answers pings) and raises ``DistributedError`` naming the ranks that did not answer
  (dead, or stuck outside a collective).

After a failure the collectives in flight cannot be cancelled: each rank says why, then
calls ``leave``, which waits (a few seconds at most) until every live rank is leaving too
and ends the process without ``MPI_Finalize``; ``mpiexec`` then ends the job. A rank killed
outright (``SIGKILL``, out of memory) makes ``mpiexec`` end every rank at once, naming the
dead process's PID and signal; started with ``-disable-auto-cleanup``, the survivors name
it themselves when their deadline passes.
"""

from __future__ import annotations

import os
import pickle
import sys
import time

import numpy as np

__all__ = ["ProcessGroup", "DistributedError", "shard_bounds"]

_FAULT, _PING, _PONG, _LEAVE = 101, 102, 103, 104
_SPIN_S = 0.005


class DistributedError(RuntimeError):
    """Another rank failed, died or stopped answering; this rank stopped too."""


def shard_bounds(n: int, size: int, rank: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share ``[lo, hi)`` of n rows: ``n·r // size`` to
    ``n·(r+1) // size`` (sizes differ by at most one; a rank may get none when n < size)."""
    return n * rank // size, n * (rank + 1) // size


class ProcessGroup:
    """The data-parallel ranks of an MPI communicator.

    Parameters
    ----------
    comm           an mpi4py communicator (default ``MPI.COMM_WORLD``)
    timeout        seconds any collective may wait before the ranks that do not answer are
                   named in a ``DistributedError``
    bucket_bytes   gradient bucket size of the all-reduce (``GradientBuckets``)
    transport      what all-reduces the gradients: None for MPI itself, or an
                   ``NcclTransport`` (GPU tensors, on the device)
    overlap        start each bucket's all-reduce during the backward walk, as soon as
                   its gradients are complete (``overlap``; MPI transport only)
    """

    def __init__(self, comm=None, *, timeout: float = 120.0, bucket_bytes: int = 4 << 20,
                 transport=None, overlap: bool = True):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.side = self.comm.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)    # the ranks of this node
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        if not timeout > 0:
            raise ValueError(f"ProcessGroup: timeout must be > 0 seconds, got {timeout}")
        self.timeout = float(timeout)
        self.bucket_bytes = int(bucket_bytes)
        self.transport = transport
        self.overlap = bool(overlap)
        self._buckets = None
        self._notified = False
        self.allreduce_s = 0.0       # time spent in gradient all-reduces (measurements)
        self.buckets_early = 0       # of them, buckets started during the backward walk
        self.buckets_total = 0

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return f"ProcessGroup(rank {self.rank} of {self.size}, timeout {self.timeout:g} s)"

    # --- waiting with a deadline -----------------------------------------------------
    def _serve(self, what: str) -> None:
        """Answer pings; raise on a fault notice."""
        MPI, status = self.MPI, self.MPI.Status()
        while self.side.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            src, tag = status.Get_source(), status.Get_tag()
            msg = self.side.recv(source=src, tag=tag)
            if tag == _PING:
                self.side.isend(None, dest=src, tag=_PONG)
            elif tag == _FAULT:
                raise DistributedError(f"rank {src} of {self.size} failed ({msg}); rank "
                                       f"{self.rank} stopped during {what}")

    def wait(self, requests, what: str) -> None:
        """Wait for MPI requests (or a transport's pending work) with the deadline."""
        start = time.monotonic()
        while not self._test(requests, what):
            self._serve(what)
            waited = time.monotonic() - start
            if waited > self.timeout:
                raise DistributedError(self._silent_message(what))
            # spin through the usual skew between ranks (a sleeping rank gives its core
            # away and gets it back late: measured 1 ms a step on 2 shared cores), then
            # leave the core to a rank that is still computing
            if waited > _SPIN_S:
                time.sleep(2e-4)

    def _test(self, requests, what: str) -> bool:
        try:
            return requests.done() if hasattr(requests, "done") else \
                self.MPI.Request.Testall(requests)
        except self.MPI.Exception as e:     # MPI noticed a dead peer itself
            raise DistributedError(f"{self._silent_message(what)} (MPI: "
                                   f"{e.Get_error_string()})") from None

    def _silent_message(self, what: str) -> str:
        MPI = self.MPI
        others = [r for r in range(self.size) if r != self.rank]
        for r in others:
            self.side.isend(None, dest=r, tag=_PING)
        answered, status = set(), MPI.Status()
        deadline = time.monotonic() + min(2.0, self.timeout)   # a waiting rank answers at once
        while time.monotonic() < deadline and len(answered) < len(others):
            if self.side.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                msg = self.side.recv(source=src, tag=tag)
                if tag == _PONG:
                    answered.add(src)
                elif tag == _PING:
                    self.side.isend(None, dest=src, tag=_PONG)
                elif tag == _FAULT:
                    return f"rank {src} of {self.size} failed ({msg}); rank {self.rank} " \
                           f"stopped during {what}"
            else:
                time.sleep(1e-3)
        silent = [r for r in others if r not in answered]
        who = (f"rank(s) {', '.join(map(str, silent))} did not answer (dead, or stuck "
               f"outside the collective)" if silent else
               "every rank answers, but the collective did not complete (ranks calling "
               "different collectives?)")
        return f"rank {self.rank} of {self.size} waited {self.timeout:g} s for {what}: {who}"

    def notify_failure(self, exc: BaseException) -> None:
        """Tell every other rank that this one failed, and wait (up to 10 s) until each has
        received the notice: a rank that exits first could take the others down with it
        before they said why."""
        if isinstance(exc, (DistributedError, KeyboardInterrupt)) or self.size == 1 \
                or self._notified:
            return      # a consequence of another rank's failure; Ctrl-C reaches every rank
        self._notified = True
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        requests = [self.side.issend(text, dest=r, tag=_FAULT) for r in range(self.size)
                    if r != self.rank]
        deadline = time.monotonic() + min(10.0, self.timeout)
        while not self.MPI.Request.Testall(requests) and time.monotonic() < deadline:
            try:
                self._serve("its failure notice")
            except DistributedError:
                pass                 # another rank failed too: keep telling the rest
            time.sleep(1e-3)

    def leave(self, code: int) -> None:
        """After a failure: wait up to 2 s until every other rank is leaving too (so each
        has printed why), then end this process with ``code``, without ``MPI_Finalize``."""
        sys.stdout.flush()
        sys.stderr.flush()
        MPI, status = self.MPI, self.MPI.Status()
        for r in range(self.size):
            if r != self.rank:
                self.side.isend(None, dest=r, tag=_LEAVE)
        leaving, deadline = set(), time.monotonic() + 2.0
        while len(leaving) < self.size - 1 and time.monotonic() < deadline:
            while self.side.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                src, tag = status.Get_source(), status.Get_tag()
                self.side.recv(source=src, tag=tag)
                if tag == _LEAVE:
                    leaving.add(src)
                elif tag == _PING:
                    self.side.isend(None, dest=src, tag=_PONG)
            time.sleep(1e-3)
        os._exit(code)

    # --- collectives -------------------------------------------------------------------
    def allreduce(self, x: np.ndarray, what: str = "an all-reduce") -> np.ndarray:
        """Σ over the ranks of a host array, in place; returns it."""
        x = np.ascontiguousarray(x)
        if self.size > 1:
            self.wait([self.comm.Iallreduce(self.MPI.IN_PLACE, x)], what)
        return x

    def barrier(self, what: str = "the final barrier") -> None:
        if self.size > 1:
            self.wait([self.comm.Ibarrier()], what)

    def broadcast_object(self, obj, what: str = "a broadcast"):
        """Rank 0's picklable ``obj`` on every rank."""
        if self.size == 1:
            return obj
        data = pickle.dumps(obj) if self.is_root else b""
        n = np.array([len(data)], dtype=np.int64)
        self.wait([self.comm.Ibcast(n, root=0)], what)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.is_root else \
            np.empty(int(n[0]), dtype=np.uint8)
        self.wait([self.comm.Ibcast(buf, root=0)], what)
        return obj if self.is_root else pickle.loads(buf.tobytes())

    def allgather_object(self, obj, what: str = "a gather") -> list:
        """Every rank's picklable ``obj``, in rank order, on every rank."""
        if self.size == 1:
            return [obj]
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8).copy()
        counts = np.zeros(self.size, dtype=np.int64)
        self.wait([self.comm.Iallgather(np.array([data.size], dtype=np.int64), counts)], what)
        out = np.empty(int(counts.sum()), dtype=np.uint8)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.wait([self.comm.Iallgatherv(data, [out, counts, offsets, self.MPI.BYTE])], what)
        return [pickle.loads(out[o:o + c].tobytes()) for o, c in zip(offsets, counts)]

    def broadcast_parameters(self, params) -> None:
        """Every rank's parameters become rank 0's (one flat buffer, one broadcast)."""
        if self.size == 1:
            return
        params = list(params)
        flat = np.concatenate([np.asarray(p.numpy(), dtype=np.float64).ravel()
                               for p in params]) if params else np.empty(0)
        self.wait([self.comm.Ibcast(flat, root=0)], "the broadcast of rank 0's parameters")
        start = 0
        for p in params:
            stop = start + int(p.size)
            if not self.is_root:
                value = flat[start:stop].reshape(p.shape).astype(p.dtype)
                p.data[...] = value if p.backend != "cupy" else _to_device(value)
            start = stop

    def check_replicas(self, params, what: str) -> None:
        """Raise ``DistributedError`` if a rank's parameters differ from rank 0's (the
        replicas must stay bitwise equal: same start, same averaged gradients)."""
        if self.size == 1:
            return
        digest = np.array([float(np.asarray(p.numpy(), dtype=np.float64).sum()) for p in
                           params], dtype=np.float64)
        digests = self.allgather_object(digest.tobytes(), what)
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise DistributedError(f"after {what} the parameters of rank(s) "
                                   f"{', '.join(map(str, differ))} differ from rank 0's")

    # --- gradients -------------------------------------------------------------------
    def gradient_reduce(self, params, n_local: int, n_global: int):
        """The all-reduce of one step's gradients (``overlap.GradientReduce``): the ranks'
        gradients weighed by ``n_local / n_global`` and summed over one flat buffer in
        buckets (``GradientBuckets``, laid out from the last parameter). Walk the backward
        with its ``backward`` to overlap the all-reduce with the walk (when ``overlap``
        and no transport), then call its ``finish``."""
        from .buckets import GradientBuckets
        from .overlap import GradientReduce

        order = list(params)[::-1]
        if self._buckets is None or [id(p) for p in self._buckets.params] != \
                [id(p) for p in order]:
            self._buckets = GradientBuckets(order, self.bucket_bytes)
        return GradientReduce(self, self._buckets, n_local / n_global,
                              _xp(self._buckets.backend),
                              overlap=self.overlap and self.transport is None)

    def average_gradients(self, params, n_local: int, n_global: int,
                          extra: np.ndarray) -> np.ndarray:
        """After a backward of one's own: replace each parameter's ``.grad`` by the global
        batch's gradient (``gradient_reduce(...).finish``); return ``extra`` (float64)
        summed over the ranks."""
        return self.gradient_reduce(params, n_local, n_global).finish(extra)


def _xp(backend: str):
    from ..backend import xp_of

    return xp_of(backend)


def _to_device(value: np.ndarray):
    import cupy

    return cupy.asarray(value)
