"""A long reduction split over the blocks of one launch and finished in that launch by the
last block of each output tile (conv1d's weight gradient: its reduction over the N·Lo
output positions is long, its O x C·K result small, so a grid of output tiles alone would
leave most of a GPU idle).

blockIdx.z picks a slice of the reduction; every block writes its tile's partial sums for
its slice to a workspace ``part[z, ...]``, then takes a ticket from its tile's counter. The
block that draws the last ticket adds the tile's slices up in a fixed order, so the result
is the same bits whichever block finishes last, and no second kernel is launched.

``SPLITK`` is CUDA C a family's ``SOURCE`` includes: ``last_of_tile`` (the ticket) and
``sum_slices`` (the fixed order). On the host: ``slices`` (how a reduction is cut) and
``tickets`` (the counters, one small buffer per device).
"""

from __future__ import annotations

__all__ = ["SPLITK", "slices", "tickets"]

SPLITK = r"""
// Every thread of a block calls this after the block wrote its slice of partial sums; it
// returns true, in every thread, in the block that drew the tile's last ticket (gridDim.z
// blocks share a tile; they finish in no set order). That block puts the counter back to
// 0, and may then read every slice. The fence before the ticket makes this block's
// partials visible device-wide before another block can draw the last ticket; the one
// after it orders the reads of the other blocks' partials after the ticket.
__device__ __forceinline__ bool last_of_tile(int* tickets, int tile)
{
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(tickets + tile, 1) == (int)gridDim.z - 1;
        if (last) tickets[tile] = 0;         // every block of the tile has drawn: reset
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}

// The fixed order in which the slices' partial sums of one entry are added (part: the
// entry in slice 0, stride: the distance between slices; volatile: read from L2, never a
// stale L1 line): as eight lanes, lane l adding the slices z = l, l + 8, ... in turn, then
// the eight lane sums added in lane order. (The eight lanes were once eight threads; the
// order is kept, so the bits are those of that sum.)
template <typename T>
__device__ __forceinline__ T sum_slices(const volatile T* part, int splits, long long stride)
{
    T lane[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) lane[l] = T(0);
    for (int z0 = 0; z0 < splits; z0 += 8) {
#pragma unroll
        for (int l = 0; l < 8; ++l)
            if (z0 + l < splits) lane[l] += part[(long long)(z0 + l) * stride];
    }
    T total = T(0);
#pragma unroll
    for (int l = 0; l < 8; ++l) total += lane[l];
    return total;
}
"""

_MIN_TICKETS = 256      # counters of the first tickets buffer (a tile each)

_tickets: dict[tuple[str, int], object] = {}    # (array module, device) -> int32 counters
_retired: list = []     # outgrown ticket buffers: a captured CUDA graph may still use them


def slices(length, tiles, chunk, target_blocks):
    """(pb, splits): a reduction of ``length`` terms cut into ``splits`` slices of ``pb``
    terms (the last one shorter), ``pb`` a multiple of the kernel's ``chunk`` and at least
    eight chunks, so that ``tiles`` x ``splits`` is about ``target_blocks``."""
    per_block = -(-length // max(1, target_blocks // tiles))
    pb = max(8 * chunk, -(-per_block // chunk) * chunk)
    return pb, -(-length // pb)


def tickets(cp, tiles):
    """The ticket counters (int32, at least ``tiles``, all 0 between launches) for the
    current device: allocated and zeroed on first use, then reused by every launch and
    never freed; each launch's last block of a tile puts its counter back to 0, so no
    launch needs a memset. Launches on one stream run one after another, so they can share
    the counters; launches that may overlap on concurrent streams would each need counters
    of their own. A buffer too small for ``tiles`` is replaced by one twice as large (the
    old one kept alive: a captured graph may still point at it). The first call must not
    be inside a stream capture (its memset would run only at replay); minimtl's graph path
    runs its step eagerly before capturing it."""
    key = (cp.__name__, int(cp.cuda.Device().id))   # numpy on the host emulator
    buf = _tickets.get(key)
    if buf is None or buf.size < tiles:
        size = _MIN_TICKETS if buf is None else buf.size
        while size < tiles:
            size *= 2
        if buf is not None:
            _retired.append(buf)
        buf = _tickets[key] = cp.zeros(size, dtype=cp.int32)
    return buf
