"""The flat, bucketed gradient buffer that data-parallel training all-reduces.

Every parameter's gradient gets a fixed slice ``[start, stop)`` of one flat buffer (in
parameter order); consecutive slices are grouped into buckets of about ``bucket_bytes``
(a parameter larger than that is a bucket of its own), so that one all-reduce per bucket
moves a few large messages instead of one small message per parameter, and bucket k can
travel while bucket k+1 is still being packed.

Packing scales each gradient by this rank's weight ``w_r = n_r / n`` (its share of the
global batch): the per-rank losses are means over n_r rows, so

    Σ_r w_r · ∇(1/n_r Σ_{i∈r} ℓ_i) = ∇(1/n Σ_i ℓ_i),

the gradient of the global batch's mean loss, whatever the shard sizes. A rank with no rows
(a last batch smaller than the number of ranks) packs zeros. A parameter without a
gradient on a rank packs zeros there, and one without a gradient on every rank keeps
``.grad = None`` (the optimizer skips it, as a single process would): the ``present``
counts travel with the extra values in a small float64 vector of their own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GradientBuckets"]


class GradientBuckets:
    """The buffer layout of ``params`` (all of one dtype and backend).

    Attributes
    ----------
    slices     per parameter, its ``(start, stop)`` in the flat buffer
    buckets    ``(start, stop)`` ranges of the flat buffer, each a union of whole slices
    bucket_of  per parameter, the index of its bucket
    size     elements of the flat buffer
    """

    def __init__(self, params, bucket_bytes: int = 4 << 20):
        self.params = list(params)
        if not self.params:
            raise ValueError("GradientBuckets: no parameters")
        dtypes = {np.dtype(p.dtype) for p in self.params}
        backends = {p.backend for p in self.params}
        if len(dtypes) > 1 or len(backends) > 1:
            raise ValueError(f"GradientBuckets: parameters of several dtypes/backends "
                             f"({sorted(map(str, dtypes))}, {sorted(backends)}); data-parallel "
                             f"training needs one of each")
        if bucket_bytes < 1:
            raise ValueError(f"GradientBuckets: bucket_bytes must be >= 1, got {bucket_bytes}")
        self.dtype = dtypes.pop()
        self.backend = backends.pop()
        self.slices: list[tuple[int, int]] = []
        self.buckets: list[tuple[int, int]] = []
        self.bucket_of: list[int] = []
        start = bucket_start = 0
        limit = max(1, bucket_bytes // self.dtype.itemsize)
        for p in self.params:
            stop = start + int(p.size)
            self.slices.append((start, stop))
            self.bucket_of.append(len(self.buckets))
            if stop - bucket_start >= limit:     # this parameter closes the bucket
                self.buckets.append((bucket_start, stop))
                bucket_start = stop
            start = stop
        if bucket_start < start:
            self.buckets.append((bucket_start, start))
        self.size = start
        self._flat = None

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def flat(self, xp):
        """The flat buffer (allocated once, reused every step)."""
        if self._flat is None:
            self._flat = xp.empty(self.size, dtype=self.dtype)
        return self._flat

    def pack(self, xp, bucket: int, weight: float):
        """Write ``weight · grad`` of the bucket's parameters into its range; return that
        range (a contiguous view of the flat buffer)."""
        flat = self.flat(xp)
        lo, hi = self.buckets[bucket]
        for p, (start, stop) in zip(self.params, self.slices):
            if stop <= lo or start >= hi:
                continue
            if p.grad is None:
                flat[start:stop] = 0
            else:
                xp.multiply(p.grad.reshape(-1), self.dtype.type(weight), out=flat[start:stop])
        return flat[lo:hi]

    def present(self) -> np.ndarray:
        """(P,) float64: 1 where this rank has a gradient for the parameter, else 0."""
        return np.array([p.grad is not None for p in self.params], dtype=np.float64)

    def unpack(self, xp, present: np.ndarray) -> None:
        """Set each parameter's ``.grad`` to a fresh copy of its reduced slice, or None
        where no rank had one (``present`` summed over the ranks)."""
        flat = self.flat(xp)
        for p, (start, stop), count in zip(self.params, self.slices, present):
            p.grad = flat[start:stop].reshape(p.shape).copy() if count > 0 else None
