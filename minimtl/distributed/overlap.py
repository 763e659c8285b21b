"""One step's gradient all-reduce, started bucket by bucket during the backward walk.

Without overlap a rank walks the whole backward, then packs and all-reduces every bucket;
the network sits idle during the walk and the cores sit idle during the transfer. Here
the walk announces each parameter the moment its gradient is complete
(``autograd.backward(..., on_leaf=...)``): the gradient is weighed into its slice of the
flat buffer at once, and when the last parameter of a bucket is in, that bucket's
``Iallreduce`` starts while the walk goes on through the layers below. Buckets are laid
out in reverse parameter order, so the first bucket holds the output layers, whose
gradients the walk finishes first. MPI moves a non-blocking collective on only while
some MPI call runs on the rank, so every later announcement also tests the requests in
flight (``MPI_Testall``, a few microseconds). ``finish`` packs what the walk never
announced (parameters without a gradient on this rank: zeros), starts the remaining
buckets and waits for all of them with the group's deadline.

Results are bitwise those of the unoverlapped path: the same ``w_r · g`` products, the
same sums (the buckets' boundaries decide only when elements travel, not how they add).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["GradientReduce"]


class GradientReduce:
    """The all-reduce of one step's gradients over ``group`` (see the module docstring).

    Use: ``r = group.gradient_reduce(params, n_local, n_global)``; ``r.backward(loss)``
    (the walk with the announcements; a plain ``loss.backward()`` when ``overlap`` is
    false) or a backward of one's own (then nothing overlaps); then ``summed_extra =
    r.finish(extra)`` sets every ``.grad`` to the global gradient. With the group's
    ``transport`` (NCCL) ``finish`` hands the whole buffer to it.
    """

    def __init__(self, group, buckets, weight: float, xp, overlap: bool = True):
        self.group, self.buckets, self.xp, self.overlap = group, buckets, xp, overlap
        self.weight = buckets.dtype.type(weight)
        self._index = {id(p): i for i, p in enumerate(buckets.params)}
        self._left = [0] * len(buckets.buckets)
        for k in buckets.bucket_of:
            self._left[k] += 1
        self._ready = [False] * len(buckets.params)
        self._present = np.zeros(len(buckets.params), dtype=np.float64)
        self._requests: list = [None] * len(buckets.buckets)
        self._parts: list = [None] * len(buckets.buckets)
        self.early = 0               # buckets started during the walk
        self.busy_s = 0.0            # time spent here during the walk

    def backward(self, loss) -> None:
        """``loss.backward()``, announcing each finished parameter to ``ready``."""
        from .. import autograd
        from ..backend import xp_of

        if self.overlap:
            autograd.backward(loss, None, xp_of(loss.backend), on_leaf=self.ready)
        else:
            loss.backward()

    def ready(self, leaf, g) -> None:
        """The walk's complete gradient ``g`` of ``leaf`` (None: no gradient reached it)."""
        i = self._index.get(id(leaf))
        if i is None or self._ready[i]:
            return                   # not a parameter of this reduce
        t0 = time.perf_counter()
        self._write(i, g)
        k = self.buckets.bucket_of[i]
        self._left[k] -= 1
        if self._left[k] == 0:
            self._start(k)
            self.early += 1
        in_flight = [r for r in self._requests if r is not None]
        if in_flight:                # let MPI move what is in flight
            self.group.MPI.Request.Testall(in_flight)
        self.busy_s += time.perf_counter() - t0

    def finish(self, extra: np.ndarray) -> np.ndarray:
        """Pack and start what the walk did not, wait for every bucket with the group's
        deadline, set each ``.grad`` to its reduced slice (None where no rank had one);
        return ``extra`` (float64) summed over the ranks."""
        b, group = self.buckets, self.group
        t0 = time.perf_counter()
        if group.transport is None:
            for i, p in enumerate(b.params):
                if not self._ready[i]:
                    self._write(i, p.grad)
            present = self._present
        else:
            present = b.present()
        small = np.concatenate([present, np.asarray(extra, dtype=np.float64)])
        small_req = group.comm.Iallreduce(group.MPI.IN_PLACE, small)
        if group.transport is not None:    # packs and reduces on the device itself
            group.transport.allreduce_buckets(group, b, float(self.weight))
        else:
            for k, r in enumerate(self._requests):
                if r is None:
                    self._start(k)
            group.wait(list(self._requests), "the gradient all-reduce")
            if b.backend == "cupy":   # staged through the host: back onto the device
                flat = b.flat(self.xp)
                for (lo, hi), part in zip(b.buckets, self._parts):
                    flat[lo:hi] = self.xp.asarray(part)
        group.wait([small_req], "the gradient all-reduce")
        b.unpack(self.xp, small[:len(b.params)])
        group.allreduce_s += self.busy_s + time.perf_counter() - t0
        group.buckets_early += self.early
        group.buckets_total += len(b.buckets)
        return small[len(b.params):]

    def _write(self, i: int, g) -> None:
        """``w_r · g`` into parameter i's slice (zeros for None)."""
        start, stop = self.buckets.slices[i]
        flat = self.buckets.flat(self.xp)
        if g is None:
            flat[start:stop] = 0
        else:
            self.xp.multiply(g.reshape(-1), self.weight, out=flat[start:stop])
            self._present[i] = 1.0
        self._ready[i] = True

    def _start(self, k: int) -> None:
        lo, hi = self.buckets.buckets[k]
        part = self.buckets.flat(self.xp)[lo:hi]
        if self.buckets.backend == "cupy":  # MPI without CUDA support: via the host
            part = part.get()
        self._parts[k] = part
        self._requests[k] = self.group.comm.Iallreduce(self.group.MPI.IN_PLACE, part)
